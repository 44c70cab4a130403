"""Resolvers: functions that find the tenant of an HTTP request, shared by ASGI and WSGI.

A resolver takes a :class:`RequestView` and returns the tenant name, a :class:`Resolution`
(a name plus a path prefix to strip), or ``None`` when the request does not name a tenant.
The middlewares try their resolvers in order; the first answer wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True)
class RequestView:
    """What resolvers see of a request, whatever the protocol.

    ``host`` is lowercase without port; ``path`` is relative to where the app is mounted;
    ``headers`` have lowercase names; ``raw`` is the ASGI scope or the WSGI environ.
    """

    host: str
    path: str
    headers: Mapping[str, str]
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class Resolution:
    """A tenant found in the request; ``strip`` is a leading path part to remove (``/acme``)."""

    tenant: str
    strip: str = ""


Resolver: TypeAlias = Callable[[RequestView], "str | Resolution | None"]


def host_of(value: str) -> str:
    """``value`` of a Host header, lowercase, without port (IPv6 literals keep brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if ":" in value else value


def subdomain(domain: str, *, ignore: tuple[str, ...] = ("www",)) -> Resolver:
    """``acme.example.com`` -> ``acme`` under ``domain="example.com"``.

    The bare domain, other domains, hosts with several labels before ``domain`` and the
    labels in ``ignore`` name no tenant.
    """
    suffix = "." + domain.lower().strip(".")

    def resolve(request: RequestView) -> str | None:
        if not request.host.endswith(suffix):
            return None
        label = request.host[: -len(suffix)]
        if not label or "." in label or label in ignore:
            return None
        return label

    return resolve


def host_map(hosts: Mapping[str, str]) -> Resolver:
    """Whole host names mapped to tenants: ``{"shop.acme.com": "acme"}``."""
    table = {host_of(host): tenant for host, tenant in hosts.items()}

    def resolve(request: RequestView) -> str | None:
        return table.get(request.host)

    return resolve


def header(name: str = "X-Tenant") -> Resolver:
    """The value of request header ``name`` (empty means none)."""
    key = name.lower()

    def resolve(request: RequestView) -> str | None:
        return request.headers.get(key, "").strip() or None

    return resolve


def path_prefix(base: str = "") -> Resolver:
    """``/acme/notes`` -> tenant ``acme``, the app sees ``/notes``.

    With ``base="/t"``: ``/t/acme/notes``. The stripped part moves to ``SCRIPT_NAME`` (WSGI)
    or ``root_path`` (ASGI), so URLs the app builds keep it.
    """
    lead = "/" + base.strip("/") if base.strip("/") else ""

    def resolve(request: RequestView) -> Resolution | None:
        path = request.path
        if lead:
            if not path.startswith(lead + "/"):
                return None
            path = path[len(lead) :]
        tenant = path[1:].split("/", 1)[0]
        if not path.startswith("/") or not tenant:
            return None
        return Resolution(tenant, lead + "/" + tenant)

    return resolve


def bearer_claim(decode: Callable[[str], Mapping[str, Any]], claim: str = "tenant") -> Resolver:
    """The ``claim`` of the bearer token in ``Authorization``, decoded by ``decode``.

    ``decode`` is yours (for example ``lambda t: jwt.decode(t, key, algorithms=["HS256"])``
    with PyJWT) and must verify the token; if it raises, the request names no tenant.
    """

    def resolve(request: RequestView) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            claims = decode(token.strip())
        except Exception:
            return None
        value = claims.get(claim)
        return value if isinstance(value, str) and value else None

    return resolve


def resolve(request: RequestView, resolvers: tuple[Resolver, ...]) -> Resolution | None:
    """The first answer of ``resolvers`` for ``request``."""
    for resolver in resolvers:
        found = resolver(request)
        if found is None:
            continue
        return found if isinstance(found, Resolution) else Resolution(found)
    return None

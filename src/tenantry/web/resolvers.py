"""Resolvers: functions that find the tenant of an HTTP request, shared by ASGI and WSGI.

A resolver takes a :class:`RequestView` and returns the tenant name, a :class:`Resolution`
(a name plus a path prefix to strip), or ``None`` when the request does not name a tenant.
The middlewares try their resolvers in order; the first answer wins.

One tenant per request, unambiguously: a header that names the tenant (``Host``, the
:func:`header`'s, a bearer ``Authorization``) must appear once. Both middlewares see repeated
headers joined with ``", "``, as WSGI servers pass them, and a resolver reading one that holds
a comma (:attr:`RequestView.host`, :meth:`RequestView.single`) raises
:class:`~tenantry.errors.AmbiguousRequest`: the request is refused (400), never resolved from
the first or the last copy while a framework or a proxy check reads the other.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..errors import AmbiguousRequest

#: Set by the ASGI middleware while it runs resolvers on the event loop: a resolver that would
#: wait for I/O raises :class:`WouldBlock` instead, and is run again in a worker thread.
_on_event_loop: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tenantry_resolving_on_event_loop", default=False
)


class WouldBlock(Exception):
    """A resolver needs I/O (a database read) and runs on an event loop: run it in a thread."""


def may_block() -> bool:
    """Whether a resolver may wait for I/O here (``False`` on an ASGI event loop)."""
    return not _on_event_loop.get()


def resolving_on_event_loop() -> contextvars.Token[bool]:
    """Mark the resolvers run from now on as running on an event loop (reset the token)."""
    return _on_event_loop.set(True)


def done_on_event_loop(token: contextvars.Token[bool]) -> None:
    _on_event_loop.reset(token)


class RequestView:
    """What resolvers see of a request, whatever the protocol.

    ``host`` is lowercase without port; ``path`` is relative to where the app is mounted;
    ``headers`` have lowercase names, a repeated header's values joined with ``", "``;
    ``raw`` is the ASGI scope or the WSGI environ.
    """

    __slots__ = ("_host", "headers", "path", "raw")

    def __init__(
        self, host: str, path: str, headers: Mapping[str, str], raw: Mapping[str, Any]
    ) -> None:
        self._host = host
        self.path = path
        self.headers = headers
        self.raw = raw

    @property
    def host(self) -> str:
        """The request's host; :class:`~tenantry.errors.AmbiguousRequest` if it has several."""
        if "," in self._host:
            raise AmbiguousRequest("host")
        return self._host

    def single(self, name: str) -> str | None:
        """The value of header ``name``, which may appear once (``None`` if absent);
        :class:`~tenantry.errors.AmbiguousRequest` if it appears more than once."""
        key = name.lower()
        value = self.headers.get(key)
        if value is not None and "," in value:
            raise AmbiguousRequest(key)
        return value

    def __repr__(self) -> str:
        return f"RequestView(host={self._host!r}, path={self.path!r})"


@dataclass(frozen=True)
class Resolution:
    """A tenant found in the request; ``strip`` is a leading path part to remove (``/acme``)."""

    tenant: str
    strip: str = ""


_BEARER = re.compile(r"\s*bearer\s", re.IGNORECASE)

Resolver: TypeAlias = Callable[[RequestView], "str | Resolution | None"]


def host_of(value: str) -> str:
    """``value`` of a Host header, lowercase, without port (IPv6 literals keep brackets).

    Several hosts joined by commas (a repeated header) stay as they are, to be refused.
    """
    value = value.strip().lower()
    if "," in value:
        return value
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
    """The value of request header ``name`` (empty means none; repeated: refused)."""
    key = name.lower()

    def resolve(request: RequestView) -> str | None:
        return (request.single(key) or "").strip() or None

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
    with PyJWT) and must verify the token; if it raises, the request names no tenant. Several
    ``Authorization`` headers of which one is a bearer token: refused.
    """

    def resolve(request: RequestView) -> str | None:
        credentials = request.headers.get("authorization", "")
        if "," in credentials and any(_BEARER.match(p) for p in credentials.split(",")):
            raise AmbiguousRequest("authorization")  # a token68 never holds a comma
        scheme, _, token = credentials.partition(" ")
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

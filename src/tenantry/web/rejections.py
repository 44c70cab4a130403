"""What the middlewares answer when a request has no tenant, or an unknown one."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .resolvers import RequestView, Resolver


@dataclass(frozen=True)
class Reject:
    """An HTTP response that refuses a request: status, body, content type, extra headers."""

    status: int
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())

    def encoded(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body

    def header_list(self) -> list[tuple[str, str]]:
        body = self.encoded()
        return [
            ("content-type", self.content_type),
            ("content-length", str(len(body))),
            *self.headers,
        ]


def _json(status: int, detail: str) -> Reject:
    return Reject(status, json.dumps({"detail": detail}))


#: Default answer for a tenant that is not registered (or not a valid name): 404.
UNKNOWN_TENANT = _json(404, "unknown tenant")
#: Default answer for a request naming a suspended tenant: 403 (never another tenant).
SUSPENDED_TENANT = _json(403, "tenant suspended")
#: Default answer for a request that names no tenant where one is required: 400.
MISSING_TENANT = _json(400, "no tenant in request")
#: Default answer for a request whose tenant-naming header appears more than once: 400.
AMBIGUOUS_TENANT = _json(400, "tenant header appears more than once")


def rejection(
    handler: Reject | Callable[[RequestView, str | None], Reject],
    request: RequestView,
    tenant: str | None,
) -> Reject:
    """The response ``handler`` gives for ``request``."""
    return handler if isinstance(handler, Reject) else handler(request, tenant)


def as_tuple(resolvers: Resolver | Sequence[Resolver]) -> tuple[Resolver, ...]:
    """One resolver or several, as a non-empty tuple."""
    found = (resolvers,) if callable(resolvers) else tuple(resolvers)
    if not found:
        raise ValueError("give the middleware at least one resolver")
    return found

"""Pure ASGI middleware (Starlette, FastAPI, any ASGI app) that selects the tenant per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from ..context import use
from ..errors import InvalidTenantName, TenantSuspended, UnknownTenant
from ..tenancy import Tenancy
from .policy import Handler, TenantPolicy
from .rejections import (
    AMBIGUOUS_TENANT,
    MISSING_TENANT,
    SUSPENDED_TENANT,
    UNKNOWN_TENANT,
    Reject,
    rejection,
)
from .resolvers import RequestView, Resolution, Resolver, host_of

if TYPE_CHECKING:
    from ..aio import AsyncTenancy

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: WebSocket close code used when a WebSocket connection is refused (policy violation).
WS_REFUSED = 1008


def request_view(scope: Scope) -> RequestView:
    """The resolver view of an ASGI ``http`` or ``websocket`` scope.

    A repeated header's values are joined with ``", "`` (``"; "`` for ``Cookie``), as a WSGI
    server joins them, so resolvers see the same request under ASGI and WSGI.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            value = headers[name] + ("; " if name == "cookie" else ", ") + value
        headers[name] = value
    host = headers.get("host")
    if host is None:
        server = scope.get("server") or ("", None)
        host = str(server[0])
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    return RequestView(host_of(host), path, headers, scope)


class TenantMiddleware(TenantPolicy):
    """Resolve the tenant of each request and select it for that request only.

    ``tenancy`` is an :class:`~tenantry.aio.AsyncTenancy` (checked without blocking) or a
    :class:`~tenantry.Tenancy` (checked in a worker thread). ``resolvers`` are tried in order.
    A request naming an unregistered tenant gets ``on_unknown`` (default 404); one naming no
    tenant gets ``on_missing`` (default 400) unless ``required`` is false (or returns false
    for it), in which case it runs with no tenant selected. There is never a default tenant.
    A request whose tenant-naming header appears more than once gets ``on_ambiguous``
    (default 400). A suspended tenant's request gets ``on_suspended`` (default 403).
    The tenant is visible in the endpoint (and in sync endpoints that Starlette runs in its
    threadpool, which copies the context) and reset when the request ends.
    """

    def __init__(
        self,
        app: ASGIApp,
        tenancy: AsyncTenancy | Tenancy,
        resolvers: Resolver | Sequence[Resolver],
        *,
        required: bool | Callable[[RequestView], bool] = True,
        on_unknown: Reject | Callable[[RequestView, str | None], Reject] = UNKNOWN_TENANT,
        on_missing: Reject | Callable[[RequestView, str | None], Reject] = MISSING_TENANT,
        on_ambiguous: Handler = AMBIGUOUS_TENANT,
        on_suspended: Handler = SUSPENDED_TENANT,
    ) -> None:
        super().__init__(
            resolvers, required=required, on_unknown=on_unknown, on_missing=on_missing,
            on_ambiguous=on_ambiguous, on_suspended=on_suspended,
        )
        self.app = app
        self.tenancy = tenancy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        view = request_view(scope)
        found = self.decide(view)
        if found is None:
            with use(None):
                await self.app(scope, receive, send)
            return
        if not isinstance(found, Resolution):
            await _refuse(scope, send, rejection(found, view, None))
            return
        try:
            await self._check(found.tenant)
        except (UnknownTenant, InvalidTenantName):
            await _refuse(scope, send, rejection(self.on_unknown, view, found.tenant))
            return
        except TenantSuspended:
            await _refuse(scope, send, rejection(self.on_suspended, view, found.tenant))
            return
        if found.strip:
            scope = dict(scope, root_path=scope.get("root_path", "") + found.strip)
            if not scope["path"].startswith(scope["root_path"]):
                scope["path"] = scope["root_path"] + view.path[len(found.strip) :]
        with use(found.tenant):
            await self.app(scope, receive, send)

    async def _check(self, tenant: str) -> None:
        """Raise :class:`UnknownTenant` unless ``tenant`` is registered and usable
        (:class:`TenantSuspended` if it is suspended)."""
        if isinstance(self.tenancy, Tenancy):
            await _to_thread(_check_sync, self.tenancy, tenant)
        else:
            await self.tenancy.route(tenant)


async def _to_thread(fn: Callable[[Tenancy, str], None], tenancy: Tenancy, tenant: str) -> None:
    """Run ``fn`` in a worker thread: anyio's when available (asyncio or trio), else asyncio's."""
    try:
        from anyio import to_thread
    except ImportError:  # pragma: no cover - Starlette and FastAPI depend on anyio
        await asyncio.to_thread(fn, tenancy, tenant)
    else:
        await to_thread.run_sync(fn, tenancy, tenant)


def _check_sync(tenancy: Tenancy, tenant: str) -> None:
    with tenancy.use(tenant):
        pass


async def _refuse(scope: Scope, send: Send, reject: Reject) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": WS_REFUSED})
        return
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reject.header_list()]
    await send({"type": "http.response.start", "status": reject.status, "headers": headers})
    await send({"type": "http.response.body", "body": reject.encoded()})

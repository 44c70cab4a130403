"""WSGI middleware (Flask, Django's WSGI handler, any WSGI app) that selects the tenant."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from ..context import enter
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
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def request_view(environ: WSGIEnvironment) -> RequestView:
    """The resolver view of a WSGI ``environ`` (the server joined repeated headers)."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    host = headers.get("host") or str(environ.get("SERVER_NAME", ""))
    return RequestView(host_of(host), str(environ.get("PATH_INFO", "")), headers, environ)


class WSGITenantMiddleware(TenantPolicy):
    """Resolve the tenant of each request and select it for that request only.

    Flask: ``app.wsgi_app = WSGITenantMiddleware(app.wsgi_app, tenancy, [header()])``.
    Same rules as the ASGI :class:`~tenantry.web.TenantMiddleware`: ``on_unknown`` (default
    404), ``on_missing`` (default 400, unless ``required`` is false), ``on_ambiguous`` (default
    400: a tenant-naming header repeated, which WSGI servers join with commas),
    ``on_suspended`` (default 403, a suspended tenant), never a default tenant.
    Each request runs in its own copy of the context, including the iteration of a streamed
    response body, so the tenant never outlives the request nor leaks into the server thread.
    A path prefix found by :func:`~tenantry.web.path_prefix` moves to ``SCRIPT_NAME``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        tenancy: Tenancy,
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

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        context = contextvars.copy_context()
        return context.run(self._handle, context, environ, start_response)

    def _handle(
        self,
        context: contextvars.Context,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        view = request_view(environ)
        found = self.decide(view)
        if found is None:
            tenant = None
        elif not isinstance(found, Resolution):
            return _refuse(start_response, rejection(found, view, None))
        else:
            tenant = found.tenant
            try:
                with self.tenancy.use(tenant):  # checks the registry (cached)
                    pass
            except (UnknownTenant, InvalidTenantName):
                return _refuse(start_response, rejection(self.on_unknown, view, tenant))
            except TenantSuspended:
                return _refuse(start_response, rejection(self.on_suspended, view, tenant))
            if found.strip:
                environ = dict(environ)
                environ["SCRIPT_NAME"] = str(environ.get("SCRIPT_NAME", "")) + found.strip
                environ["PATH_INFO"] = view.path[len(found.strip) :]
        enter(tenant)  # this context is private to the request: nothing to reset
        return _InContext(context, self.app(environ, start_response))


class _InContext:
    """A response body iterated (and closed) inside the request's context."""

    def __init__(self, context: contextvars.Context, body: Iterable[bytes]) -> None:
        self.context = context
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        chunks = self.context.run(iter, self.body)
        while True:
            try:
                yield self.context.run(next, chunks)
            except StopIteration:
                return

    def close(self) -> None:
        close: Any = getattr(self.body, "close", None)
        if close is not None:
            self.context.run(close)


def _refuse(start_response: StartResponse, reject: Reject) -> list[bytes]:
    try:
        reason = HTTPStatus(reject.status).phrase
    except ValueError:
        reason = "Error"
    status = f"{reject.status} {reason}"
    start_response(status, reject.header_list())
    return [reject.encoded()]

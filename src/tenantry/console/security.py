"""The console's gate: every request shows the token (``?token=`` once, then a cookie), forms
carry a CSRF token derived from it, and every response forbids scripts, framing and caching."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The cookie that carries the token after the first visit.
COOKIE = "tenantry_console"
#: The query parameter of the first visit.
TOKEN_PARAM = "token"
#: Pages use inline CSS only: no script, no frame, no outside resource, forms post here only.
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # "no-referrer" would make form posts say Origin: null
    "cache-control": "no-store",
}


def same(given: str | None, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def csrf_token(token: str) -> str:
    """The CSRF token the console's forms carry: derived from its access token."""
    return hmac.new(token.encode(), b"tenantry-console-csrf", hashlib.sha256).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenGate:
    """ASGI middleware: 401 without a token, 403 with a wrong one. A right ``?token=`` sets an
    HttpOnly SameSite=Strict cookie and redirects to the same URL without it (out of the
    history and of server logs from then on)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self.refusal(request)
        if response is None:
            await self.app(scope, receive, with_headers(send))
        else:
            await response(scope, receive, with_headers(send))

    def refusal(self, request: Request) -> Response | None:
        """The response that stops ``request`` (``None``: it goes through)."""
        given = request.query_params.get(TOKEN_PARAM)
        if given is not None:
            if not same(given, self.token):
                return PlainTextResponse("wrong token", status_code=403)
            query = [(k, v) for k, v in parse_qsl(request.url.query) if k != TOKEN_PARAM]
            target = request.url.path + (f"?{urlencode(query)}" if query else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
            return response
        cookie = request.cookies.get(COOKIE)
        if cookie is None:
            return PlainTextResponse(
                "token required: open the URL that `tenantry console` printed "
                "(…/?token=…)", status_code=401)
        if not same(cookie, self.token):
            return PlainTextResponse("wrong token", status_code=403)
        return None


def with_headers(send: Send) -> Send:
    """``send`` adding :data:`HEADERS` to the response."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in HEADERS.items():
                headers.setdefault(name, value)
        await send(message)

    return sending


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this site (a browser names its ``Origin``; none: a
    client that is not a browser, which the token and CSRF token check anyway)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host

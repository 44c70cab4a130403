"""One tenant per request, unambiguously: a tenant-naming header that appears more than once
(ASGI: several copies; WSGI: the server joins them with commas) is refused with 400, the same
under ASGI and WSGI, for every resolver that reads a header."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder

from tenantry import Tenancy, current_tenant
from tenantry.errors import AmbiguousRequest
from tenantry.web import (
    Reject,
    RequestView,
    TenantMiddleware,
    WSGITenantMiddleware,
    bearer_claim,
    header,
    host_map,
    path_prefix,
    subdomain,
)

TOKENS = {"a": "acme", "g": "globex"}
RESOLVERS = {
    "header": (header(), "x-tenant", ["acme", "globex"]),
    "custom header": (header("X-Org"), "x-org", ["acme", "globex"]),
    "subdomain": (subdomain("example.com"), "host", ["acme.example.com", "globex.example.com"]),
    "host map": (
        host_map({"acme.shop": "acme", "globex.shop": "globex"}), "host", ["acme.shop",
                                                                           "globex.shop"],
    ),
    "bearer": (
        bearer_claim(lambda token: {"tenant": TOKENS[token]}), "authorization",
        ["Bearer a", "Bearer g"],
    ),
}
BODY = {"detail": "tenant header appears more than once"}


@pytest.fixture
def acme_globex(tenancy: Tenancy) -> Iterator[Tenancy]:
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    yield tenancy


def test_resolvers_refuse_a_repeated_tenant_header() -> None:
    def view(headers: dict[str, str]) -> RequestView:
        return RequestView(headers.get("host", "example.com"), "/acme/x", headers, {})

    for resolver, name, (first, second) in RESOLVERS.values():
        assert resolver(view({name: first})) == "acme"
        for joined in (f"{first}, {second}", f"{first},{second}", f"{first}, "):
            with pytest.raises(AmbiguousRequest) as caught:
                resolver(view({name: joined}))
            assert caught.value.header == name
    # a comma where one is legal is not a repeat; headers no resolver reads do not matter
    digest = 'Digest username="ann", realm="x", nonce="1"'
    assert RESOLVERS["bearer"][0](view({"authorization": digest})) is None
    assert path_prefix()(view({"x-tenant": "acme, globex"})) is not None
    assert view({"accept": "a/b, c/d"}).single("X-Tenant") is None


# -- ASGI: the raw scope carries every copy -------------------------------------------------


async def endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"tenant": current_tenant()})


def asgi_app(tenancy: Tenancy, resolvers: Any, **options: Any) -> TenantMiddleware:
    return TenantMiddleware(Starlette(routes=[Route("/x", endpoint)]), tenancy, resolvers,
                            **options)


async def call(app: Any, headers: list[tuple[str, str]], kind: str = "http") -> dict[str, Any]:
    """One request through ``app`` as an ASGI server would pass it: the status and body."""
    scope = {
        "type": kind, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/x", "raw_path": b"/x", "root_path": "", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "server": ("testserver", 80), "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": b""}] if kind == "http" else [
        {"type": "websocket.connect"}
    ]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if kind == "websocket":
        return {"close": sent[0].get("code")}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": sent[0]["status"], "body": json.loads(body)}


@pytest.mark.parametrize("which", sorted(RESOLVERS))
def test_asgi_refuses_a_repeated_tenant_header(acme_globex: Tenancy, which: str) -> None:
    resolver, name, (first, second) = RESOLVERS[which]
    app = asgi_app(acme_globex, [resolver])

    async def main() -> None:
        host = [] if name == "host" else [("host", "example.com")]
        once = await call(app, [*host, (name, first)])
        assert once == {"status": 200, "body": {"tenant": "acme"}}
        twice = await call(app, [*host, (name, first), (name, second)])
        assert twice == {"status": 400, "body": BODY}
        same = await call(app, [*host, (name, first), (name, first)])
        assert same["status"] == 400  # even two equal copies: one tenant, once
        ws = await call(app, [*host, (name, first), (name, second)], "websocket")
        assert ws == {"close": 1008}

    asyncio.run(main())


def test_asgi_trusted_host_and_tenantry_never_disagree(acme_globex: Tenancy) -> None:
    """Starlette's TrustedHostMiddleware reads the first Host; tenantry used to take the last."""
    inner = asgi_app(acme_globex, [subdomain("example.com")])
    app = TrustedHostMiddleware(inner, allowed_hosts=["acme.example.com"])

    async def main() -> None:
        allowed = await call(app, [("host", "acme.example.com")])
        assert allowed == {"status": 200, "body": {"tenant": "acme"}}
        smuggled = await call(app, [("host", "acme.example.com"), ("host", "globex.example.com")])
        assert smuggled == {"status": 400, "body": BODY}

    asyncio.run(main())


def test_asgi_other_repeated_headers_and_configured_refusal(acme_globex: Tenancy) -> None:
    app = asgi_app(acme_globex, [header()], on_ambiguous=Reject(409, '{"detail": "pick one"}'))
    plain = asgi_app(acme_globex, [header()])

    async def main() -> None:
        # headers no resolver reads may repeat
        repeated = [("x-tenant", "acme"), ("accept", "a/b"), ("accept", "c/d"), ("cookie", "x=1"),
                    ("cookie", "y=2")]
        assert (await call(plain, repeated))["status"] == 200
        # the configured refusal
        two = [("x-tenant", "acme"), ("x-tenant", "globex")]
        assert await call(app, two) == {"status": 409, "body": {"detail": "pick one"}}

    asyncio.run(main())


# -- WSGI: the server joins the copies -------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"tenant": current_tenant()}).encode()]


def wsgi_call(app: Any, environ_headers: dict[str, str]) -> dict[str, Any]:
    environ = EnvironBuilder(path="/x").get_environ()
    environ.pop("HTTP_HOST", None)
    environ.update(environ_headers)
    out: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        out["status"] = int(status.split()[0])

    body = b"".join(app(environ, start_response))
    return {"status": out["status"], "body": json.loads(body)}


@pytest.mark.parametrize("which", sorted(RESOLVERS))
def test_wsgi_refuses_a_joined_tenant_header(acme_globex: Tenancy, which: str) -> None:
    resolver, name, (first, second) = RESOLVERS[which]
    app = WSGITenantMiddleware(wsgi_app, acme_globex, [resolver])
    key = "HTTP_" + name.upper().replace("-", "_")
    host = {} if name == "host" else {"HTTP_HOST": "example.com"}
    assert wsgi_call(app, {**host, key: first}) == {"status": 200, "body": {"tenant": "acme"}}
    for joined in (f"{first},{second}", f"{first}, {second}"):  # gunicorn/werkzeug, waitress
        assert wsgi_call(app, {**host, key: joined}) == {"status": 400, "body": BODY}


def raw_get(port: int, headers: list[tuple[str, str]]) -> tuple[int, Any]:
    """GET /x with exactly these header lines (repeats included) over a real socket."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/x", skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_real_wsgi_server_joins_and_is_refused(acme_globex: Tenancy) -> None:
    """Behind werkzeug's server, two X-Tenant (or Host) lines reach the app joined: 400."""
    app = WSGITenantMiddleware(wsgi_app, acme_globex, [subdomain("example.com"), header()])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_port
        ok = raw_get(port, [("Host", "x.test"), ("X-Tenant", "acme")])
        assert ok == (200, {"tenant": "acme"})
        twice = raw_get(port, [("Host", "x.test"), ("X-Tenant", "acme"), ("X-Tenant", "globex")])
        assert twice == (400, BODY)
        hosts = raw_get(port, [("Host", "acme.example.com"), ("Host", "globex.example.com")])
        assert hosts == (400, BODY)
    finally:
        server.shutdown()
        thread.join()


def test_real_asgi_server_passes_copies_and_is_refused(acme_globex: Tenancy) -> None:
    """Behind uvicorn, the same two X-Tenant lines reach the app as two copies: the same 400."""
    uvicorn = pytest.importorskip("uvicorn")
    app = asgi_app(acme_globex, [header()])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        port = sock.getsockname()[1]
        ok = raw_get(port, [("Host", "x.test"), ("X-Tenant", "acme")])
        assert ok == (200, {"tenant": "acme"})
        twice = raw_get(port, [("Host", "x.test"), ("X-Tenant", "acme"), ("X-Tenant", "globex")])
        assert twice == (400, BODY)
    finally:
        server.should_exit = True
        thread.join()
        sock.close()

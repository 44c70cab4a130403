"""tenantry.web: resolvers, and the ASGI / WSGI middlewares' per-request tenant selection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from werkzeug.test import Client

from tenantry import Tenancy, current_tenant, use
from tenantry.aio import AsyncTenancy
from tenantry.web import (
    Reject,
    RequestView,
    Resolution,
    TenantMiddleware,
    WSGITenantMiddleware,
    bearer_claim,
    header,
    host_map,
    path_prefix,
    subdomain,
)
from tenantry.web.dependencies import tenant_session
from tenantry.web.resolvers import host_of, resolve
from tests.app.models import Customer


def view(host: str = "example.com", path: str = "/", **headers: str) -> RequestView:
    return RequestView(host_of(host), path, {k.lower(): v for k, v in headers.items()}, {})


def test_resolvers() -> None:
    sub = subdomain("example.com")
    assert sub(view("acme.example.com")) == "acme"
    assert sub(view("ACME.Example.com:8443")) == "acme"
    for host in ("example.com", "www.example.com", "a.b.example.com", "acme.other.com"):
        assert sub(view(host)) is None, host
    hosts = host_map({"Shop.Acme.com": "acme"})
    assert hosts(view("shop.acme.com:80")) == "acme"
    assert hosts(view("acme.com")) is None
    assert header()(view(**{"X-Tenant": "acme"})) == "acme"
    assert header("X-Org")(view(**{"X-Org": "  "})) is None
    assert path_prefix()(view(path="/acme/notes/1")) == Resolution("acme", "/acme")
    assert path_prefix()(view(path="/")) is None
    assert path_prefix("/t/")(view(path="/t/acme")) == Resolution("acme", "/t/acme")
    assert path_prefix("/t")(view(path="/tx/acme")) is None

    def decode(token: str) -> dict[str, Any]:
        if token != "good":
            raise ValueError("bad signature")
        return {"tenant": "acme", "sub": "ann"}

    claim = bearer_claim(decode)
    assert claim(view(authorization="Bearer good")) == "acme"
    assert claim(view(authorization="Bearer forged")) is None
    assert claim(view(authorization="Basic good")) is None
    assert bearer_claim(decode, "sub")(view(authorization="bearer good")) == "ann"
    both = (path_prefix("/t"), header())
    assert resolve(view(path="/t/acme/x", **{"X-Tenant": "globex"}), both) == Resolution(
        "acme", "/t/acme"
    )
    assert resolve(view(path="/x", **{"X-Tenant": "globex"}), both) == Resolution("globex")
    assert resolve(view(path="/x"), both) is None
    assert host_of("[::1]:8000") == "[::1]"


@pytest.fixture
def acme_globex(tenancy: Tenancy) -> Iterator[Tenancy]:
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    yield tenancy


# -- ASGI ---------------------------------------------------------------------------------


def starlette_app() -> Starlette:
    def sync_endpoint(request: Request) -> JSONResponse:  # runs in Starlette's threadpool
        return JSONResponse({"tenant": current_tenant(), "path": request.url.path})

    async def async_endpoint(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "tenant": current_tenant(),
                "route": request.scope["path"],
                "root_path": request.scope.get("root_path", ""),
                "url": str(request.url_for("async_endpoint")),
            }
        )

    return Starlette(
        routes=[
            Route("/sync", sync_endpoint),
            Route("/async", async_endpoint, name="async_endpoint"),
        ]
    )


def http_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://example.com")


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_asgi_middleware_selects_the_tenant_per_request(acme_globex: Tenancy, kind: str) -> None:
    async def main() -> None:
        tenancy: Any = AsyncTenancy(acme_globex) if kind == "async" else acme_globex
        app = TenantMiddleware(
            starlette_app(), tenancy, [header(), subdomain("example.com"), path_prefix()]
        )
        async with http_client(app) as http:
            got = await http.get("/sync", headers={"X-Tenant": "globex"})
            assert got.json()["tenant"] == "globex"  # visible in a threadpool endpoint
            got = await http.get("http://acme.example.com/async")
            assert got.json()["tenant"] == "acme"
            got = (await http.get("/acme/async")).json()
            assert got["tenant"] == "acme"  # routed on the path with the prefix stripped
            assert got["root_path"] == "/acme"
            assert got["url"] == "http://example.com/acme/async"  # URLs keep the prefix
            assert current_tenant() is None

            async def one(n: int) -> tuple[str, str]:
                name = ("acme", "globex")[n % 2]
                path = "/sync" if n % 3 else "/async"
                r = await http.get(path, headers={"X-Tenant": name})
                return name, r.json()["tenant"]

            pairs = await asyncio.gather(*(one(n) for n in range(40)))
            assert all(want == got for want, got in pairs)
        if isinstance(tenancy, AsyncTenancy):
            await tenancy.dispose()

    asyncio.run(main())


def test_asgi_context_is_set_for_the_request_only(acme_globex: Tenancy) -> None:
    seen: list[str | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_tenant())
        await PlainTextResponse("ok")(scope, receive, send)

    async def main() -> None:
        middleware = TenantMiddleware(app, acme_globex, header(), required=False)
        async with http_client(middleware) as http:
            await http.get("/", headers={"X-Tenant": "acme"})
            assert current_tenant() is None
            with use("globex"):  # a tenant already selected outside never leaks in
                await http.get("/")
                assert current_tenant() == "globex"

        scope = {"type": "http", "path": "/", "headers": [(b"x-tenant", b"acme")]}
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            sent.append(message)

        await middleware(scope, receive, send)  # in this very task: reset afterwards
        assert current_tenant() is None

    asyncio.run(main())
    assert seen == ["acme", None, "acme"]


def test_asgi_rejections_are_configurable(acme_globex: Tenancy) -> None:
    async def main() -> None:
        default = TenantMiddleware(starlette_app(), acme_globex, header())
        custom = TenantMiddleware(
            starlette_app(),
            acme_globex,
            header(),
            on_missing=Reject(401, "log in first", "text/plain"),
            on_unknown=lambda request, name: Reject(410, json.dumps({"gone": name})),
        )
        async with http_client(default) as http:
            r = await http.get("/async")
            assert (r.status_code, r.json()) == (400, {"detail": "no tenant in request"})
            r = await http.get("/async", headers={"X-Tenant": "nope"})
            assert (r.status_code, r.json()) == (404, {"detail": "unknown tenant"})
            r = await http.get("/async", headers={"X-Tenant": "Not-Valid!"})
            assert r.status_code == 404
        async with http_client(custom) as http:
            r = await http.get("/async")
            assert (r.status_code, r.text, r.headers["content-type"]) == (
                401,
                "log in first",
                "text/plain",
            )
            r = await http.get("/async", headers={"X-Tenant": "nope"})
            assert (r.status_code, r.json()) == (410, {"gone": "nope"})

    asyncio.run(main())


def test_asgi_websocket_refused_and_lifespan_passes(acme_globex: Tenancy) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    async def main() -> None:
        middleware = TenantMiddleware(app, acme_globex, header())
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        await middleware({"type": "websocket", "path": "/", "headers": []}, receive, send)
        assert sent == [{"type": "websocket.close", "code": 1008}]
        await middleware({"type": "lifespan"}, receive, send)

    asyncio.run(main())
    assert calls == ["lifespan"]


# -- WSGI ---------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("content-type", "application/json")])
    # A streamed body: produced while the server iterates, after the middleware returned.
    yield json.dumps(
        {
            "tenant": current_tenant(),
            "script_name": environ.get("SCRIPT_NAME", ""),
            "path_info": environ.get("PATH_INFO"),
        }
    ).encode()


def test_wsgi_middleware_selects_the_tenant_per_request(acme_globex: Tenancy) -> None:
    app = WSGITenantMiddleware(wsgi_app, acme_globex, [path_prefix("/t"), header()])
    client = Client(app)
    r = client.get("/x", headers={"X-Tenant": "globex"})
    assert r.json == {"tenant": "globex", "script_name": "", "path_info": "/x"}
    r = client.get("/t/acme/notes/1")
    assert r.json == {"tenant": "acme", "script_name": "/t/acme", "path_info": "/notes/1"}
    assert current_tenant() is None  # nothing leaked into the server's thread

    r = client.get("/x")
    assert (r.status_code, r.json) == (400, {"detail": "no tenant in request"})
    r = client.get("/x", headers={"X-Tenant": "nope"})
    assert (r.status_code, r.json) == (404, {"detail": "unknown tenant"})

    optional = WSGITenantMiddleware(
        wsgi_app,
        acme_globex,
        header(),
        required=lambda request: request.path != "/health",
        on_unknown=Reject(403, "no", "text/plain"),
    )
    with use("acme"):  # an outer selection does not reach a request without tenant
        assert Client(optional).get("/health").json["tenant"] is None
    assert Client(optional).get("/x").status_code == 400
    r = Client(optional).get("/x", headers={"X-Tenant": "nope"})
    assert (r.status_code, r.text) == (403, "no")


def test_fastapi_dependency_yields_the_request_tenant_session(acme_globex: Tenancy) -> None:
    with acme_globex.session("globex") as s:
        s.add(Customer(name="Gail"))
        s.commit()

    async def main() -> None:
        tenancy = AsyncTenancy(acme_globex)
        tenant_dependency = Depends(tenant_session(tenancy))
        app = FastAPI()
        app.add_middleware(TenantMiddleware, tenancy=tenancy, resolvers=header(), required=False)

        async def names(session: AsyncSession = tenant_dependency) -> list[str]:
            return list(await session.scalars(sa.select(Customer.name)))

        app.get("/names")(names)
        async with http_client(app) as http:
            assert (await http.get("/names", headers={"X-Tenant": "globex"})).json() == ["Gail"]
            assert (await http.get("/names", headers={"X-Tenant": "acme"})).json() == []
            r = await http.get("/names")  # tenant optional here, but the dependency needs one
            assert (r.status_code, r.json()) == (400, {"detail": "no tenant in request"})
        await tenancy.dispose()

    asyncio.run(main())

"""The ``domains`` resolver behind the real ASGI and WSGI middlewares."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import Client

from tenantry import Tenancy, current_tenant
from tenantry.aio import AsyncTenancy
from tenantry.web import TenantMiddleware, WSGITenantMiddleware, domains

#: Host header -> the tenant it must select (None: refused, 400).
EXPECTED: dict[str, str | None] = {
    "acme.com": "acme",
    "ACME.com:8443": "acme",
    "www.acme.com": "acme",
    "xn--bcher-kva.example": "acme",  # bücher.example, as a client sends it
    "xn--bcher-kva.example.:443": "acme",
    "globex.com": "globex",
    "shop.globex.io": "globex",
    "evil.com": None,  # unknown: never another tenant
    "sub.acme.com": None,  # not registered: no suffix matching
    "acme.com.evil.com": None,
    "127.0.0.1:8000": None,
    "[::1]:8000": None,
}


@pytest.fixture
def hosted(tenancy: Tenancy) -> Tenancy:
    for tenant, names in {"acme": ["acme.com", "www.acme.com", "Bücher.example"],
                          "globex": ["globex.com", "shop.globex.io"]}.items():
        tenancy.create_tenant(tenant)
        for name in names:
            tenancy.add_domain(tenant, name)
    return tenancy


def app() -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"tenant": current_tenant()})

    return Starlette(routes=[Route("/", endpoint)])


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_asgi_selects_the_tenant_of_the_host(hosted: Tenancy, kind: str) -> None:
    async def main() -> None:
        tenancy: Any = AsyncTenancy(hosted) if kind == "async" else hosted
        middleware = TenantMiddleware(app(), tenancy, domains(tenancy))
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://x.invalid") as http:
            for host, tenant in EXPECTED.items():
                r = await http.get("/", headers={"Host": host})
                if tenant is None:
                    assert (r.status_code, r.json()) == (400, {"detail": "no tenant in request"})
                else:
                    assert (r.status_code, r.json()) == (200, {"tenant": tenant}), host
            hosted.add_domain("globex", "evil.com")  # registered now: served at once
            r = await http.get("/", headers={"Host": "evil.com"})
            assert r.json() == {"tenant": "globex"}
        if isinstance(tenancy, AsyncTenancy):
            await tenancy.dispose()

    asyncio.run(main())


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("content-type", "application/json")])
    yield json.dumps({"tenant": current_tenant()}).encode()


def test_wsgi_selects_the_tenant_of_the_host(hosted: Tenancy) -> None:
    client = Client(WSGITenantMiddleware(wsgi_app, hosted, domains(hosted)))
    for host, tenant in EXPECTED.items():
        r = client.get("/", headers={"Host": host})
        if tenant is None:
            assert r.status_code == 400, host
        else:
            assert (r.status_code, r.json) == (200, {"tenant": tenant}), host
    hosted.drop_tenant("globex", confirm=True)  # its domains go with it
    assert client.get("/", headers={"Host": "globex.com"}).status_code == 400
    hosted.rename_tenant("acme", "acme2")  # its domains stay with it
    assert client.get("/", headers={"Host": "www.acme.com"}).json == {"tenant": "acme2"}


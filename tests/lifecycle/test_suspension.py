"""Suspension: the data stays and is migrated, every front door refuses the tenant, other
processes notice within their freshness interval, and the web answers 403."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import Client

from tenantry import (
    State,
    Tenancy,
    TenantSuspended,
    UnknownTenant,
    current_tenant,
)
from tenantry.aio import AsyncTenancy
from tenantry.errors import ConfigurationError, TenantryError
from tenantry.web import Reject, TenantMiddleware, WSGITenantMiddleware, header
from tests.app.models import Customer, Setting
from tests.support.databases import seeded


@pytest.fixture
def acme_globex(tenancy: Tenancy) -> Iterator[Tenancy]:
    yield seeded(tenancy, "acme", "globex")


def test_sync_doors_refuse_a_suspended_tenant_and_resume_restores_them(
    acme_globex: Tenancy,
) -> None:
    t = acme_globex
    with t.session("acme") as s:  # the route is cached before the suspension
        assert s.scalar(sa.select(Customer.name)) == "acme-seed"
    info = t.suspend_tenant("acme", reason="unpaid invoice")
    assert (info.state, info.reason) == (State.SUSPENDED, "unpaid invoice")
    with pytest.raises(TenantSuspended, match="unpaid invoice") as caught:
        t.session("acme")
    assert caught.value.name == "acme" and isinstance(caught.value, PermissionError)
    with pytest.raises(TenantSuspended), t.connection("acme"):
        pass
    with pytest.raises(TenantSuspended), t.use("acme"):
        pass
    with t.admin_session() as s, pytest.raises(TenantSuspended):
        s.execute(sa.select(Customer).execution_options(tenant="acme"))
    # another tenant is untouched, and across() leaves the suspended one out
    with t.session("globex") as s:
        assert s.scalar(sa.select(Customer.name)) == "globex-seed"
    assert {row.tenant for row in t.across(sa.select(Customer.name))} == {"globex"}
    # idempotent; a new reason replaces the old one; the data stays
    assert t.suspend_tenant("acme", reason="unpaid invoice").reason == "unpaid invoice"
    assert t.suspend_tenant("acme", reason="abuse").reason == "abuse"
    resumed = t.resume_tenant("acme")
    assert (resumed.state, resumed.reason) == (State.READY, None)
    assert t.resume_tenant("acme").state is State.READY  # not suspended: nothing to do
    with t.session("acme") as s:
        assert s.scalar(sa.select(Customer.name)) == "acme-seed"


def test_bad_suspensions_are_typed_errors(acme_globex: Tenancy) -> None:
    with pytest.raises(UnknownTenant):
        acme_globex.suspend_tenant("nope")
    with pytest.raises(UnknownTenant):
        acme_globex.resume_tenant("nope")
    with acme_globex.engine.begin() as conn:
        conn.execute(sa.text("UPDATE tenantry_tenants SET state = 'dropping' "
                             "WHERE name = 'globex'"))
    with pytest.raises(TenantryError, match="state is dropping"):
        acme_globex.suspend_tenant("globex")


def test_other_processes_notice_within_their_interval(acme_globex: Tenancy) -> None:
    url = acme_globex.engine.url.render_as_string(hide_password=False)
    with pytest.raises(ConfigurationError, match="refresh_interval"):
        Tenancy(url, refresh_interval=-1)
    other = Tenancy(url, refresh_interval=0.05)
    try:
        assert other.config().build().core.store.freshness.interval == 0.05
        with other.session("acme") as s:  # cached in the other process
            assert s.scalar(sa.select(Customer.name)) == "acme-seed"
        acme_globex.suspend_tenant("acme")
        time.sleep(0.1)
        with pytest.raises(TenantSuspended):
            other.session("acme")
        acme_globex.resume_tenant("acme")
        time.sleep(0.1)
        with other.session("acme") as s:
            assert s.scalar(sa.select(Customer.name)) == "acme-seed"
    finally:
        other.dispose()


def test_a_process_rereads_the_registry_only_once_per_interval(acme_globex: Tenancy) -> None:
    other = Tenancy(acme_globex.engine.url.render_as_string(hide_password=False))
    try:
        other.core.store.freshness.interval = 3600.0
        other.session("acme").close()
        acme_globex.suspend_tenant("acme")
        other.session("acme").close()  # within the interval: the cached route still holds
        other.core.store.freshness.interval = 0.0
        with pytest.raises(TenantSuspended):
            other.session("acme")
    finally:
        other.dispose()


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_doors_refuse_a_suspended_tenant(acme_globex: Tenancy, driver: str) -> None:
    async def main() -> None:
        async with AsyncTenancy(acme_globex, driver=driver) as at:  # type: ignore[arg-type]
            async with at.session("acme") as s:
                assert await s.scalar(sa.select(Customer.name)) == "acme-seed"
            await at.suspend_tenant("acme", reason="late")
            with pytest.raises(TenantSuspended, match="late"):
                await at.session("acme")
            with pytest.raises(TenantSuspended):
                async with at.connection("acme"):
                    pass
            await at.resume_tenant("acme")
            async with at.session("acme") as s:
                assert await s.scalar(sa.select(Customer.name)) == "acme-seed"

    asyncio.run(main())


def test_migrations_reach_suspended_tenants_and_leave_them_suspended(
    acme_globex: Tenancy,
) -> None:
    t = acme_globex
    t.migrate_all("t001", confirm=True)
    t.suspend_tenant("acme", reason="unpaid")
    report = t.migrate_all()
    assert {o.tenant: o.result for o in report.tenants} == {
        "acme": "upgraded", "globex": "upgraded"}
    info = t.get_tenant("acme")
    assert (info.state, info.revision, info.reason) == (State.SUSPENDED, "t002", "unpaid")
    assert {s.tenant: s.state for s in t.status()} == {"acme": "suspended", "globex": "ready"}
    # a failing migration of a suspended tenant records the error and keeps it suspended
    with t.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE tenant_acme.orders"))
    report = t.migrate_all("t001", confirm=True)
    failed = {o.tenant for o in report.tenants if not o.ok}
    assert failed == {"acme"}
    info = t.get_tenant("acme")
    assert info.state is State.SUSPENDED and info.error
    assert t.resume_tenant("acme").state is State.FAILED  # its last migration failed
    # a suspended tenant at the target is "current", not migrated again
    t.suspend_tenant("globex")
    outcomes = t.migrate_all("t001", ["globex"]).tenants
    assert [(o.tenant, o.result) for o in outcomes] == [("globex", "current")]


def test_an_older_registry_is_upgraded_for_suspension(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    with tenancy.engine.begin() as conn:  # the registry as tenantry 0.x made it
        conn.execute(sa.text("ALTER TABLE tenantry_tenants DROP COLUMN reason"))
        conn.execute(sa.text("ALTER TABLE tenantry_tenants DROP CONSTRAINT tenantry_tenants_state"))
        conn.execute(sa.text(
            "ALTER TABLE tenantry_tenants ADD CONSTRAINT tenantry_tenants_state CHECK "
            "(state IN ('provisioning', 'ready', 'migrating', 'failed', 'dropping'))"))
    later = Tenancy(tenancy.engine)
    assert later.suspend_tenant("acme", reason="x").state is State.SUSPENDED
    with tenancy.engine.connect() as conn:
        check = conn.scalar(sa.text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'tenantry_tenants_state'"))
    assert "'suspended'" in str(check)


def _starlette() -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"tenant": current_tenant()})

    return Starlette(routes=[Route("/", endpoint)])


def _wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [str(current_tenant()).encode()]


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_the_asgi_middleware_answers_403_for_a_suspended_tenant(
    acme_globex: Tenancy, kind: str
) -> None:
    async def main() -> None:
        at = AsyncTenancy(acme_globex) if kind == "async" else None
        facade: Any = at if at is not None else acme_globex
        app = TenantMiddleware(_starlette(), facade, header())
        custom = TenantMiddleware(_starlette(), facade, header(),
                                  on_suspended=Reject(402, "pay up", "text/plain"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            assert (await client.get("/", headers={"X-Tenant": "acme"})).json() == {
                "tenant": "acme"}
            acme_globex.suspend_tenant("acme")
            r = await client.get("/", headers={"X-Tenant": "acme"})
            assert (r.status_code, r.json()) == (403, {"detail": "tenant suspended"})
            r = await client.get("/", headers={"X-Tenant": "globex"})
            assert r.json() == {"tenant": "globex"}  # never a fallback, others unaffected
        transport = httpx.ASGITransport(app=custom)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            r = await client.get("/", headers={"X-Tenant": "acme"})
            assert (r.status_code, r.text) == (402, "pay up")
        if at is not None:
            await at.dispose()

    asyncio.run(main())


def test_the_wsgi_middleware_answers_403_for_a_suspended_tenant(acme_globex: Tenancy) -> None:
    client = Client(WSGITenantMiddleware(_wsgi, acme_globex, header()))
    assert client.get("/", headers={"X-Tenant": "acme"}).text == "acme"
    acme_globex.suspend_tenant("acme")
    r = client.get("/", headers={"X-Tenant": "acme"})
    assert (r.status_code, r.json) == (403, {"detail": "tenant suspended"})
    assert client.get("/", headers={"X-Tenant": "globex"}).text == "globex"


def test_seeded_settings_survive_suspension(acme_globex: Tenancy) -> None:
    with acme_globex.session("acme") as s:
        s.add(Setting(key="k", value="v"))
        s.commit()
    acme_globex.suspend_tenant("acme")
    acme_globex.resume_tenant("acme")
    with acme_globex.session("acme") as s:
        assert s.scalar(sa.select(Setting.value).where(Setting.key == "k")) == "v"

"""The placeholder schema in SQL SQLAlchemy does not translate (``text()``, driver SQL): the
tenant's schema on a tenant's connection, :class:`NoTenantSelected` without one; and the
per-statement hooks add no connection event to tenantry's engines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tenantry import NoTenantSelected, Tenancy, TenantMismatch
from tenantry.aio import AsyncTenancy
from tests.app.models import Customer
from tests.support.latency import DRIVERS

NAMES = sa.text("SELECT name FROM __tenant__.customers ORDER BY name")
QUOTED = sa.text('SELECT name FROM "__tenant__"."customers" ORDER BY name')
CONNECTION_EVENTS = (
    "before_execute", "after_execute", "before_cursor_execute", "after_cursor_execute",
    "begin", "commit", "rollback", "savepoint", "rollback_savepoint", "release_savepoint",
    "begin_twophase", "prepare_twophase", "commit_twophase", "rollback_twophase",
    "engine_connect", "set_connection_execution_options",
)


def seeded(tenancy: Tenancy) -> Tenancy:
    for name, who in (("acme", "Ann"), ("beta", "Bob")):
        tenancy.create_tenant(name)
        with tenancy.session(name) as s:
            s.add(Customer(name=who))
            s.commit()
    return tenancy


@pytest.fixture
def two(tenancy: Tenancy) -> Tenancy:
    return seeded(tenancy)


def test_text_with_the_placeholder_runs_in_the_tenant(two: Tenancy) -> None:
    with two.session("acme") as s:
        assert s.scalars(NAMES).all() == ["Ann"]
        assert s.scalars(QUOTED).all() == ["Ann"]
        s.execute(sa.text("INSERT INTO __tenant__.customers (name) VALUES (:n)"),
                  [{"n": "Amy"}, {"n": "Abe"}])  # executemany
        s.commit()
    with two.connection("beta") as conn:
        assert conn.scalars(NAMES).all() == ["Bob"]
        conn.exec_driver_sql("UPDATE __tenant__.customers SET name = 'Bea'")  # no parameters
        assert conn.scalars(NAMES).all() == ["Bea"]
        conn.commit()
    with two.session("acme") as s:
        assert s.scalars(NAMES).all() == ["Abe", "Amy", "Ann"]


def test_text_with_the_placeholder_needs_a_tenant(two: Tenancy) -> None:
    with two.session() as s, pytest.raises(NoTenantSelected, match="customers"):
        s.execute(NAMES)
    with two.connection() as conn, pytest.raises(NoTenantSelected, match="customers"):
        conn.exec_driver_sql("DELETE FROM __tenant__.customers")
    with two.admin_connection() as conn:
        with pytest.raises(NoTenantSelected, match="customers"):
            conn.execute(NAMES)
        assert conn.scalars(NAMES.execution_options(tenant="beta")).all() == ["Bob"]
    with two.session("acme") as s, pytest.raises(TenantMismatch, match=r"'beta'.*'acme'"):
        s.execute(NAMES.execution_options(tenant="beta"))


def test_only_the_placeholder_schema_is_replaced(two: Tenancy) -> None:
    """A schema whose name merely contains the placeholder is not touched."""
    with two.connection("acme") as conn:
        conn.exec_driver_sql('CREATE SCHEMA "x__tenant__"')
        conn.exec_driver_sql('CREATE TABLE "x__tenant__".t (v text)')
        conn.exec_driver_sql("""INSERT INTO "x__tenant__".t VALUES ('kept')""")
        assert conn.scalar(sa.text('SELECT v FROM "x__tenant__".t')) == "kept"
        conn.rollback()


def test_database_tenants_too(dbt: Tenancy) -> None:
    seeded(dbt)
    with dbt.session("beta") as s:
        assert s.scalars(NAMES).all() == ["Bob"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_sessions_too(two: Tenancy, driver: str) -> None:
    async def main() -> list[str]:
        at = AsyncTenancy(two, driver=driver)  # type: ignore[arg-type]
        try:
            async with at.session("acme") as s:
                return list((await s.scalars(NAMES)).all())
        finally:
            await at.dispose()

    assert asyncio.run(main()) == ["Ann"]


def listeners(engine: sa.Engine) -> dict[str, int]:
    return {name: len(getattr(engine.dispatch, name)) for name in CONNECTION_EVENTS
            if len(getattr(engine.dispatch, name))}


@pytest.mark.parametrize("make", [
    lambda t: t.engine, lambda t: t.core.route("acme"),
])
def test_no_connection_event_on_the_hot_path(
    two: Tenancy, make: Callable[[Tenancy], sa.Engine]
) -> None:
    """A connection event listener costs SQLAlchemy a dispatch join per connection; the
    checks are dialect events instead (bench/hooks_floor.py)."""
    assert listeners(make(two)) == {}


def test_no_connection_event_on_database_tenants_and_async(dbt: Tenancy) -> None:
    seeded(dbt)
    assert listeners(dbt.core.route("acme")) == {}

    async def main() -> dict[str, int]:
        at = AsyncTenancy(dbt)
        try:
            async with at.session("acme") as s:
                await s.execute(sa.text("SELECT 1"))
                conn = await s.connection()
                return listeners(conn.sync_engine)
        finally:
            await at.dispose()

    assert asyncio.run(main()) == {}

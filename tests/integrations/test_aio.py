"""tenantry.aio: async sessions with the same rules as the sync ones, on both async drivers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from uuid import uuid4

import pytest
import sqlalchemy as sa

from tenantry import NoTenantSelected, Tenancy, UnknownTenant, current_tenant, use
from tenantry.aio import AsyncTenancy, async_url, sync_url
from tenantry.errors import ConfigurationError
from tests.app.models import Customer, User
from tests.support.databases import MIGRATIONS, seeded

DRIVERS = ["psycopg", "asyncpg"]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def acme_globex(tenancy: Tenancy) -> Iterator[Tenancy]:
    yield seeded(tenancy, "acme", "globex")


def test_async_url_picks_the_driver() -> None:
    assert async_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert async_url("postgresql://u@h/db", "asyncpg").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"
    url = "postgresql+asyncpg://u@h/db?prepared_statement_cache_size=0"
    assert sync_url(url).drivername == "postgresql+psycopg"
    assert "prepared_statement_cache_size" not in sync_url(url).query
    with pytest.raises(ConfigurationError):
        async_url("mysql://u@h/db")
    with pytest.raises(ConfigurationError):
        async_url("postgresql://u@h/db", "aiopg")  # type: ignore[arg-type]


@pytest.mark.slow
def test_many_concurrent_tasks_never_see_another_tenant(tenancy: Tenancy) -> None:
    """200 tasks over 20 tenants, per driver: each writes and reads only its own rows."""
    tenants = [f"t{i:02d}" for i in range(20)]
    for name in tenants:
        tenancy.create_tenant(name)

    async def worker(at: AsyncTenancy, driver: str, n: int) -> list[str]:
        name = tenants[n % len(tenants)]
        mine = f"{name}:{driver}:{n}"
        if n % 2:  # half select the tenant implicitly, half explicitly
            async with at.use(name), at.session() as s:
                s.add(Customer(name=mine))
                await s.commit()
                await asyncio.sleep(random.random() / 100)
                seen = list((await s.scalars(sa.select(Customer.name))).all())
        else:
            async with at.session(name) as s:
                s.add(Customer(name=mine))
                await s.flush()
                await asyncio.sleep(random.random() / 100)
                seen = list((await s.scalars(sa.select(Customer.name))).all())
                await s.commit()
        assert mine in seen
        return [row for row in seen if not row.startswith(f"{name}:")]

    async def main(driver: str) -> None:
        async with AsyncTenancy(
            tenancy,
            driver=driver,
            engine_options={"pool_size": 20},  # type: ignore[arg-type]
        ) as at:
            foreign = await asyncio.gather(*(worker(at, driver, n) for n in range(200)))
            assert [row for rows in foreign for row in rows] == []
            for name in tenants:
                async with at.session(name) as s:
                    count = await s.scalar(sa.select(sa.func.count()).select_from(Customer))
                assert count == 10 * (DRIVERS.index(driver) + 1)

    for driver in DRIVERS:
        asyncio.run(main(driver))


def test_tenant_context_propagates_into_tasks(acme_globex: Tenancy, driver: str) -> None:
    async def names(at: AsyncTenancy) -> tuple[str | None, list[str]]:
        async with at.session() as s:
            return current_tenant(), list((await s.scalars(sa.select(Customer.name))).all())

    async def main() -> None:
        async with AsyncTenancy(acme_globex, driver=driver) as at:  # type: ignore[arg-type]
            async with at.use("acme"):
                child = asyncio.create_task(names(at))  # copies the context now
                gathered = await asyncio.gather(names(at), names(at))
                async with at.use("globex"):
                    assert await names(at) == ("globex", ["globex-seed"])
                assert await child == ("acme", ["acme-seed"])
                assert gathered == [("acme", ["acme-seed"])] * 2
            assert current_tenant() is None
            with use("globex"):  # the plain sync selector is the same ContextVar
                assert await asyncio.create_task(names(at)) == ("globex", ["globex-seed"])

    asyncio.run(main())


def test_no_tenant_selected_is_raised(acme_globex: Tenancy, driver: str) -> None:
    async def main() -> None:
        async with AsyncTenancy(acme_globex, driver=driver) as at:  # type: ignore[arg-type]
            async with at.session() as s:
                assert (await s.scalars(sa.select(User))).all() == []  # shared: fine
                with pytest.raises(NoTenantSelected, match="customers"):
                    await s.execute(sa.select(Customer))
            async with at.connection() as conn:
                with pytest.raises(NoTenantSelected):
                    await conn.execute(sa.insert(Customer).values(name="x"))
            async with at.connection("acme") as conn:
                rows = (await conn.execute(sa.select(Customer.name))).scalars().all()
                assert rows == ["acme-seed"]

    asyncio.run(main())


def test_unknown_tenants_are_refused(acme_globex: Tenancy, driver: str) -> None:
    async def main() -> None:
        async with AsyncTenancy(acme_globex, driver=driver) as at:  # type: ignore[arg-type]
            with pytest.raises(UnknownTenant, match="nope"):
                async with at.session("nope"):
                    pass
            with pytest.raises(UnknownTenant):
                async with at.use("nope"):
                    pass
            assert current_tenant() is None
            session = await at.session("acme")  # awaitable form, and routing is now cached
            await session.close()
            assert await at.drop_tenant("acme", confirm=True)
            with pytest.raises(UnknownTenant):
                await at.session("acme")

    asyncio.run(main())


def test_tenant_dropped_elsewhere_surfaces_as_unknown_tenant(
    acme_globex: Tenancy, driver: str
) -> None:
    async def main() -> None:
        async with AsyncTenancy(acme_globex, driver=driver) as at:  # type: ignore[arg-type]
            async with at.session("acme") as s:
                assert await s.scalar(sa.select(Customer.name)) == "acme-seed"
            elsewhere = Tenancy(acme_globex.engine)  # another process's view of the registry
            elsewhere.drop_tenant("acme", confirm=True)  # behind the async cache's back
            async with at.session("acme") as s:
                with pytest.raises(UnknownTenant, match="acme"):
                    await s.execute(sa.select(Customer))

    asyncio.run(main())


def test_changes_through_the_sync_facade_reach_the_async_routes(
    acme_globex: Tenancy, driver: str
) -> None:
    """One core: a drop through the Tenancy the AsyncTenancy wraps forgets the async route."""
    async def main() -> None:
        async with AsyncTenancy(acme_globex, driver=driver) as at:  # type: ignore[arg-type]
            await at.route("acme")
            assert "acme" in at.router
            acme_globex.drop_tenant("acme", confirm=True)
            assert "acme" not in at.router
            with pytest.raises(UnknownTenant, match="acme"):
                await at.session("acme")

    asyncio.run(main())


def test_admin_operations_from_async_code(database_url: str, driver: str) -> None:

    async def main() -> None:
        at = AsyncTenancy(
            database_url,
            driver=driver,  # type: ignore[arg-type]
            tenant_migrations=MIGRATIONS / "tenant",
            shared_migrations=MIGRATIONS / "shared",
        )
        async with at:
            assert at.driver == driver
            await at.migrate_shared()
            await at.create_tenant("acme")
            assert [t.name for t in await at.list_tenants()] == ["acme"]
            assert await at.tenant_exists("acme")
            assert [s.tenant for s in await at.status()] == ["acme"]
            renamed = await at.rename_tenant("acme", "acme2")
            assert renamed.name == "acme2"
            async with at.session("acme2") as s:
                s.add(Customer(name="x"))
                await s.commit()
            with pytest.raises(UnknownTenant):
                await at.session("acme")
            with pytest.raises(ConfigurationError):
                AsyncTenancy(at.admin, prefix="x_")

    asyncio.run(main())


def test_pgbouncer_safe_settings_work(acme_globex: Tenancy, driver: str) -> None:
    """The settings docs/asyncio.md gives for PgBouncer transaction pooling, on each driver."""
    url = acme_globex.engine.url
    if driver == "asyncpg":
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        connect_args: dict[str, object] = {
            "statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__asyncpg_{uuid4()}__",
        }
    else:
        connect_args = {"prepare_threshold": None}

    async def main() -> None:
        at = AsyncTenancy(
            url,
            driver=driver,  # type: ignore[arg-type]
            engine_options={"connect_args": connect_args},
        )
        async with at:
            for _ in range(3):
                for name in ("acme", "globex"):
                    async with at.session(name) as s:
                        names = (await s.scalars(sa.select(Customer.name))).all()
                        assert names == [f"{name}-seed"]

    asyncio.run(main())


def test_async_twins_answer_as_the_sync_methods(acme_globex: Tenancy, driver: str) -> None:
    """The async counterparts added for parity give what the sync methods give."""
    query = sa.select(Customer.name).order_by(Customer.name)

    async def main() -> None:
        async with AsyncTenancy(acme_globex, driver=driver) as at:  # type: ignore[arg-type]
            rows = [(r.tenant, tuple(r.row)) async for r in at.across(query)]
            assert sorted(rows) == sorted((r.tenant, tuple(r.row))
                                          for r in acme_globex.across(query))
            assert rows  # both tenants have a seed row
            assert await at.locate("acme") == acme_globex.locate("acme")
            assert (await at.drift()).total == acme_globex.drift().total == 2
            renamed = await at.rename_tenant("globex", "initech")
            assert renamed.name == "initech" and acme_globex.tenant_exists("initech")

    asyncio.run(main())

"""Errors never wait for the pool: with the pool exhausted (the failing session holds its only
connection), a typo is the driver's error, a vanished tenant is UnknownTenant and a reach into
another tenant is TenantIsolationError naming it, each within 50 ms (schema strategy; the
database strategy's are in tests/hooks/test_error_latency_database.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tenantry import Tenancy, TenantIsolationError, UnknownTenant, make_engine
from tenantry.aio import AsyncTenancy
from tenantry.hooks import probe
from tenantry.strict.denials import install_hooks
from tests.app.models import Customer, User
from tests.support.databases import MIGRATIONS
from tests.support.latency import (
    COLD,
    DRIVERS,
    FAST,
    POOL_TIMEOUT,
    TRIES,
    TYPO,
    ahold,
    atimed,
    drop_schema,
    quick,
    timed,
)
from tests.support.strict import drop_roles

TIGHT = {"pool_size": 1, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT}

STATEMENTS = {
    "orm": sa.select(TYPO),  # -> tenant_a.custmers: ambiguous, the probe tells
    "text": sa.text("SELECT * FROM custmers"),  # unqualified: the message alone tells
}


def make(url: str, *, strict: bool = False, **pool: Any) -> Tenancy:
    t = Tenancy(
        url,
        strict=strict,
        engine_options=pool or TIGHT,
        tenant_migrations=MIGRATIONS / "tenant",
        shared_migrations=MIGRATIONS / "shared",
    )
    t.migrate_shared()
    if strict:
        t.grant_shared(User.__table__)
    for name in ("a", "b"):
        t.create_tenant(name)
    return t


@pytest.fixture
def tight(database_url: str) -> Iterator[Tenancy]:
    """Tenants a and b; the main engine's pool holds one connection."""
    t = make(database_url)
    yield t
    t.dispose()


def hold(session: Session) -> None:
    """Make ``session`` hold the pool's only connection (and no lock on tenant tables)."""
    session.execute(sa.text("SELECT 1"))
    pool = session.get_bind().pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.checkedout() == pool.size() + pool.overflow() >= 1  # nothing left


def typo(t: Tenancy, tenant: str = "a", limit: float = FAST) -> float:
    """A typo'd tenant table with the pool exhausted: the driver's error, within ``limit``."""
    with t.session(tenant) as s:
        hold(s)
        error, took = timed(lambda: s.execute(sa.select(TYPO)))
    assert isinstance(error, sa.exc.ProgrammingError), repr(error)
    assert "custmers" in str(error) and took <= limit, took
    return took


@pytest.mark.parametrize("kind", sorted(STATEMENTS))
def test_typo_is_the_driver_error_at_once_with_the_pool_exhausted(
    tight: Tenancy, kind: str
) -> None:
    typo(tight, limit=COLD)  # opens the probe
    times = []
    for _ in range(TRIES):
        with tight.session("a") as s:
            hold(s)
            error, took = timed(lambda: s.execute(STATEMENTS[kind]))
        assert isinstance(error, sa.exc.ProgrammingError), repr(error)
        assert "custmers" in str(error)
        times.append(took)
    quick(times)


def test_vanished_tenant_is_unknown_at_once_with_the_pool_exhausted(
    tight: Tenancy, database_url: str
) -> None:
    typo(tight, limit=COLD)
    with tight.session("a") as s:  # compile the statement (once, ~100 ms for the ORM's first)
        s.scalars(sa.select(Customer)).all()
    drop_schema(database_url, "tenant_a")
    times = []
    for _ in range(TRIES):
        with tight.session("a") as s:
            hold(s)
            error, took = timed(lambda: s.scalars(sa.select(Customer)).all())
        assert isinstance(error, UnknownTenant) and error.name == "a", repr(error)
        times.append(took)
    quick(times)


def test_isolation_error_names_the_owner_at_once_with_the_pool_exhausted(
    database_url: str,
) -> None:
    t = make(database_url, strict=True)
    try:
        typo(t, limit=COLD)
        times = []
        for _ in range(TRIES):
            with t.session("a") as s:
                hold(s)
                error, took = timed(
                    lambda: s.execute(sa.text("SELECT * FROM tenant_b.customers"))
                )
            assert isinstance(error, TenantIsolationError) and error.owner == "b", repr(error)
            times.append(took)
        quick(times)
    finally:
        drop_roles(t)
        t.dispose()


def test_five_concurrent_errors_on_a_pool_of_five_are_all_right(database_url: str) -> None:
    """Five sessions hold the five connections, then fail at once: a typo each (two rounds),
    then a statement on a vanished tenant each."""
    t = make(database_url, pool_size=5, max_overflow=0, pool_timeout=POOL_TIMEOUT)
    seen: list[tuple[type[BaseException], BaseException, float]] = []
    lock = threading.Lock()

    def run(statement: Any, expect: type[BaseException], barrier: threading.Barrier) -> None:
        with t.session("a") as s:
            s.execute(sa.text("SELECT 1"))  # holds a connection, no lock on tenant tables
            barrier.wait(timeout=30)  # all five connections are out
            barrier.wait(timeout=30)  # the main thread checked the pool (and dropped a's schema)
            error, took = timed(lambda: s.execute(statement))
        with lock:
            seen.append((expect, error, took))

    def round_of(statement: Any, expect: type[BaseException], drop: bool = False) -> None:
        barrier = threading.Barrier(6)
        threads = [
            threading.Thread(target=run, args=(statement, expect, barrier)) for _ in range(5)
        ]
        for thread in threads:
            thread.start()
        barrier.wait(timeout=30)
        pool = t.engine.pool
        assert isinstance(pool, sa.pool.QueuePool) and pool.checkedout() == 5
        if drop:
            drop_schema(database_url, "tenant_a")
        barrier.wait(timeout=30)
        for thread in threads:
            thread.join()

    try:
        with t.session("a") as s:  # compile the statement (once, ~100 ms for the ORM's first)
            s.scalars(sa.select(Customer)).all()
        for _ in range(2):  # the first round opens the probe
            round_of(sa.select(TYPO), sa.exc.ProgrammingError)
        round_of(sa.select(Customer), UnknownTenant, drop=True)
    finally:
        t.dispose()
    report = [(want.__name__, type(error).__name__, round(took, 4)) for want, error, took in seen]
    assert len(seen) == 15
    assert all(isinstance(error, expect) for expect, error, _ in seen), report
    assert max(took for _, _, took in seen) < COLD, report  # never a pool wait


# -- asyncio -------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_errors_never_wait_for_the_pool(
    tight: Tenancy, database_url: str, driver: str
) -> None:
    async def main() -> None:
        async with AsyncTenancy(tight, driver=driver, engine_options=TIGHT) as at:  # type: ignore[arg-type]
            await asyncio.to_thread(typo, tight, "b", COLD)  # opens the probe
            async with at.session("a") as s:  # compile the statement
                await s.scalars(sa.select(Customer))
            for kind in sorted(STATEMENTS):
                times = []
                for _ in range(TRIES):
                    async with at.session("a") as s:
                        await ahold(s)
                        error, took = await atimed(lambda: s.execute(STATEMENTS[kind]))  # noqa: B023
                    assert isinstance(error, sa.exc.ProgrammingError), repr(error)
                    times.append(took)
                quick(times)
            await asyncio.to_thread(drop_schema, database_url, "tenant_a")
            times = []
            for _ in range(TRIES):
                async with at.session("a") as s:
                    await ahold(s)
                    error, took = await atimed(lambda: s.scalars(sa.select(Customer)))
                assert isinstance(error, UnknownTenant) and error.name == "a", repr(error)
                times.append(took)
            quick(times)

    asyncio.run(main())


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_five_concurrent_errors_on_a_pool_of_five(
    tight: Tenancy, database_url: str, driver: str
) -> None:
    async def one(at: AsyncTenancy, statement: Any, out: asyncio.Event, go: asyncio.Event,
                  ready: list[int]) -> tuple[BaseException, float]:
        async with at.session("a") as s:
            await s.execute(sa.text("SELECT 1"))
            ready.append(1)
            if len(ready) == 5:
                out.set()
            await go.wait()
            return await atimed(lambda: s.execute(statement))

    async def round_of(at: AsyncTenancy, statement: Any, drop: bool) -> list[Any]:
        out, go, ready = asyncio.Event(), asyncio.Event(), []
        tasks = [asyncio.create_task(one(at, statement, out, go, ready)) for _ in range(5)]
        await out.wait()  # all five connections are out
        pool = at.engine.sync_engine.pool
        assert isinstance(pool, sa.pool.QueuePool) and pool.checkedout() == 5
        if drop:
            await asyncio.to_thread(drop_schema, database_url, "tenant_a")
        go.set()
        return list(await asyncio.gather(*tasks))

    async def main() -> None:
        options = {"pool_size": 5, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT}
        async with AsyncTenancy(tight, driver=driver, engine_options=options) as at:  # type: ignore[arg-type]
            async with at.session("a") as s:  # compile the statement
                await s.scalars(sa.select(Customer))
            typos = await round_of(at, sa.select(TYPO), drop=False)  # opens the probe
            typos += await round_of(at, sa.select(TYPO), drop=False)
            gone = await round_of(at, sa.select(Customer), drop=True)
        assert all(isinstance(e, sa.exc.ProgrammingError) for e, _ in typos), typos
        assert all(isinstance(e, UnknownTenant) for e, _ in gone), gone
        assert max(took for _, took in typos + gone) < COLD, typos + gone

    asyncio.run(main())


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_isolation_error_names_the_owner_at_once(database_url: str, driver: str) -> None:
    """The owner lookup inside an async engine's error handling (strict hooks installed on
    the async engine by hand here: AsyncTenancy routes no role yet)."""
    t = make(database_url, strict=True)

    async def main() -> None:
        async with AsyncTenancy(t, driver=driver, engine_options=TIGHT) as at:  # type: ignore[arg-type]
            install_hooks(at.engine.sync_engine)
            routed = (await at.route("a")).execution_options(tenantry_role=t.tenant_role("a"))
            times = []
            for _ in range(1 + TRIES):  # the first opens the probe
                async with routed.connect() as conn:
                    assert (await conn.execute(sa.text("SELECT current_user"))).scalar() == (
                        t.tenant_role("a")
                    )
                    error, took = await atimed(
                        lambda: conn.execute(sa.text("SELECT * FROM tenant_b.customers"))
                    )
                assert isinstance(error, TenantIsolationError), repr(error)
                assert error.owner == "b", repr(error)
                times.append(took)
            assert times[0] < COLD, times
            quick(times[1:])

    try:
        asyncio.run(main())
    finally:
        drop_roles(t)
        t.dispose()


def test_probes_are_few_and_closed_with_their_engine(tight: Tenancy, database_url: str) -> None:
    def probes(like: str) -> int:
        engine = make_engine(database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                "LIKE :n AND datname = current_database()")
                return int(conn.execute(query, {"n": like}).scalar_one())
        finally:
            engine.dispose()

    typo(tight, limit=COLD)
    assert probes(probe.APPLICATION_NAME) == 1
    tight.dispose()  # the main database's probe goes with it
    assert probes(probe.APPLICATION_NAME) == 0
    # one probe per URL, at most MAX_PROBES open: the least recently used are closed
    engines = [
        make_engine(sa.make_url(database_url).update_query_dict({"application_name": f"p{i}"}))
        for i in range(probe.MAX_PROBES + 2)
    ]
    try:
        for engine in engines:
            assert probe.rows(engine, sa.text("SELECT 1")) == [(1,)]
        assert probes("p_") == probe.MAX_PROBES
    finally:
        for engine in engines:
            probe.close_for(engine)
    assert probes("p_") == 0

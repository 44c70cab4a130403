"""Errors never wait for the connection budget (database strategy): the failing session holds
the budget's only connection, yet a typo is the driver's error and a vanished tenant is
UnknownTenant within 50 ms, sync and async; five at once on a budget of five all right."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantry import DatabaseStrategy, Tenancy, TenantIsolationError, UnknownTenant
from tenantry.aio import AsyncTenancy
from tests.app.models import Customer
from tests.support.latency import (
    COLD,
    DRIVERS,
    TRIES,
    TYPO,
    ahold,
    atimed,
    drop_schema,
    quick,
    timed,
)

BUDGET_TIMEOUT = 2.0


def budget(t: Tenancy, size: int = 1) -> Tenancy:
    """``t`` with tenants a and b (on the main server), its budget ``size`` connections."""
    for name in ("a", "b"):
        t.create_tenant(name)
    strategy = t.strategy
    assert isinstance(strategy, DatabaseStrategy) and strategy.engines.max_connections == size
    return t


def spent(t: Tenancy) -> None:
    strategy = t.strategy
    assert isinstance(strategy, DatabaseStrategy)
    metrics = strategy.engines.metrics()
    assert metrics.open_connections == strategy.engines.max_connections, metrics


def hold(t: Tenancy, s: Session) -> None:
    s.execute(sa.text("SELECT 1"))
    spent(t)


def tenant_url(t: Tenancy, tenant: str) -> str:
    info = t.get_tenant(tenant)
    strategy = t.strategy
    assert isinstance(strategy, DatabaseStrategy) and info.location.database is not None
    url = strategy.servers[info.location.server or "main"].set(database=info.location.database)
    return url.render_as_string(hide_password=False)


def typo(t: Tenancy) -> float:
    with t.session("a") as s:
        hold(t, s)
        error, took = timed(lambda: s.execute(sa.select(TYPO)))
    assert isinstance(error, sa.exc.ProgrammingError), repr(error)
    return took


@pytest.fixture
def small(make_tenancy: Callable[..., Tenancy]) -> Tenancy:
    return budget(
        make_tenancy(max_connections=1, pool_size=1, budget_timeout=BUDGET_TIMEOUT,
                     servers={})
    )


def test_errors_never_wait_for_the_budget(small: Tenancy) -> None:
    assert typo(small) < COLD  # opens the probe of a's database
    quick([typo(small) for _ in range(TRIES)])
    url, schema = tenant_url(small, "a"), small.get_tenant("a").schema
    with small.session("a") as s:  # compile the statement
        s.scalars(sa.select(Customer)).all()
    drop_schema(url, schema)
    times = []
    for _ in range(TRIES):
        with small.session("a") as s:
            hold(small, s)
            error, took = timed(lambda: s.scalars(sa.select(Customer)).all())
        assert isinstance(error, UnknownTenant) and error.name == "a", repr(error)
        times.append(took)
    quick(times)


def test_five_concurrent_errors_on_a_budget_of_five(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    t = budget(
        make_tenancy(max_connections=5, pool_size=5, budget_timeout=BUDGET_TIMEOUT,
                     servers={}),
        size=5,
    )
    url, schema = tenant_url(t, "a"), t.get_tenant("a").schema  # before the budget is spent
    seen: list[tuple[type[BaseException], BaseException, float]] = []
    lock = threading.Lock()

    def run(statement: Any, expect: type[BaseException], barrier: threading.Barrier) -> None:
        with t.session("a") as s:
            s.execute(sa.text("SELECT 1"))  # holds a connection, no lock on tenant tables
            barrier.wait(timeout=30)  # all five connections are out
            barrier.wait(timeout=30)  # the main thread checked the budget (and dropped a's)
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
        spent(t)
        if drop:
            drop_schema(url, schema)
        barrier.wait(timeout=30)
        for thread in threads:
            thread.join()

    with t.session("a") as s:  # compile the statement
        s.scalars(sa.select(Customer)).all()
    for _ in range(2):  # the first round opens the probe
        round_of(sa.select(TYPO), sa.exc.ProgrammingError)
    round_of(sa.select(Customer), UnknownTenant, drop=True)
    report = [(want.__name__, type(error).__name__, round(took, 4)) for want, error, took in seen]
    assert len(seen) == 15
    assert all(isinstance(error, expect) for expect, error, _ in seen), report
    assert max(took for _, _, took in seen) < COLD, report  # never a pool wait


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_errors_never_wait_for_the_budget(small: Tenancy, driver: str) -> None:
    url, schema = tenant_url(small, "a"), small.get_tenant("a").schema

    async def main() -> None:
        async with AsyncTenancy(small, driver=driver) as at:  # type: ignore[arg-type]
            async with at.session("a") as s:  # compile the statement
                await s.scalars(sa.select(Customer))
            times = []
            for _ in range(1 + TRIES):  # the first opens the probe
                async with at.session("a") as s:
                    await ahold(s)
                    spent(small)
                    error, took = await atimed(lambda: s.execute(sa.select(TYPO)))
                assert isinstance(error, sa.exc.ProgrammingError), repr(error)
                times.append(took)
            assert times[0] < COLD, times
            quick(times[1:])
            await asyncio.to_thread(drop_schema, url, schema)
            times = []
            for _ in range(TRIES):
                async with at.session("a") as s:
                    await ahold(s)
                    spent(small)
                    error, took = await atimed(lambda: s.scalars(sa.select(Customer)))
                assert isinstance(error, UnknownTenant) and error.name == "a", repr(error)
                times.append(took)
            quick(times)

    asyncio.run(main())


def test_strict_isolation_error_never_waits_for_the_budget(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    t = make_tenancy(strict=True, max_connections=1, pool_size=1,
                     budget_timeout=BUDGET_TIMEOUT, servers={})
    try:
        t.create_tenant("a")
        times = []
        for _ in range(1 + TRIES):  # the first opens the probe of a's database
            with t.session("a") as s:
                hold(t, s)
                error, took = timed(lambda: s.execute(sa.text("CREATE TABLE public.spy (x int)")))
            assert isinstance(error, TenantIsolationError), repr(error)
            assert error.name == "public" and error.owner is None, repr(error)
            times.append(took)
        assert times[0] < COLD, times
        quick(times[1:])
    finally:  # roles are cluster-wide: drop the tenants (and their roles) now
        for info in t.list_tenants():
            t.drop_tenant(info.name, confirm=True)


def drop_database(t: Tenancy, tenant: str) -> None:
    """Drop a tenant's database WITH (FORCE) behind tenantry's back: open sessions are cut."""
    strategy = t.strategy
    assert isinstance(strategy, DatabaseStrategy)
    with strategy.admin("main").connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{t.get_tenant(tenant).schema}" WITH (FORCE)')


def test_database_dropped_under_an_open_session_is_unknown_at_once(small: Tenancy) -> None:
    """The cut connection (a disconnect) is named by asking the server, never the budget."""
    small.create_tenant("c")
    small.create_tenant("d")
    times = []
    for name in ("b", "a", "c", "d"):  # the first opens the server's probe
        with small.session(name) as s:
            hold(small, s)
            drop_database(small, name)
            error, took = timed(lambda: s.execute(sa.text("SELECT 1")))
        assert isinstance(error, UnknownTenant) and error.name == name, repr(error)
        times.append(took)
    assert times[0] < COLD, times
    quick(times[1:])


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_database_dropped_under_an_open_session_is_unknown_at_once(
    small: Tenancy, driver: str
) -> None:
    small.create_tenant("c")
    small.create_tenant("d")

    async def main() -> None:
        async with AsyncTenancy(small, driver=driver) as at:  # type: ignore[arg-type]
            times = []
            for name in ("b", "a", "c", "d"):  # the first opens the server's probe
                async with at.session(name) as s:
                    await ahold(s)
                    spent(small)
                    await asyncio.to_thread(drop_database, small, name)
                    error, took = await atimed(lambda: s.execute(sa.text("SELECT 1")))
                assert isinstance(error, UnknownTenant) and error.name == name, repr(error)
                times.append(took)
            assert times[0] < COLD, times
            quick(times[1:])

    asyncio.run(main())

"""The tenant engine registry: lazy engines, LRU eviction, the global connection budget."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import Pool

from tenantry import ConnectionBudgetExceeded, Tenancy
from tests.app.models import Customer
from tests.support.databases import backend_pids, connections_to


class BackendLog:
    """Backend pids of the connections tenantry opens and closes, from pool events.

    The server lists a backend for a moment after its client closed it; counting only pids
    not yet closed by the client measures what the application holds, and
    :meth:`assert_all_gone` checks that closed backends do leave the server.
    """

    def __init__(self) -> None:
        self.pids: dict[int, int] = {}
        self.closed: set[int] = set()
        self._lock = threading.Lock()

    def _connect(self, dbapi_connection: Any, record: Any) -> None:
        with self._lock:
            self.pids[id(dbapi_connection)] = dbapi_connection.info.backend_pid

    def _close(self, dbapi_connection: Any, record: Any = None) -> None:
        with self._lock:
            pid = self.pids.get(id(dbapi_connection))
            if pid is not None:
                self.closed.add(pid)

    @contextmanager
    def recording(self) -> Iterator[None]:
        hooks = [("connect", self._connect), ("close", self._close),
                 ("close_detached", self._close)]
        for name, fn in hooks:
            event.listen(Pool, name, fn)
        try:
            yield
        finally:
            for name, fn in hooks:
                event.remove(Pool, name, fn)

    @contextmanager
    def sampled(self, url: str, like: str) -> Iterator[list[int]]:
        """Record, and sample from a thread how many backends the application holds."""
        observed: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                observed.append(self.held_at_sample(url, like))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with self.recording():
                yield observed
        finally:
            stop.set()
            sampler.join()

    def held_at_sample(self, url: str, like: str) -> int:
        """Backends on the server not closed by the application when the query returned."""
        seen = backend_pids(url, like)
        with self._lock:
            return len(seen - self.closed)

    def assert_all_gone(self, url: str, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while (left := backend_pids(url, "%") & self.closed) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"backends closed by tenantry still on the server: {sorted(left)}"


def only_main(tenant: str, load: object) -> str:
    return "main"


def fleet(make_tenancy: Callable[..., Tenancy], n: int, **options: object) -> Tenancy:
    """A Tenancy with ``n`` tenants t0..t{n-1} on the main server, registry engines reset."""
    creator = make_tenancy(placement=only_main)
    for i in range(n):
        creator.create_tenant(f"t{i}")
    creator.strategy.dispose()  # the tenancy under test starts with no engine
    return make_tenancy(placement=only_main, prefix=creator.prefix, **options)


def test_engines_are_created_lazily_and_cached(make_tenancy: Callable[..., Tenancy]) -> None:
    tenancy = fleet(make_tenancy, 2)
    tenancy.list_tenants()
    tenancy.get_tenant("t0")
    m = tenancy.engine_metrics()
    assert (m.open_engines, m.misses, m.hits, m.open_connections) == (0, 0, 0, 0)
    with tenancy.session("t0") as s:
        s.scalars(sa.select(Customer)).all()
    m = tenancy.engine_metrics()
    assert (m.open_engines, m.misses, m.hits, m.open_connections) == (1, 1, 0, 1)
    for _ in range(3):
        with tenancy.session("t0") as s:
            s.scalars(sa.select(Customer)).all()
    m = tenancy.engine_metrics()
    assert (m.open_engines, m.misses, m.hits, m.open_connections) == (1, 1, 3, 1)


def test_lru_eviction_keeps_at_most_max_engines(
    make_tenancy: Callable[..., Tenancy], pg_url: str
) -> None:
    tenancy = fleet(make_tenancy, 10, max_engines=3, pool_size=1)
    held = tenancy.connection("t0")
    conn = held.__enter__()  # checked out: eviction must not close it
    conn.execute(sa.select(Customer.id)).all()
    for i in range(1, 10):
        with tenancy.session(f"t{i}") as s:
            s.scalars(sa.select(Customer)).all()
        assert tenancy.engine_metrics().open_engines <= 3
    m = tenancy.engine_metrics()
    assert m.open_engines == 3 and m.misses == 10 and m.evictions == 7
    # t0's engine was evicted long ago, yet its checked-out connection still works
    assert conn.execute(sa.select(sa.literal(1))).scalar_one() == 1
    assert connections_to(pg_url, f"{tenancy.prefix}t0") == 1
    held.__exit__(None, None, None)  # checked in to a retired engine: closed now
    deadline = time.monotonic() + 5
    while connections_to(pg_url, f"{tenancy.prefix}t0") and time.monotonic() < deadline:
        time.sleep(0.05)  # the backend exits asynchronously after the client closes
    assert connections_to(pg_url, f"{tenancy.prefix}t0") == 0
    # only the 3 cached engines keep (idle) connections
    assert connections_to(pg_url, f"{tenancy.prefix}%") <= 3
    assert tenancy.engine_metrics().open_connections == 3


def test_connection_budget_holds_under_concurrent_load(
    make_tenancy: Callable[..., Tenancy], pg_url: str
) -> None:
    budget = 4
    tenancy = fleet(make_tenancy, 6, max_engines=10, max_connections=budget, pool_size=2)
    like = tenancy.prefix.replace("_", "\\_") + "%"
    backends = BackendLog()
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(15):
                with tenancy.connection(f"t{rng.randrange(6)}") as conn:
                    conn.exec_driver_sql("SELECT pg_sleep(0.005)")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    with backends.sampled(pg_url, like) as observed:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert errors == []
    m = tenancy.engine_metrics()
    assert m.peak_connections <= budget
    assert max(observed) <= budget  # backends the application still held, seen by the server
    assert backends.closed, "the run closed no connection: the budget was never under pressure"
    backends.assert_all_gone(pg_url)  # every connection it closed really left the server
    assert m.reclaimed > 0  # idle connections of other tenants were closed to make room


def test_budget_exhausted_raises_a_typed_error(make_tenancy: Callable[..., Tenancy]) -> None:
    tenancy = fleet(make_tenancy, 2, max_connections=2, pool_size=2, budget_timeout=0.3)
    with tenancy.connection("t0") as a, tenancy.connection("t0") as b:
        a.exec_driver_sql("SELECT 1")
        b.exec_driver_sql("SELECT 1")
        with pytest.raises(ConnectionBudgetExceeded, match="t1"), tenancy.connection("t1") as c:
            c.exec_driver_sql("SELECT 1")
    with tenancy.connection("t1") as c:  # room again once t0's connections are idle
        assert c.exec_driver_sql("SELECT 1").scalar_one() == 1


def test_usable_from_asyncio_through_threads(make_tenancy: Callable[..., Tenancy]) -> None:
    tenancy = fleet(make_tenancy, 3, max_engines=2, max_connections=3, pool_size=1)

    def count(name: str) -> int:
        with tenancy.session(name) as s:
            return len(s.scalars(sa.select(Customer)).all())

    async def main() -> list[int]:
        jobs = [asyncio.to_thread(count, f"t{i % 3}") for i in range(12)]
        return await asyncio.gather(*jobs)

    assert asyncio.run(main()) == [0] * 12
    assert tenancy.engine_metrics().peak_connections <= 3


def test_evicted_engines_are_parked_and_revived(
    make_tenancy: Callable[..., Tenancy], pg_url: str
) -> None:
    """An evicted engine keeps no connection but is reused (dialect already initialised)."""
    tenancy = fleet(make_tenancy, 4, max_engines=2, max_parked=8, pool_size=1)
    engines = tenancy.strategy.engines  # type: ignore[attr-defined]
    assert engines.max_parked == 8  # the Tenancy option reaches the registry

    def touch(name: str) -> None:
        with tenancy.session(name) as s:
            s.scalars(sa.select(Customer)).all()

    touch("t0")
    first = engines.get("main", f"{tenancy.prefix}t0")
    initialised = first.dialect.server_version_info
    touch("t1")
    touch("t2")  # evicts t0: parked, its connection closed
    m = tenancy.engine_metrics()
    assert (m.open_engines, m.parked_engines, m.evictions, m.revived) == (2, 1, 1, 0)
    deadline = time.monotonic() + 5
    while connections_to(pg_url, f"{tenancy.prefix}t0") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connections_to(pg_url, f"{tenancy.prefix}t0") == 0
    touch("t0")  # revived: the same engine, no new one built
    m = tenancy.engine_metrics()
    assert (m.misses, m.revived, m.open_engines) == (4, 1, 2)
    revived = engines.get("main", f"{tenancy.prefix}t0")
    assert revived is first and revived.dialect.server_version_info == initialised
    engines.max_parked = 1
    touch("t3")
    touch("t2")
    touch("t0")  # parked ones beyond max_parked are dropped, least recently used first
    assert tenancy.engine_metrics().parked_engines == 1
    assert ("main", f"{tenancy.prefix}t3", None, None) in engines._parked
    tenancy.drop_tenant("t3", confirm=True)  # a dropped tenant's parked engine is forgotten
    assert tenancy.engine_metrics().parked_engines == 0
    assert tenancy.engine_metrics().open_connections <= 2


def test_a_checked_out_connection_survives_parking_and_revival(
    make_tenancy: Callable[..., Tenancy], pg_url: str
) -> None:
    tenancy = fleet(make_tenancy, 3, max_engines=1, pool_size=1)
    with tenancy.connection("t0") as held:
        held.exec_driver_sql("SELECT 1")
        with tenancy.connection("t1") as other:  # t0 parked while its connection is out
            other.exec_driver_sql("SELECT 1")
        assert held.exec_driver_sql("SELECT 2").scalar_one() == 2
        with tenancy.connection("t0") as again:  # revived while the first one is still out
            assert again.exec_driver_sql("SELECT 3").scalar_one() == 3
    assert tenancy.engine_metrics().revived == 1
    assert tenancy.engine_metrics().open_connections <= 1


# -- async engines share the LRU and the budget -------------------------------------------

DRIVERS = ["psycopg", "asyncpg"]


def backend_pid(record: Any) -> int:
    raw = record.driver_connection
    return int(raw.get_server_pid() if hasattr(raw, "get_server_pid") else raw.info.backend_pid)


class AnyBackendLog(BackendLog):
    """:class:`BackendLog` for sync and async (psycopg, asyncpg) connections."""

    def _connect(self, dbapi_connection: Any, record: Any) -> None:
        with self._lock:
            self.pids[id(dbapi_connection)] = backend_pid(record)


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_engines_obey_the_lru_and_the_budget(
    make_tenancy: Callable[..., Tenancy], pg_url: str, driver: str
) -> None:
    """Many asyncio tasks (and threads at the same time) over 8 tenants, budget 4: the
    server never sees more than 4 backends held by the application, engines are evicted."""
    from tenantry.aio import AsyncTenancy

    budget = 4
    tenancy = fleet(make_tenancy, 8, max_engines=3, max_connections=budget, pool_size=2)
    like = tenancy.prefix.replace("_", "\\_") + "%"
    backends = AnyBackendLog()

    def sync_work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(10):
            with tenancy.connection(f"t{rng.randrange(8)}") as conn:
                conn.exec_driver_sql("SELECT pg_sleep(0.005)")

    async def task(at: AsyncTenancy, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(6):
            async with at.connection(f"t{rng.randrange(8)}") as conn:
                await conn.exec_driver_sql("SELECT pg_sleep(0.005)")
        assert tenancy.engine_metrics().open_engines <= 3

    async def main() -> None:
        async with AsyncTenancy(tenancy, driver=driver) as at:  # type: ignore[arg-type]
            threads = [asyncio.to_thread(sync_work, 100 + i) for i in range(2)]
            await asyncio.gather(*(task(at, i) for i in range(12)), *threads)
            assert tenancy.engine_metrics().open_connections <= budget
        # disposing the AsyncTenancy closes its engines' connections and forgets them
        assert all(key[2] is None for key in tenancy.strategy.engines._engines)  # type: ignore[attr-defined]

    with backends.sampled(pg_url, like) as observed:
        asyncio.run(main())
    m = tenancy.engine_metrics()
    assert m.peak_connections <= budget
    assert max(observed) <= budget  # backends the application still held, seen by the server
    assert m.evictions > 0 and m.budget_waits + m.reclaimed > 0  # LRU and budget under pressure
    assert backends.closed
    backends.assert_all_gone(pg_url)


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_budget_wait_does_not_block_the_event_loop(
    make_tenancy: Callable[..., Tenancy], driver: str
) -> None:
    from tenantry.aio import AsyncTenancy

    tenancy = fleet(make_tenancy, 2, max_connections=1, pool_size=1, budget_timeout=10)

    async def main() -> None:
        async with AsyncTenancy(tenancy, driver=driver) as at:  # type: ignore[arg-type]
            ticks = 0
            release = asyncio.Event()

            async def hold() -> None:
                async with at.connection("t0") as conn:
                    await conn.exec_driver_sql("SELECT 1")
                    await release.wait()

            async def want() -> int:
                async with at.connection("t1") as conn:
                    return int((await conn.exec_driver_sql("SELECT 7")).scalar_one())

            async def heartbeat() -> None:
                nonlocal ticks
                while ticks < 20:  # the loop keeps running while `want` waits for a slot
                    ticks += 1
                    await asyncio.sleep(0.01)
                release.set()

            holder = asyncio.create_task(hold())
            await asyncio.sleep(0.2)  # t0's connection is out: the budget (1) is spent
            wanted = asyncio.create_task(want())
            await heartbeat()
            assert await wanted == 7
            await holder
            assert ticks == 20
            m = tenancy.engine_metrics()
            assert m.budget_waits >= 1 and m.peak_connections == 1

    asyncio.run(main())


def test_async_budget_exhausted_raises_the_typed_error(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    from tenantry.aio import AsyncTenancy

    tenancy = fleet(make_tenancy, 2, max_connections=1, pool_size=1, budget_timeout=0.3)

    async def main() -> None:
        async with AsyncTenancy(tenancy) as at, at.connection("t0") as conn:
            await conn.exec_driver_sql("SELECT 1")
            with pytest.raises(ConnectionBudgetExceeded, match="t1"):
                async with at.connection("t1") as other:
                    await other.exec_driver_sql("SELECT 1")

    asyncio.run(main())


def test_a_thread_gets_the_slot_of_an_async_connection_when_it_is_returned(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    """A thread cannot close an idle async connection (that needs its loop): the async
    connection is closed as it is checked in while a thread waits for the budget."""
    from tenantry.aio import AsyncTenancy

    tenancy = fleet(make_tenancy, 2, max_connections=1, pool_size=1, budget_timeout=20)
    got: list[int] = []

    def sync_want() -> None:
        with tenancy.connection("t1") as conn:
            got.append(int(conn.exec_driver_sql("SELECT 5").scalar_one()))

    async def main() -> None:
        async with AsyncTenancy(tenancy) as at:
            async with at.connection("t0") as conn:
                await conn.exec_driver_sql("SELECT 1")
                waiter = asyncio.create_task(asyncio.to_thread(sync_want))
                deadline = time.monotonic() + 10
                while not tenancy.engine_metrics().budget_waits:
                    assert time.monotonic() < deadline, "the thread never waited for the budget"
                    await asyncio.sleep(0.01)
            # returned: closed at check-in, so the thread can connect (no 20 s timeout)
            await asyncio.wait_for(waiter, 10)
            assert got == [5]

    asyncio.run(main())


def test_engines_dropped_for_good_are_not_kept_alive_by_cached_routes(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    """Beyond ``max_parked`` an engine is forgotten, and so is the route that held it."""
    import gc
    import weakref

    tenancy = fleet(make_tenancy, 3, max_engines=1, pool_size=1)
    engines = tenancy.strategy.engines  # type: ignore[attr-defined]
    engines.max_parked = 0

    def touch(name: str) -> int:
        with tenancy.session(name) as s:
            return len(s.scalars(sa.select(Customer)).all())

    touch("t0")
    first = weakref.ref(engines.get("main", f"{tenancy.prefix}t0"))
    touch("t1")  # t0 evicted, not parked: gone for good
    assert "t0" not in tenancy.core.router and "t1" in tenancy.core.router
    gc.collect()
    assert first() is None  # nothing keeps the dropped engine (and its pool, dialect) alive
    assert touch("t0") == 0  # the route is read again from the registry
    assert tenancy.engine_metrics().open_engines == 1


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_routes_release_dropped_engines(
    make_tenancy: Callable[..., Tenancy], driver: str
) -> None:
    import gc
    import weakref

    from tenantry.aio import AsyncTenancy

    tenancy = fleet(make_tenancy, 3, max_engines=1, pool_size=1)
    tenancy.strategy.engines.max_parked = 0  # type: ignore[attr-defined]

    async def main() -> None:
        async with AsyncTenancy(tenancy, driver=driver) as at:  # type: ignore[arg-type]
            async with at.connection("t0") as conn:
                await conn.exec_driver_sql("SELECT 1")
                first = weakref.ref(conn.engine.sync_engine.pool)
            async with at.connection("t1") as conn:
                await conn.exec_driver_sql("SELECT 1")
            assert "t0" not in at.router and "t1" in at.router
            gc.collect()
            assert first() is None
            async with at.connection("t0") as conn:  # routed again
                assert (await conn.exec_driver_sql("SELECT 3")).scalar_one() == 3

    asyncio.run(main())


def wait_until_queued(tenancy: Tenancy, n: int) -> None:
    deadline = time.monotonic() + 10
    while tenancy.engine_metrics().waiting_now < n:
        assert time.monotonic() < deadline, f"never {n} callers waiting for the budget"
        time.sleep(0.005)


async def note_connected(at: Any, tenant: str, notes: list[str], label: str) -> None:
    """Connect ``at`` (an AsyncTenancy) to ``tenant``, query, note ``label`` while connected."""
    async with at.connection(tenant) as conn:
        await conn.exec_driver_sql("SELECT 1")
        notes.append(label)


def test_budget_slots_go_first_come_first_served(make_tenancy: Callable[..., Tenancy]) -> None:
    """Waiters get slots in the order they came; a caller arriving as a slot frees (here the
    very thread that freed it) queues behind them instead of taking it."""
    tenancy = fleet(make_tenancy, 5, max_connections=1, pool_size=1, budget_timeout=20)
    order: list[str] = []
    lock = threading.Lock()

    def want(name: str) -> None:
        with tenancy.connection(name) as conn:
            conn.exec_driver_sql("SELECT 1")
            with lock:
                order.append(name)
            time.sleep(0.05)

    late = tenancy.core.database_strategy().engine(tenancy.locate("t4"))  # no connection yet
    waiters = []
    with tenancy.connection("t0") as conn:
        conn.exec_driver_sql("SELECT 1")
        for i, name in enumerate(("t1", "t2", "t3"), start=1):
            waiters.append(threading.Thread(target=want, args=(name,)))
            waiters[-1].start()
            wait_until_queued(tenancy, i)
        conn.invalidate()  # closes t0's connection: its slot is free now...
    with late.connect() as other:  # ...and this thread asks again at once
        other.exec_driver_sql("SELECT 1")
        order.append("t4")
    for thread in waiters:
        thread.join(20)
    assert order == ["t1", "t2", "t3", "t4"]
    m = tenancy.engine_metrics()
    assert m.waiting_now == 0 and m.peak_connections == 1


def test_a_waiting_async_task_goes_before_a_thread_that_came_later(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    """The async task looks at the budget only every few milliseconds, the thread is woken at
    once: the slot still goes to the task, which came first."""
    from tenantry.aio import AsyncTenancy

    tenancy = fleet(make_tenancy, 3, max_connections=1, pool_size=1, budget_timeout=20)
    order: list[str] = []

    def sync_want() -> None:
        with tenancy.connection("t2") as conn:
            conn.exec_driver_sql("SELECT 1")
            order.append("thread")

    async def main() -> None:
        async with AsyncTenancy(tenancy) as at:

            async with at.connection("t0") as conn:
                await conn.exec_driver_sql("SELECT 1")
                task = asyncio.create_task(note_connected(at, "t1", order, "task"))
                await asyncio.to_thread(wait_until_queued, tenancy, 1)
                thread = asyncio.create_task(asyncio.to_thread(sync_want))
                await asyncio.to_thread(wait_until_queued, tenancy, 2)
            # t0's connection is back: closed at check-in (a thread waits), its slot free
            await asyncio.wait_for(asyncio.gather(task, thread), 15)
        assert order == ["task", "thread"]

    asyncio.run(main())


def test_a_sync_call_blocking_the_loop_passes_over_its_loops_waiting_task(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    """A synchronous call inside the event loop's thread blocks the loop: a task of that loop
    queued before it cannot take a slot, so it is passed over instead of deadlocking both."""
    from tenantry.aio import AsyncTenancy

    tenancy = fleet(make_tenancy, 3, max_connections=1, pool_size=1, budget_timeout=5)
    got: list[str] = []

    def free_soon() -> None:
        with tenancy.connection("t0") as conn:
            conn.exec_driver_sql("SELECT 1")
            wait_until_queued(tenancy, 1)  # the task waits
            time.sleep(0.1)
            conn.invalidate()

    async def main() -> None:
        async with AsyncTenancy(tenancy) as at:

            holder = threading.Thread(target=free_soon)
            holder.start()
            while tenancy.engine_metrics().open_connections < 1:
                await asyncio.sleep(0.005)
            task = asyncio.create_task(note_connected(at, "t1", got, "task"))
            await asyncio.sleep(0.05)  # the task is queued
            with tenancy.connection("t2") as conn:  # blocks the loop while it waits
                conn.exec_driver_sql("SELECT 1")
                got.append("blocking call")
            holder.join(10)
            await asyncio.wait_for(task, 10)
        assert got == ["blocking call", "task"]

    asyncio.run(main())

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

from ..app.models import Customer
from .conftest import backend_pids, connections_to


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
    observed: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def sample() -> None:
        while not stop.is_set():
            observed.append(backends.held_at_sample(pg_url, like))

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(15):
                with tenancy.connection(f"t{rng.randrange(6)}") as conn:
                    conn.exec_driver_sql("SELECT pg_sleep(0.005)")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    with backends.recording():
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    stop.set()
    sampler.join()
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

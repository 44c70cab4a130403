"""Engines for many tenant databases: created lazily, LRU-evicted, under one connection budget.

:class:`EngineRegistry` keeps one engine (a small ``QueuePool``) per ``(server, database)``.

* An engine is made on first use and cached; above ``max_engines`` the least recently used one
  is *retired*: its idle connections are closed at once, and each connection still checked out
  is closed when it is checked in (never while in use).
* Every physical connection of every tenant engine takes a slot of one global budget
  (``max_connections``) in the ``do_connect`` dialect event and gives it back in the pool's
  ``close``/``close_detached`` events. When the budget is spent, idle connections of the least
  recently used engines are closed to make room; if none are idle the caller waits up to
  ``budget_timeout`` seconds, then gets :class:`~tenantry.errors.ConnectionBudgetExceeded`.

All state is guarded by one lock that is never held while waiting for the database, so the
registry can be shared by threads and by asyncio code (which should run the blocking
SQLAlchemy calls in threads, e.g. ``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from .errors import ConfigurationError, ConnectionBudgetExceeded

Key = tuple[str, str]


@dataclass(frozen=True)
class EngineMetrics:
    """A snapshot of an :class:`EngineRegistry`'s counters."""

    open_engines: int
    open_connections: int
    peak_connections: int
    hits: int
    misses: int
    evictions: int
    reclaimed: int
    budget_waits: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class _Slot:
    """One engine and whether it has been evicted."""

    __slots__ = ("engine", "key", "retired")

    def __init__(self, key: Key, engine: Engine) -> None:
        self.key = key
        self.engine = engine
        self.retired = False

    @property
    def pool(self) -> QueuePool:
        pool = self.engine.pool
        assert isinstance(pool, QueuePool)
        return pool


class EngineRegistry:
    """Engines per ``(server, database)`` with LRU eviction and a global connection budget.

    ``servers`` maps server names to URLs (their database part is replaced per engine).
    ``make_engine`` builds an engine from a URL and keyword options.
    """

    def __init__(
        self,
        servers: Mapping[str, URL],
        make_engine: Any,
        *,
        max_engines: int = 50,
        max_connections: int = 100,
        pool_size: int = 2,
        budget_timeout: float = 30.0,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_engines < 1 or pool_size < 1 or max_connections < pool_size:
            raise ConfigurationError(
                f"need max_engines >= 1, pool_size >= 1 and max_connections >= pool_size "
                f"(got {max_engines}, {pool_size}, {max_connections})"
            )
        self.servers = dict(servers)
        self._make_engine = make_engine
        self.max_engines = max_engines
        self.max_connections = max_connections
        self.pool_size = pool_size
        self.budget_timeout = budget_timeout
        self.engine_options = dict(engine_options or {})
        self._engines: OrderedDict[Key, _Slot] = OrderedDict()
        self._cond = threading.Condition(threading.RLock())
        self._open: set[int] = set()  # id() of DBAPI connections holding a budget slot
        self._reserved = 0  # slots taken by connections being opened
        self._peak = 0
        self._waiting = 0
        self._hits = self._misses = self._evictions = self._reclaimed = self._waits = 0

    # -- engines -------------------------------------------------------------------------

    def get(self, server: str, database: str) -> Engine:
        """The engine of ``database`` on ``server`` (made on first use); marks it recently used."""
        key = (server, database)
        with self._cond:
            slot = self._engines.get(key)
            if slot is not None:
                self._hits += 1
                self._engines.move_to_end(key)
                return slot.engine
        made = self._new_slot(key)  # outside the lock: create_engine takes a while
        with self._cond:
            slot = self._engines.get(key)
            if slot is not None:  # another thread made it meanwhile; ours never connected
                self._hits += 1
                self._engines.move_to_end(key)
                return slot.engine
            self._misses += 1
            slot = self._engines[key] = made
            victims = []
            while len(self._engines) > self.max_engines:
                _, victim = self._engines.popitem(last=False)
                self._evictions += 1
                victims.append(victim)
        for victim in victims:
            self._retire(victim)
        return slot.engine

    def discard(self, server: str, database: str) -> None:
        """Forget the engine of ``database`` (dropped, renamed, moved); close idle connections."""
        with self._cond:
            slot = self._engines.pop((server, database), None)
        if slot is not None:
            self._retire(slot)

    def metrics(self) -> EngineMetrics:
        with self._cond:
            return EngineMetrics(
                open_engines=len(self._engines),
                open_connections=len(self._open) + self._reserved,
                peak_connections=self._peak,
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                reclaimed=self._reclaimed,
                budget_waits=self._waits,
            )

    def dispose(self) -> None:
        """Retire every engine (checked-out connections close when checked in)."""
        with self._cond:
            slots = list(self._engines.values())
            self._engines.clear()
        for slot in slots:
            self._retire(slot)

    def _new_slot(self, key: Key) -> _Slot:
        server, database = key
        if server not in self.servers:
            raise ConfigurationError(
                f"unknown server {server!r}; configured: {sorted(self.servers)}"
            )
        # pool_size: idle connections kept per tenant. No per-pool overflow limit: a pool never
        # waits on its own queue (reclaiming idle connections would upset its overflow count);
        # what bounds connections is the global budget, taken in ``do_connect``.
        options = {**self.engine_options, "pool_size": self.pool_size, "max_overflow": -1}
        engine = self._make_engine(
            self.servers[server].set(database=database), poolclass=QueuePool, **options
        )
        slot = _Slot(key, engine)
        self._instrument(slot)
        return slot

    def _retire(self, slot: _Slot) -> None:
        slot.retired = True
        slot.pool.dispose()  # closes checked-in connections only

    # -- connection budget ---------------------------------------------------------------

    def _instrument(self, slot: _Slot) -> None:
        engine = slot.engine

        def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
            self._acquire(slot)
            try:
                dbapi_connection = dialect.connect(*cargs, **cparams)
            except BaseException:
                with self._cond:
                    self._reserved -= 1
                    self._cond.notify_all()
                raise
            with self._cond:
                self._reserved -= 1
                self._open.add(id(dbapi_connection))
            return dbapi_connection

        def closed(dbapi_connection: Any, record: Any = None) -> None:
            # The pool fires this event *before* it closes the connection: close it first
            # (closing twice is harmless), so the slot is free only once the socket is.
            with contextlib.suppress(Exception):  # broken: the pool's own close deals with it
                dbapi_connection.close()
            with self._cond:
                if id(dbapi_connection) in self._open:
                    self._open.discard(id(dbapi_connection))
                    self._cond.notify_all()

        def checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
            if slot.retired and dbapi_connection is not None:
                record.close()  # evicted while in use: close now that it is back
            elif self._waiting:
                with self._cond:  # an idle connection may now be reclaimed by a waiter
                    self._cond.notify_all()

        event.listen(engine, "do_connect", connect)
        event.listen(engine, "close", closed)
        event.listen(engine, "close_detached", closed)
        event.listen(engine, "checkin", checkin)

    def _acquire(self, requester: _Slot) -> None:
        """Take a budget slot for a new connection of ``requester``, reclaiming or waiting."""
        deadline = time.monotonic() + self.budget_timeout
        waited = False
        while True:
            with self._cond:
                if len(self._open) + self._reserved < self.max_connections:
                    self._reserved += 1
                    self._peak = max(self._peak, len(self._open) + self._reserved)
                    return
                idle, retire = self._idle_victim(requester)
                if idle is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        server, database = requester.key
                        raise ConnectionBudgetExceeded(
                            f"no connection for database {database!r} on server {server!r}: "
                            f"all {self.max_connections} connections of the budget are in use "
                            f"(waited {self.budget_timeout:g}s)"
                        )
                    if not waited:
                        self._waits += 1
                        waited = True
                    self._waiting += 1
                    try:
                        self._cond.wait(min(remaining, 0.5))
                    finally:
                        self._waiting -= 1
                    continue
                self._reclaimed += 1
                if retire:
                    self._engines.pop(idle.key, None)
                    self._evictions += 1
            # outside the lock; the close events give the slots back
            if retire:
                self._retire(idle)
            else:
                idle.pool.dispose()

    def _idle_victim(self, requester: _Slot) -> tuple[_Slot | None, bool]:
        """An engine holding idle connections, and whether it must be retired to free them.

        First choice: the least recently used engine whose connections are all idle (closing
        them keeps the engine). Else the least recently used engine with any idle connection,
        retired (its checked-out connections close when they come back), the requester last.
        """
        candidates = [s for s in self._engines.values() if s.pool.checkedin() > 0]
        for slot in candidates:
            if slot is not requester and slot.pool.checkedout() == 0:
                return slot, False
        others = [s for s in candidates if s is not requester]
        if others:
            return others[0], True
        if requester in candidates:
            return requester, True
        return None, False

    def __repr__(self) -> str:
        m = self.metrics()
        return (
            f"<EngineRegistry engines={m.open_engines}/{self.max_engines} "
            f"connections={m.open_connections}/{self.max_connections}>"
        )

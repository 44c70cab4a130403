"""Engines for many tenant databases: created lazily, LRU-evicted, under one connection budget.

:class:`EngineRegistry` keeps one engine (a small ``QueuePool``) per ``(server, database)``,
and, for asyncio code, one :class:`~sqlalchemy.ext.asyncio.AsyncEngine` per ``(server,
database, owner)`` (:meth:`EngineRegistry.get_async`). Both kinds share the LRU and the budget.
Either kind may log in as another user than the server URL's (``user=``: a tenant's own login
role); such engines are keyed by that user too and authenticate through :attr:`on_login`.

* An engine is made on first use and cached; above ``max_engines`` the least recently used one
  is *retired*: its idle connections are closed at once, and each connection still checked out
  is closed when it is checked in (never while in use).
* A retired engine is *parked* (at most ``max_parked``, default ``4 * max_engines``, least
  recently used dropped first): it holds no connection, but the next request for its database
  revives it instead of building a new engine, so it skips ``create_engine`` and SQLAlchemy's
  dialect initialisation on the first connection (five round trips with psycopg), which cost
  more than the connection itself, and it makes no new garbage for the cyclic collector.
* Every physical connection of every tenant engine takes a slot of one global budget
  (``max_connections``) in the ``do_connect`` dialect event and gives it back in the pool's
  ``close``/``close_detached`` events. When the budget is spent, idle connections of the least
  recently used engines are closed to make room; if none are idle the caller waits up to
  ``budget_timeout`` seconds, then gets :class:`~tenantry.errors.ConnectionBudgetExceeded`.
  Waiters are served first come, first served: a free slot goes to the longest waiting caller,
  never to one that came later. A thread waits on a condition; an asyncio task waits with
  ``asyncio.sleep`` (the event loop keeps running). An asyncio task that has not looked at the
  budget for ``STALE_WAITER`` seconds (its loop is blocked, e.g. by a synchronous call waiting
  for the budget in the loop's own thread) is passed over until it looks again. A thread cannot
  close an async engine's connections (that needs its event loop): when threads wait, async
  connections are closed as they are checked in instead.

All state is guarded by one lock that is never held while waiting or talking to the database,
so the registry can be shared by threads and by asyncio tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, QueuePool
from sqlalchemy.util import await_only, greenlet_spawn

from .errors import ConfigurationError, ConnectionBudgetExceeded, UnknownServer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

#: ``(server, database, user, owner)``: user ``None`` for the server URL's user; owner ``None``
#: for sync engines, else the async engine's owner.
Key = tuple[str, str, str | None, object]

#: Seconds between two looks at the budget for an asyncio task waiting for a slot.
ASYNC_POLL = 0.01
#: Seconds after which a waiting asyncio task that has not looked at the budget is passed over.
STALE_WAITER = 0.25


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
    parked_engines: int = 0
    revived: int = 0
    waiting_now: int = 0  # callers queued for a budget slot at the snapshot

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class _Waiter:
    """A caller queued for a budget slot; ``seen`` is when an async one last looked."""

    __slots__ = ("is_async", "seen")

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.seen = time.monotonic()

    def stale(self, now: float) -> bool:
        return self.is_async and now - self.seen > STALE_WAITER


class _Slot:
    """One engine, whether it has been evicted, and the event loop of an async engine."""

    __slots__ = ("engine", "facade", "key", "loop", "on_drop", "retired")

    def __init__(
        self,
        key: Key,
        engine: Engine,
        facade: AsyncEngine | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.key = key
        self.engine = engine  # the sync core (an AsyncEngine's ``sync_engine``)
        self.facade = facade
        self.loop = loop
        self.retired = False
        #: Called once the registry forgets this engine for good (not when it is parked).
        self.on_drop: Callable[[], None] | None = None

    @property
    def pool(self) -> QueuePool:
        pool = self.engine.pool
        assert isinstance(pool, QueuePool)
        return pool

    def closable_by(self, other: _Slot | None) -> bool:
        """Whether the caller that uses ``other`` (``None``: a plain thread) may close our
        connections now: sync ones anywhere, async ones only inside their own event loop."""
        return self.loop is None or (other is not None and other.loop is self.loop)


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
        max_parked: int | None = None,
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
        #: Retired engines kept (without connections) for a quick revival; default
        #: ``4 * max_engines``. A parked engine costs memory only (a few hundred objects).
        self.max_parked = 4 * max_engines if max_parked is None else max(0, max_parked)
        self._engines: OrderedDict[Key, _Slot] = OrderedDict()
        self._parked: OrderedDict[Key, _Slot] = OrderedDict()
        self._orphans: list[_Slot] = []  # async engines retired by a thread: idle not closed yet
        self._dropped: list[_Slot] = []  # forgotten for good, ``on_drop`` not called yet
        #: ``on_drop(server, database)``: a sync engine was forgotten for good (evicted and not
        #: parked, or pushed out of the parked ones); e.g. to drop caches that hold it.
        self.on_drop: Callable[[str, str], None] | None = None
        #: ``on_login(engine, user)``: prepares a new engine that logs in as ``user`` (``get``
        #: with ``user=``) before it connects, e.g. supplies the password at connect time.
        self.on_login: Callable[[Engine, str], None] | None = None
        self._cond = threading.Condition(threading.RLock())
        self._open: set[int] = set()  # id() of DBAPI connections holding a budget slot
        self._reserved = 0  # slots taken by connections being opened
        self._peak = 0
        self._waiting = 0  # threads waiting for a slot
        self._queue: deque[_Waiter] = deque()  # every waiting caller, first come first
        self._hits = self._misses = self._evictions = self._reclaimed = self._waits = 0
        self._revived = 0

    # -- engines -------------------------------------------------------------------------

    def get(self, server: str, database: str, user: str | None = None) -> Engine:
        """The engine of ``database`` on ``server`` (made on first use); marks it recently used.

        ``user``: log in as this user instead of the server URL's (see :attr:`on_login`).
        """
        slot, victims = self._lookup((server, database, user, None), self._new_slot)
        self._retire_all(victims, None)
        self._notify_dropped()
        return slot.engine

    async def get_async(
        self,
        server: str,
        database: str,
        make: Callable[..., AsyncEngine],
        owner: object,
        on_drop: Callable[[], None] | None = None,
        user: str | None = None,
    ) -> AsyncEngine:
        """The async engine of ``database`` on ``server`` for ``owner`` (made on first use by
        ``make(url, **options)``); marks it recently used. Call it from the owner's loop.
        ``on_drop()`` is called once the registry forgets a new engine for good. ``user``: as
        for :meth:`get`."""
        loop = asyncio.get_running_loop()
        key: Key = (server, database, user, owner)

        def new(k: Key) -> _Slot:
            slot = self._new_async_slot(k, make, loop)
            slot.on_drop = on_drop
            return slot

        slot, victims = self._lookup(key, new)
        await self._sweep(loop, victims)
        self._notify_dropped()
        assert slot.facade is not None
        return slot.facade

    def discard(self, server: str, database: str, user: str | None = None) -> None:
        """Forget the engines of ``database`` (dropped, renamed, moved), or with ``user`` only
        those logged in as ``user`` (its role dropped or renamed); close idle connections."""
        with self._cond:
            gone = self._pop(
                lambda key: key[:2] == (server, database) and user in (None, key[2])
            )
        self._retire_all(gone, None)

    async def discard_owner(self, owner: object) -> None:
        """Forget the async engines of ``owner`` and close their idle connections."""
        with self._cond:
            gone = self._pop(lambda key: key[3] is owner)
            self._orphans = [s for s in self._orphans if s.key[3] is not owner] + gone
        await self._sweep(asyncio.get_running_loop(), [])

    def _pop(self, match: Callable[[Key], bool]) -> list[_Slot]:
        """Remove (under the lock) the active and parked engines whose key ``match``es."""
        return [
            table.pop(key)
            for table in (self._engines, self._parked)
            for key in [k for k in table if match(k)]
        ]

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
                parked_engines=len(self._parked),
                revived=self._revived,
                waiting_now=len(self._queue),
            )

    def dispose(self) -> None:
        """Retire every engine (checked-out connections close when checked in).

        Async engines' idle connections are closed by their owner (``discard_owner``) or the
        next :meth:`get_async` in their loop.
        """
        with self._cond:
            slots = [*self._engines.values(), *self._parked.values()]
            self._engines.clear()
            self._parked.clear()
        self._retire_all(slots, None)

    def _lookup(self, key: Key, make: Callable[[Key], _Slot]) -> tuple[_Slot, list[_Slot]]:
        """The slot of ``key`` (revived or made if needed) and the slots it pushed out."""
        with self._cond:
            slot = self._hit(key)
            if slot is not None:
                return slot, []
            slot = self._parked.pop(key, None)
            if slot is not None:
                slot.retired = False
                self._misses += 1
                self._revived += 1
                self._engines[key] = slot
                return slot, self._over_limit()
        made = make(key)  # outside the lock: create_engine takes a while
        with self._cond:
            slot = self._hit(key)
            if slot is not None:  # another caller made it meanwhile; ours never connected
                return slot, []
            self._misses += 1
            self._engines[key] = made
            return made, self._over_limit()

    def _hit(self, key: Key) -> _Slot | None:
        """The active slot of ``key``, counted as a hit and marked recently used (under the
        lock); ``None`` if there is none."""
        slot = self._engines.get(key)
        if slot is not None:
            self._hits += 1
            self._engines.move_to_end(key)
        return slot

    def _over_limit(self) -> list[_Slot]:
        """Retire (under the lock) the least recently used engines beyond ``max_engines``."""
        victims = []
        while len(self._engines) > self.max_engines:
            _, victim = self._engines.popitem(last=False)
            self._park(victim)
            victims.append(victim)
        return victims

    def _park(self, slot: _Slot) -> None:
        """Mark ``slot`` evicted and keep it for a revival (under the lock)."""
        slot.retired = True
        self._evictions += 1
        self._parked[slot.key] = slot
        while len(self._parked) > self.max_parked:
            _, gone = self._parked.popitem(last=False)
            self._dropped.append(gone)

    def _notify_dropped(self) -> None:
        """Call ``on_drop`` for the engines forgotten for good (outside the lock)."""
        with self._cond:
            if not self._dropped:
                return
            dropped, self._dropped = self._dropped, []
        for slot in dropped:
            if slot.on_drop is not None:
                slot.on_drop()
            elif slot.loop is None and self.on_drop is not None:
                self.on_drop(slot.key[0], slot.key[1])

    def _new_slot(self, key: Key) -> _Slot:
        url, options = self._target(key)
        options = {**self.engine_options, **options}
        slot = _Slot(key, self._make_engine(url, poolclass=QueuePool, **options))
        self._log_in(slot)
        self._instrument(slot)
        return slot

    def _new_async_slot(
        self, key: Key, make: Callable[..., AsyncEngine], loop: asyncio.AbstractEventLoop
    ) -> _Slot:
        url, options = self._target(key)
        facade = make(url, poolclass=AsyncAdaptedQueuePool, **options)
        slot = _Slot(key, facade.sync_engine, facade, loop)
        self._log_in(slot)
        self._instrument(slot)
        return slot

    def _log_in(self, slot: _Slot) -> None:
        """Let ``on_login`` prepare an engine of another user (before the budget's hooks: its
        ``do_connect`` listeners run first)."""
        user = slot.key[2]
        if user is None:
            return
        if self.on_login is None:
            raise ConfigurationError(f"no way to log in as {user!r}: on_login is not set")
        self.on_login(slot.engine, user)

    def _target(self, key: Key) -> tuple[URL, dict[str, Any]]:
        server, database, user, _ = key
        if server not in self.servers:
            raise UnknownServer(
                f"unknown server {server!r}; configured: {sorted(self.servers)}"
            )
        # pool_size: idle connections kept per tenant. No per-pool overflow limit: a pool never
        # waits on its own queue (reclaiming idle connections would upset its overflow count);
        # what bounds connections is the global budget, taken in ``do_connect``.
        options = {"pool_size": self.pool_size, "max_overflow": -1}
        url = self.servers[server].set(database=database)
        if user is not None:  # the password comes from ``on_login`` at connect time
            url = url.set(username=user, password=None)
        return url, options

    def _retire_all(self, slots: list[_Slot], caller: _Slot | None) -> None:
        """Close the idle connections of retired ``slots`` that ``caller`` may close now;
        leave the other (async) ones to their loop."""
        for slot in slots:
            slot.retired = True
            if slot.closable_by(caller):
                slot.pool.dispose()  # closes checked-in connections only
            else:
                with self._cond:
                    self._orphans.append(slot)

    async def _sweep(self, loop: asyncio.AbstractEventLoop, victims: list[_Slot]) -> None:
        """From ``loop``: retire ``victims`` and close idle connections of this loop's orphans."""
        with self._cond:
            mine = [s for s in self._orphans if s.loop is loop]
            self._orphans = [s for s in self._orphans if s.loop is not loop]
        for slot in [*victims, *mine]:
            slot.retired = True
            if slot.loop is loop:
                await greenlet_spawn(slot.pool.dispose)
            elif slot.loop is None:
                slot.pool.dispose()
            else:
                with self._cond:
                    self._orphans.append(slot)

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
            if dbapi_connection is None:
                return
            if slot.retired or (slot.loop is not None and self._waiting and self._full()):
                # evicted while in use, or threads wait for a slot that they cannot take
                # from an async pool themselves: close it now that it is back
                record.close()
            elif self._waiting:
                with self._cond:  # an idle connection may now be reclaimed by a waiter
                    self._cond.notify_all()

        event.listen(engine, "do_connect", connect)
        event.listen(engine, "close", closed)
        event.listen(engine, "close_detached", closed)
        event.listen(engine, "checkin", checkin)

    def _full(self) -> bool:
        with self._cond:
            return len(self._open) + self._reserved >= self.max_connections

    def _acquire(self, requester: _Slot) -> None:
        """Take a budget slot for a new connection of ``requester``, reclaiming or waiting.

        A caller that must wait joins the queue; a free slot goes to the first caller in it
        (passing over stale async waiters). An async requester (inside SQLAlchemy's greenlet)
        waits with ``asyncio.sleep``.
        """
        deadline = time.monotonic() + self.budget_timeout
        me: _Waiter | None = None
        try:
            while True:
                with self._cond:
                    if me is not None:
                        me.seen = time.monotonic()
                    room = len(self._open) + self._reserved < self.max_connections
                    if room and self._first(me):
                        self._reserved += 1
                        self._peak = max(self._peak, len(self._open) + self._reserved)
                        return
                    idle, retire = (None, False) if room else self._idle_victim(requester)
                    if idle is None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            server, database = requester.key[:2]
                            raise ConnectionBudgetExceeded(
                                f"no connection for database {database!r} on server "
                                f"{server!r}: all {self.max_connections} connections of the "
                                f"budget are in use (waited {self.budget_timeout:g}s)"
                            )
                        if me is None:
                            me = _Waiter(requester.loop is not None)
                            self._queue.append(me)
                            self._waits += 1
                        if requester.loop is None:
                            self._waiting += 1
                            try:
                                self._cond.wait(min(remaining, 0.5))
                            finally:
                                self._waiting -= 1
                            continue
                    else:
                        self._reclaimed += 1
                        if retire:
                            self._engines.pop(idle.key, None)
                            self._park(idle)
                # outside the lock
                if idle is None:  # an asyncio task: let the loop run meanwhile
                    await_only(asyncio.sleep(min(remaining, ASYNC_POLL)))
                else:  # the close events give the slots back
                    idle.pool.dispose()
                    self._notify_dropped()
        finally:
            if me is not None:
                with self._cond:
                    self._queue.remove(me)
                    self._cond.notify_all()  # the next in line may take a free slot

    def _first(self, me: _Waiter | None) -> bool:
        """Whether ``me`` (``None``: a caller not queued) is first in line for a free slot:
        every waiter ahead of it is a stale async one."""
        now = time.monotonic()
        for waiter in self._queue:
            if waiter is me:
                return True
            if not waiter.stale(now):
                return False
        return me is None

    def _idle_victim(self, requester: _Slot) -> tuple[_Slot | None, bool]:
        """An engine holding idle connections, and whether it must be retired to free them.

        First choice: the least recently used engine whose connections are all idle (closing
        them keeps the engine). Else the least recently used engine with any idle connection,
        retired (its checked-out connections close when they come back), the requester last.
        Only engines whose connections the requester may close are candidates.
        """
        candidates = [
            s
            for s in self._engines.values()
            if s.closable_by(requester) and s.pool.checkedin() > 0
        ]
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

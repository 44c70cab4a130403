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
  (``max_connections``, see :mod:`tenantry.strategies.budget`); when it is spent, idle connections
  of the least recently used engines are closed to make room, else the caller waits up to
  ``budget_timeout`` seconds.

All state is guarded by one lock that is never held while waiting or talking to the database,
so the registry can be shared by threads and by asyncio tasks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool
from sqlalchemy.util import greenlet_spawn

from ..errors import ConfigurationError, UnknownServer
from .budget import ConnectionBudget
from .enginemetrics import EngineMetrics
from .engineslot import EngineSlot, Key

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


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
        self.pool_size = pool_size
        self.engine_options = dict(engine_options or {})
        #: Retired engines kept (without connections) for a quick revival; default
        #: ``4 * max_engines``. A parked engine costs memory only (a few hundred objects).
        self.max_parked = 4 * max_engines if max_parked is None else max(0, max_parked)
        self._engines: OrderedDict[Key, EngineSlot] = OrderedDict()
        self._parked: OrderedDict[Key, EngineSlot] = OrderedDict()
        #: async engines retired by a thread: idle connections not closed yet
        self._orphans: list[EngineSlot] = []
        self._dropped: list[EngineSlot] = []  # forgotten for good, ``on_drop`` not called yet
        #: ``on_drop(server, database)``: a sync engine was forgotten for good (evicted and not
        #: parked, or pushed out of the parked ones); e.g. to drop caches that hold it.
        self.on_drop: Callable[[str, str], None] | None = None
        #: ``on_login(engine, user)``: prepares a new engine that logs in as ``user`` (``get``
        #: with ``user=``) before it connects, e.g. supplies the password at connect time.
        self.on_login: Callable[[Engine, str], None] | None = None
        self._cond = threading.Condition(threading.RLock())
        self.budget = ConnectionBudget(
            self._cond, max_connections, budget_timeout, self._reclaim_idle, self._notify_dropped
        )
        self._hits = self._misses = self._evictions = self._revived = 0

    @property
    def max_connections(self) -> int:
        """Connections of all engines together (the budget's size)."""
        return self.budget.max_connections

    @property
    def budget_timeout(self) -> float:
        """Seconds a caller waits for a budget slot before ``ConnectionBudgetExceeded``."""
        return self.budget.timeout

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

        def new(k: Key) -> EngineSlot:
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

    def _pop(self, match: Callable[[Key], bool]) -> list[EngineSlot]:
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
                open_connections=self.budget.in_use,
                peak_connections=self.budget.peak,
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                reclaimed=self.budget.reclaimed,
                budget_waits=self.budget.waits,
                parked_engines=len(self._parked),
                revived=self._revived,
                waiting_now=self.budget.queued,
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

    def _lookup(
        self, key: Key, make: Callable[[Key], EngineSlot]
    ) -> tuple[EngineSlot, list[EngineSlot]]:
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

    def _hit(self, key: Key) -> EngineSlot | None:
        """The active slot of ``key``, counted as a hit and marked recently used (under the
        lock); ``None`` if there is none."""
        slot = self._engines.get(key)
        if slot is not None:
            self._hits += 1
            self._engines.move_to_end(key)
        return slot

    def _over_limit(self) -> list[EngineSlot]:
        """Retire (under the lock) the least recently used engines beyond ``max_engines``."""
        victims = []
        while len(self._engines) > self.max_engines:
            _, victim = self._engines.popitem(last=False)
            self._park(victim)
            victims.append(victim)
        return victims

    def _park(self, slot: EngineSlot) -> None:
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

    def _new_slot(self, key: Key) -> EngineSlot:
        url, options = self._target(key)
        options = {**self.engine_options, **options}
        slot = EngineSlot(key, self._make_engine(url, poolclass=QueuePool, **options))
        self._log_in(slot)
        self.budget.instrument(slot)
        return slot

    def _new_async_slot(
        self, key: Key, make: Callable[..., AsyncEngine], loop: asyncio.AbstractEventLoop
    ) -> EngineSlot:
        url, options = self._target(key)
        facade = make(url, poolclass=AsyncAdaptedQueuePool, **options)
        slot = EngineSlot(key, facade.sync_engine, facade, loop)
        self._log_in(slot)
        self.budget.instrument(slot)
        return slot

    def _log_in(self, slot: EngineSlot) -> None:
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

    def _retire_all(self, slots: list[EngineSlot], caller: EngineSlot | None) -> None:
        """Close the idle connections of retired ``slots`` that ``caller`` may close now;
        leave the other (async) ones to their loop."""
        for slot in slots:
            slot.retired = True
            if slot.closable_by(caller):
                slot.pool.dispose()  # closes checked-in connections only
            else:
                with self._cond:
                    self._orphans.append(slot)

    async def _sweep(self, loop: asyncio.AbstractEventLoop, victims: list[EngineSlot]) -> None:
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

    # -- making room in the connection budget -----------------------------------------

    def _reclaim_idle(self, requester: EngineSlot) -> EngineSlot | None:
        """An engine whose idle connections the budget may close for ``requester`` (under
        the lock), parked first if it must be retired to free them; ``None`` if there is none."""
        idle, retire = self._idle_victim(requester)
        if idle is not None and retire:
            self._engines.pop(idle.key, None)
            self._park(idle)
        return idle

    def _idle_victim(self, requester: EngineSlot) -> tuple[EngineSlot | None, bool]:
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

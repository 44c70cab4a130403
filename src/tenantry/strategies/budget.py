"""The global connection budget shared by every tenant engine of an engine registry.

Every physical connection of every tenant engine takes a slot of one budget
(``max_connections``) in the ``do_connect`` dialect event and gives it back in the pool's
``close``/``close_detached`` events. When the budget is spent, idle connections of the least
recently used engines are closed to make room (the registry chooses them); if none are idle the
caller waits up to ``timeout`` seconds, then gets
:class:`~tenantry.errors.ConnectionBudgetExceeded`. Waiters are served first come, first
served: a free slot goes to the longest waiting caller, never to one that came later. A thread
waits on a condition; an asyncio task waits with ``asyncio.sleep`` (the event loop keeps
running). An asyncio task that has not looked at the budget for ``STALE_WAITER`` seconds (its
loop is blocked, e.g. by a synchronous call waiting for the budget in the loop's own thread) is
passed over until it looks again. A thread cannot close an async engine's connections (that
needs its event loop): when threads wait, async connections are closed as they are checked in
instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

from ..errors import ConnectionBudgetExceeded
from .engineslot import EngineSlot

#: Seconds between two looks at the budget for an asyncio task waiting for a slot.
ASYNC_POLL = 0.01
#: Seconds after which a waiting asyncio task that has not looked at the budget is passed over.
STALE_WAITER = 0.25


class _Waiter:
    """A caller queued for a budget slot; ``seen`` is when an async one last looked."""

    __slots__ = ("is_async", "seen")

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.seen = time.monotonic()

    def stale(self, now: float) -> bool:
        return self.is_async and now - self.seen > STALE_WAITER


class ConnectionBudget:
    """At most ``max_connections`` connections over all instrumented engines.

    ``lock`` is the registry's condition: one lock guards the registry and its budget.
    ``reclaim(requester)`` is called under it when the budget is spent: it returns an engine
    whose idle connections may be closed to make room (``None``: none), taking it out of use if
    needed. ``reclaimed()`` is called (outside the lock) after they were closed.
    """

    def __init__(
        self,
        lock: threading.Condition,
        max_connections: int,
        timeout: float,
        reclaim: Callable[[EngineSlot], EngineSlot | None],
        reclaimed: Callable[[], None],
    ) -> None:
        self.max_connections = max_connections
        self.timeout = timeout
        self._cond = lock
        self._reclaim = reclaim
        self._after_reclaim = reclaimed
        self._open: set[int] = set()  # id() of DBAPI connections holding a budget slot
        self._reserved = 0  # slots taken by connections being opened
        self._waiting = 0  # threads waiting for a slot
        self._queue: deque[_Waiter] = deque()  # every waiting caller, first come first
        #: Counters (read under the lock): most connections at once, idle engines closed for
        #: room, callers that had to wait.
        self.peak = self.reclaimed = self.waits = 0

    @property
    def in_use(self) -> int:
        """Connections open or being opened (read under the lock)."""
        return len(self._open) + self._reserved

    @property
    def queued(self) -> int:
        """Callers waiting for a slot (read under the lock)."""
        return len(self._queue)

    def instrument(self, slot: EngineSlot) -> None:
        """Make every connection of ``slot``'s engine take a budget slot while it is open."""
        engine = slot.engine

        def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
            self.acquire(slot)
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
            if slot.retired or (slot.loop is not None and self._waiting and self.full()):
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

    def full(self) -> bool:
        with self._cond:
            return self.in_use >= self.max_connections

    def acquire(self, requester: EngineSlot) -> None:
        """Take a budget slot for a new connection of ``requester``, reclaiming or waiting.

        A caller that must wait joins the queue; a free slot goes to the first caller in it
        (passing over stale async waiters). An async requester (inside SQLAlchemy's greenlet)
        waits with ``asyncio.sleep``.
        """
        deadline = time.monotonic() + self.timeout
        me: _Waiter | None = None
        try:
            while True:
                with self._cond:
                    if me is not None:
                        me.seen = time.monotonic()
                    room = self.in_use < self.max_connections
                    if room and self._first(me):
                        self._reserved += 1
                        self.peak = max(self.peak, self.in_use)
                        return
                    idle = None if room else self._reclaim(requester)
                    if idle is None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            server, database = requester.key[:2]
                            raise ConnectionBudgetExceeded(
                                f"no connection for database {database!r} on server "
                                f"{server!r}: all {self.max_connections} connections of the "
                                f"budget are in use (waited {self.timeout:g}s)"
                            )
                        if me is None:
                            me = _Waiter(requester.loop is not None)
                            self._queue.append(me)
                            self.waits += 1
                        if requester.loop is None:
                            self._waiting += 1
                            try:
                                self._cond.wait(min(remaining, 0.5))
                            finally:
                                self._waiting -= 1
                            continue
                    else:
                        self.reclaimed += 1
                # outside the lock
                if idle is None:  # an asyncio task: let the loop run meanwhile
                    await_only(asyncio.sleep(min(remaining, ASYNC_POLL)))
                else:  # the close events give the slots back
                    idle.pool.dispose()
                    self._after_reclaim()
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

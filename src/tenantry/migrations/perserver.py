"""Per-server caps for fleet migrations: batches of one server's tenants, handed out so that
no more than ``per_server`` of one server's batches are out (being migrated) at once.

A batch is migrated one tenant after another by one process, so ``per_server`` batches out
means at most ``per_server`` tenant migrations running against that server, across all the
processes of a run. Schema tenants (and database tenants without a server) live on the main
server. :class:`Feeder` gives helper processes their batches from a thread while the main
thread migrates.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Literal

from ..core.registry import TenantInfo
from ..errors import MigrationError
from ..strategies.database import MAIN_SERVER
from .results import TenantOutcome


def checked_cap(per_server: int | None) -> int | None:
    """``per_server`` if it is ``None`` (no cap) or a whole number of 1 or more; else
    MigrationError."""
    if per_server is None or (
        isinstance(per_server, int) and not isinstance(per_server, bool) and per_server >= 1
    ):
        return per_server
    raise MigrationError(
        f"per_server must be a number of migrations (1 or more) or None, not {per_server!r}"
    )


def server_of(info: TenantInfo) -> str:
    """The name of the server holding ``info``'s tables (``"main"`` for the main server)."""
    return info.location.server or MAIN_SERVER


class ServerSlots:
    """The batches of a run, per server; :meth:`take` hands out the next batch of a server
    with fewer than ``cap`` batches out, :meth:`give_back` frees its slot. Thread-safe."""

    def __init__(self, todo: Sequence[TenantInfo], cap: int, size: int) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._queues: dict[str, deque[list[TenantInfo]]] = {}
        by_server: dict[str, list[TenantInfo]] = {}
        for info in todo:
            by_server.setdefault(server_of(info), []).append(info)
        for server, infos in by_server.items():
            self._queues[server] = deque(
                infos[start:start + size] for start in range(0, len(infos), size)
            )
        self._out: Counter[str] = Counter()

    def take(self) -> tuple[str, list[TenantInfo]] | None:
        """The next batch of the server with the fewest batches out and most left, below the
        cap; ``None`` if every server with batches left is at its cap (or none is left)."""
        with self._lock:
            open_servers = [s for s, q in self._queues.items() if q and self._out[s] < self.cap]
            if not open_servers:
                return None
            server = min(open_servers, key=lambda s: (self._out[s], -len(self._queues[s])))
            self._out[server] += 1
            return server, self._queues[server].popleft()

    def give_back(self, server: str) -> None:
        """A batch of ``server`` is done: its slot is free."""
        with self._lock:
            self._out[server] -= 1

    @property
    def left(self) -> int:
        """Batches not yet handed out."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())


Batch = list[TenantInfo]
Outcomes = list[TenantOutcome]
_STOP = object()


class Feeder:
    """Hands batches to helper processes from a thread of its own, the moment a helper is
    free, while this process's main thread migrates batches itself.

    A helper gets its first batch once it has started (``probe()``'s future is done: a batch
    given to a helper still importing would hold its server's slot idle), then one batch at
    a time. Finished batches (and failed probes) wait in :attr:`results` for the main thread,
    which takes its own batches with :meth:`take` (under the same lock, so the count of
    batches out is always true).
    """

    def __init__(
        self,
        slots: ServerSlots,
        submit: Callable[[Batch], Future[Outcomes]],
        probes: Sequence[Future[None]],
    ) -> None:
        self.slots = slots
        self.lock = threading.Lock()
        self.results: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.outstanding = 0  # batches (and failed probes) not yet collected from results
        self._submit = submit
        self._pending: dict[Future[Any], str] = {}
        self._started = 0
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        for probe in probes:
            probe.add_done_callback(self._events.put)
        self._thread = threading.Thread(target=self._run, name="tenantry-feeder", daemon=True)
        self._thread.start()

    def take(self) -> tuple[str, Batch] | Literal[False] | None:
        """A batch for this process; ``None`` if none is free but batches are out (wait for
        :meth:`collected`); ``False`` when everything has been handed out and collected."""
        with self.lock:
            taken = self.slots.take()
            if taken is not None:
                return taken
            busy = self._pending or self.outstanding or self.slots.left
            return None if busy else False

    def returned(self, server: str) -> None:
        """This process finished a batch of ``server``: free its slot, maybe for a helper."""
        self.slots.give_back(server)
        self._events.put(None)

    def collected(self) -> Future[Any]:
        """The next finished batch (blocks); its outcomes are the main thread's to yield."""
        future = self.results.get()
        with self.lock:
            self.outstanding -= 1
        return future

    def stop(self) -> None:
        self._events.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while (event := self._events.get()) is not _STOP:
            with self.lock:
                try:
                    if isinstance(event, Future):
                        self._finished(event)
                    self._refill()
                except Exception as exc:  # e.g. a broken pool: the main thread raises it
                    failed: Future[Any] = Future()
                    failed.set_exception(exc)
                    self.outstanding += 1
                    self.results.put(failed)

    def _finished(self, future: Future[Any]) -> None:
        server = self._pending.pop(future, None)
        if server is not None:
            self.slots.give_back(server)
        elif future.exception() is None:  # a helper has started
            self._started += 1
            return
        self.outstanding += 1
        self.results.put(future)

    def _refill(self) -> None:
        while len(self._pending) < self._started:
            taken = self.slots.take()
            if taken is None:
                return
            server, batch = taken
            future = self._submit(batch)
            self._pending[future] = server
            future.add_done_callback(self._events.put)

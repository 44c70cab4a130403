"""Per-server caps for fleet migrations: batches of one server's tenants, handed out so that
no more than ``per_server`` of one server's batches are out (being migrated) at once.

A batch is migrated one tenant after another by one process, so ``per_server`` batches out
means at most ``per_server`` tenant migrations running against that server, across all the
processes of a run. Schema tenants (and database tenants without a server) live on the main
server.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Sequence

from ..core.registry import TenantInfo
from ..errors import MigrationError
from ..strategies.database import MAIN_SERVER


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

"""A snapshot of an engine registry's counters (LRU and connection budget)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineMetrics:
    """A snapshot of an :class:`~tenantry.strategies.engines.EngineRegistry`'s counters."""

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

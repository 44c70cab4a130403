"""The registry's generation: a counter every change that other processes must see bumps, in
the changing transaction; each process reads it at most once per interval and, when it moved,
forgets what it cached (routes, domains). ``LISTEN`` would not survive PgBouncer's
transaction pooling; one indexed single-row read per interval does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from ..models import SHARED_SCHEMA
from .registry import metadata

#: Seconds between two reads of the generation in one process (the longest a change made by
#: another process stays unseen by this one).
DEFAULT_INTERVAL = 1.0

generations = sa.Table(
    "tenantry_generation",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.CheckConstraint("id = 1", name="tenantry_generation_one_row"),
    schema=SHARED_SCHEMA,
)


def ensure(conn: Connection) -> None:
    """Make the counter's row (its table is made with the registry's metadata)."""
    conn.execute(
        insert(generations)
        .values(id=1, value=0)
        .on_conflict_do_nothing(index_elements=["id"])
    )


def bump(conn: Connection) -> None:
    """Move the generation on, in ``conn``'s transaction (seen by others once it commits)."""
    conn.execute(generations.update().where(generations.c.id == 1)
                 .values(value=generations.c.value + 1))


def read(conn: Connection) -> int:
    return int(conn.execute(sa.select(generations.c.value)).scalar() or 0)


class Freshness:
    """This process's view of the generation; ``stale`` listeners run when it moved."""

    def __init__(
        self, begin: Callable[[], AbstractContextManager[Connection]],
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._begin = begin
        self.interval = interval
        self._seen: int | None = None
        self._read_at = -float("inf")
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def on_stale(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when another process changed the registry."""
        self._listeners.append(listener)

    def due(self) -> bool:
        """Whether the interval since the last read is over (cheap: the hot path asks)."""
        return time.monotonic() - self._read_at >= self.interval

    def check(self) -> None:
        """Read the generation (if due) and tell the listeners if it moved."""
        with self._lock:
            if not self.due():
                return
            with self._begin() as conn:
                self.seen(read(conn))

    def seen(self, value: int) -> None:
        """Record ``value`` as read now; the listeners hear if it differs from the last."""
        self._read_at = time.monotonic()
        moved = self._seen is not None and value != self._seen
        self._seen = value
        if moved:
            for listener in self._listeners:
                listener()

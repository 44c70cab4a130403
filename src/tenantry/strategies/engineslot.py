"""One engine held by the :class:`~tenantry.strategies.engines.EngineRegistry`, and its key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

#: ``(server, database, user, owner)``: user ``None`` for the server URL's user; owner ``None``
#: for sync engines, else the async engine's owner.
Key = tuple[str, str, str | None, object]


class EngineSlot:
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

    def closable_by(self, other: EngineSlot | None) -> bool:
        """Whether the caller that uses ``other`` (``None``: a plain thread) may close our
        connections now: sync ones anywhere, async ones only inside their own event loop."""
        return self.loop is None or (other is not None and other.loop is self.loop)

"""The tenants' history: every lifecycle event, one row each, in ``public.tenantry_history``.

Rows are written after the change commits (a failure to write one is logged, never undoes the
change); a fleet run writes its tenants' rows in one statement at its end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from ..models import SHARED_SCHEMA
from .events import TenantEvent
from .registry import metadata

log = logging.getLogger("tenantry.events")

history = sa.Table(
    "tenantry_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant", sa.Text, nullable=True),  # None: the fleet (a migrate_all run)
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    schema=SHARED_SCHEMA,
)
sa.Index("tenantry_history_tenant_idx", history.c.tenant, history.c.id)


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a tenant's history (``tenant`` ``None``: a fleet run)."""

    tenant: str | None
    event: str
    at: datetime
    details: dict[str, Any]


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it (locations and reports as their fields, the rest as text)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


class History:
    """Writes and reads the history of one main database."""

    def __init__(self, begin: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._begin = begin
        self._batch = threading.local()

    def record(self, event: TenantEvent) -> None:
        """Write ``event`` (or keep it for the end of the current :meth:`batch`)."""
        pending: list[TenantEvent] | None = getattr(self._batch, "events", None)
        if pending is not None:
            pending.append(event)
        else:
            self._write([event])

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Keep this thread's events until the block ends, then write them in one statement."""
        self._batch.events = []
        try:
            yield
        finally:
            events, self._batch.events = self._batch.events, None
            self._write(events)

    def _write(self, events: Sequence[TenantEvent]) -> None:
        if not events:
            return
        rows = [{"tenant": e.tenant, "event": e.event, "details": _summary(e)} for e in events]
        try:
            with self._begin() as conn:
                conn.execute(history.insert(), rows)
        except Exception:  # the change is committed: losing its history row must not undo it
            log.exception("cannot write %d history row(s)", len(rows))

    def read(self, tenant: str | None = None, limit: int = 100) -> list[HistoryEntry]:
        """The latest ``limit`` events, newest first (of ``tenant``, or of everyone)."""
        query = sa.select(history).order_by(history.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(history.c.tenant == tenant)
        with self._begin() as conn:
            return [HistoryEntry(r.tenant, r.event, r.at, r.details) for r in conn.execute(query)]


def _summary(event: TenantEvent) -> dict[str, Any]:
    details = dict(event.details)
    report = details.pop("report", None)
    if report is not None:  # a fleet run: counts, not every outcome again
        results: dict[str, int] = {}
        for outcome in report.tenants:
            results[outcome.result] = results.get(outcome.result, 0) + 1
        details["results"] = results
    return {k: plain(v) for k, v in details.items()}

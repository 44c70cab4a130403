"""What the console shows about the fleet, from read-only registry queries that scale: counts
are ``GROUP BY``, lists are one page (never the whole registry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..core.registry import State, TenantInfo, tenants
from ..errors import NotConfiguredFor
from ..strategies.database import MAIN_SERVER, DatabaseStrategy
from ..strategies.enginemetrics import EngineMetrics
from ..tenancy import Tenancy

#: Tenants per page of the tenants list.
PAGE_SIZE = 50
#: Tenants listed as needing attention on the overview.
ATTENTION_LIMIT = 20
#: States that need an operator's eye (any tenant with a recorded error does too).
ATTENTION_STATES = (State.FAILED.value, State.MIGRATING.value, State.SUSPENDED.value)


@dataclass(frozen=True)
class Overview:
    """The fleet at a glance."""

    total: int
    head: str | None
    by_state: dict[str, int]
    by_strategy: dict[str, int]
    by_server: dict[str, int]
    by_revision: list[tuple[str | None, int]]  # most common first
    attention: list[TenantInfo]
    attention_total: int
    metrics: EngineMetrics | None  # None: the strategy keeps no engine registry
    main_size: int | None  # bytes of the main database (every schema tenant is in it)
    servers: dict[str, str]  # name -> URL, password hidden

    @property
    def behind(self) -> int:
        """Tenants not at the head revision."""
        return self.total - sum(n for rev, n in self.by_revision if rev == self.head)


@dataclass(frozen=True)
class Page:
    """One page of the tenants list."""

    rows: list[TenantInfo]
    number: int  # from 1
    total: int  # tenants matching the filter

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def head_of(tenancy: Tenancy) -> str | None:
    """The tenant stream's head revision (``None`` without a tenant stream)."""
    return tenancy.tenant_stream.head if tenancy.tenant_stream is not None else None


def servers_of(tenancy: Tenancy) -> dict[str, str]:
    """The configured servers' URLs, passwords hidden (``main`` only for the schema strategy)."""
    strategy = tenancy.strategy
    found = strategy.servers if isinstance(strategy, DatabaseStrategy) else {}
    found = found or {MAIN_SERVER: tenancy.engine.url}
    return {name: url.render_as_string(hide_password=True) for name, url in found.items()}


def metrics_of(tenancy: Tenancy) -> EngineMetrics | None:
    """The engine registry's counters, or ``None`` when the strategy has no such registry."""
    try:
        return tenancy.engine_metrics()
    except NotConfiguredFor:
        return None


def _counts(conn: sa.Connection, column: sa.ColumnElement[Any]) -> list[tuple[Any, int]]:
    query = sa.select(column, sa.func.count()).group_by(column).order_by(sa.func.count().desc())
    return [(key, int(n)) for key, n in conn.execute(query)]


def needs_attention() -> sa.ColumnElement[bool]:
    return sa.or_(tenants.c.state.in_(ATTENTION_STATES), tenants.c.error.is_not(None))


def overview(tenancy: Tenancy) -> Overview:
    """Counts by state, strategy, server and revision, the tenants needing attention (the most
    recently changed first), engine metrics and the main database's size."""
    with tenancy.core.store.begin() as conn:
        by_state = dict(_counts(conn, tenants.c.state))
        by_strategy = dict(_counts(conn, tenants.c.strategy))
        server = sa.func.coalesce(tenants.c.server, MAIN_SERVER)
        by_server = dict(_counts(conn, server))
        by_revision = _counts(conn, tenants.c.revision)
        attention = [TenantInfo.from_row(r) for r in conn.execute(
            sa.select(tenants).where(needs_attention())
            .order_by(tenants.c.updated_at.desc(), tenants.c.name).limit(ATTENTION_LIMIT))]
        attention_total = conn.execute(
            sa.select(sa.func.count()).select_from(tenants).where(needs_attention())).scalar_one()
        main_size = conn.execute(sa.select(sa.func.pg_database_size(
            sa.func.current_database()))).scalar_one()
    return Overview(
        total=sum(by_state.values()), head=head_of(tenancy), by_state=by_state,
        by_strategy=by_strategy, by_server=by_server, by_revision=by_revision,
        attention=attention, attention_total=int(attention_total), metrics=metrics_of(tenancy),
        main_size=int(main_size), servers=servers_of(tenancy),
    )


def page(tenancy: Tenancy, *, number: int = 1, state: str | None = None,
         search: str | None = None) -> Page:
    """Page ``number`` (from 1) of the tenants in ``state`` whose name contains ``search``
    (case-insensitive, taken literally), by name."""
    where: list[sa.ColumnElement[bool]] = []
    if state:
        where.append(tenants.c.state == state)
    if search:
        where.append(tenants.c.name.icontains(search, autoescape=True))
    number = max(1, number)
    with tenancy.core.store.begin() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(tenants).where(*where)).scalar_one()
        rows = conn.execute(
            sa.select(tenants).where(*where).order_by(tenants.c.name)
            .limit(PAGE_SIZE).offset((number - 1) * PAGE_SIZE))
        return Page([TenantInfo.from_row(r) for r in rows], number, int(total))

"""The tenant registry: one shared table in the main database that lists every tenant.

Each row says where the tenant lives (strategy, server, database, schema), its state and its
migration revision, so that listing tenants or reporting migration status is one query.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..models import SHARED_SCHEMA


class State(enum.StrEnum):
    """Lifecycle state of a tenant."""

    PROVISIONING = "provisioning"
    READY = "ready"
    MIGRATING = "migrating"
    FAILED = "failed"
    DROPPING = "dropping"
    SUSPENDED = "suspended"


#: States in which a tenant's data can be used.
USABLE_STATES = frozenset({State.READY, State.MIGRATING, State.FAILED})
#: States in which migrations reach a tenant (a suspended tenant keeps its schema current).
MIGRATABLE_STATES = USABLE_STATES | {State.SUSPENDED}
_STATE_CHECK = f"state IN ({', '.join(repr(s.value) for s in State)})"

metadata = sa.MetaData()
_now = sa.func.now()
tenants = sa.Table(
    "tenantry_tenants",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("strategy", sa.Text, nullable=False),
    sa.Column("server", sa.Text, nullable=True),
    sa.Column("database", sa.Text, nullable=True),
    sa.Column("schema", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("revision", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),  # why it is suspended
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint(_STATE_CHECK, name="tenantry_tenants_state"),
    schema=SHARED_SCHEMA,
)
sa.Index("tenantry_tenants_state_idx", tenants.c.state)


@dataclass(frozen=True)
class Location:
    """Where a tenant's tables live. ``server``/``database`` ``None`` mean the main ones."""

    schema: str
    database: str | None = None
    server: str | None = None


@dataclass(frozen=True)
class TenantInfo:
    """One registry row."""

    name: str
    strategy: str
    location: Location
    state: State
    revision: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    #: Why the tenant is suspended (given to :meth:`~tenantry.Tenancy.suspend_tenant`).
    reason: str | None = None
    #: The application's record of the tenant (``Tenancy(tenant_columns=...)``): filled by
    #: listing reads (``get_tenant``, ``list_tenants``), empty on routes (docs/records.md).
    record: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def schema(self) -> str:
        return self.location.schema

    @property
    def usable(self) -> bool:
        return self.state in USABLE_STATES

    @classmethod
    def from_row(cls, row: Any, record: Mapping[str, Any] | None = None) -> TenantInfo:
        return cls(
            name=row.name,
            strategy=row.strategy,
            location=Location(schema=row.schema, database=row.database, server=row.server),
            state=State(row.state),
            revision=row.revision,
            error=row.error,
            created_at=row.created_at,
            updated_at=row.updated_at,
            reason=row.reason,
            record=dict(record or {}),
        )


# Advisory-lock key space: (classid, objid). The class id keeps our locks apart from the app's.
LOCK_CLASS = 0x7E7A  # "tenantry"
_GLOBAL_LOCK = "__tenantry_global__"


def lock_key(name: str) -> int:
    # crc32 fits a signed int4 after the shift; stable across processes and Python versions.
    return zlib.crc32(name.encode()) - 2**31


def lock_tenants(conn: Connection, names: Iterable[str]) -> None:
    """Take transaction-scoped advisory locks on ``names`` (in a stable order: no deadlock)."""
    for key in sorted({lock_key(n) for n in names}):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_CLASS, key)))


def lock_global(conn: Connection) -> None:
    """Take the transaction-scoped lock that serialises registry set-up and shared migrations."""
    lock_tenants(conn, [_GLOBAL_LOCK])


def ensure(conn: Connection) -> None:
    """Create the registry table if it is missing (idempotent, safe under concurrency)."""
    lock_global(conn)
    metadata.create_all(conn, checkfirst=True)
    _upgrade(conn)


def _upgrade(conn: Connection) -> None:
    """Bring a registry made by an older tenantry up to this one (``suspended``, ``reason``)."""
    table = f"{SHARED_SCHEMA}.{tenants.name}"  # constants of this module, not user input
    has_reason, check = conn.execute(
        sa.text("SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                "AND attname = 'reason' AND NOT attisdropped), "
                "(SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'tenantry_tenants_state' AND conrelid = CAST(:t AS regclass))"),
        {"t": table},
    ).one()
    if not has_reason:  # checked first: ALTER TABLE waits for every reader of the registry
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS reason text")
    if check is not None and all(f"'{s.value}'" in check for s in State):
        return
    if check is not None:
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT tenantry_tenants_state")
    conn.exec_driver_sql(
        f"ALTER TABLE {table} ADD CONSTRAINT tenantry_tenants_state CHECK ({_STATE_CHECK})"
    )


def get(conn: Connection, name: str) -> TenantInfo | None:
    row = conn.execute(sa.select(tenants).where(tenants.c.name == name)).first()
    return TenantInfo.from_row(row) if row is not None else None


def all_tenants(conn: Connection, names: Sequence[str] | None = None) -> list[TenantInfo]:
    query = sa.select(tenants).order_by(tenants.c.name)
    if names is not None:
        query = query.where(tenants.c.name.in_(list(names)))
    return [TenantInfo.from_row(r) for r in conn.execute(query)]


def insert(
    conn: Connection,
    name: str,
    strategy: str,
    location: Location,
    state: State,
    revision: str | None = None,
) -> TenantInfo:
    row = conn.execute(
        tenants.insert()
        .values(
            name=name,
            strategy=strategy,
            server=location.server,
            database=location.database,
            schema=location.schema,
            state=state.value,
            revision=revision,
        )
        .returning(*tenants.c)
    ).one()
    return TenantInfo.from_row(row)


def keeping_suspension(state: State) -> sa.ColumnElement[str]:
    """``state`` for a row, unless it is suspended: migrations reach suspended tenants and
    leave them suspended."""
    return sa.case(
        (tenants.c.state == State.SUSPENDED.value, State.SUSPENDED.value), else_=state.value
    )


def update(conn: Connection, name: str, /, **values: Any) -> None:
    """Update columns of one row (``location=`` expands to server/database/schema)."""
    location = values.pop("location", None)
    if isinstance(location, Location):
        values.update(server=location.server, database=location.database, schema=location.schema)
    if isinstance(values.get("state"), State):
        values["state"] = values["state"].value
    conn.execute(
        tenants.update()
        .where(tenants.c.name == name)
        .values(**values, updated_at=sa.func.now())
    )


def delete(conn: Connection, name: str) -> None:
    conn.execute(tenants.delete().where(tenants.c.name == name))


def try_lock_tenant(conn: Connection, name: str) -> bool:
    """Take ``name``'s transaction-scoped lock if nobody holds it; whether that worked."""
    query = sa.select(sa.func.pg_try_advisory_xact_lock(LOCK_CLASS, lock_key(name)))
    return bool(conn.execute(query).scalar())

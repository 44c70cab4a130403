"""Intent records: what a multi-step operation was doing, so that it can be finished after a
crash.

An operation whose steps do not commit together (a database tenant's create, rename or drop:
``CREATE/ALTER/DROP DATABASE`` cannot run in a transaction) first commits an intent (operation,
tenant, where the data is, where it goes, step), advances its step as steps complete, and
deletes it in the same transaction as its final registry change. Whoever finds an intent while
nobody holds the tenant's lock knows that operation died: ``doctor`` reports it and rolls it
forward (or back), and running the same operation again resumes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..models import SHARED_SCHEMA
from .registry import Location


class Operation(enum.StrEnum):
    """The operations that write intents."""

    CREATE = "create"
    IMPORT = "import"  # a create that loads an export
    RENAME = "rename"
    DROP = "drop"
    MOVE = "move"  # also a promotion or demotion: a copy, then the registry switch


metadata = sa.MetaData()
intents = sa.Table(
    "tenantry_intents",
    metadata,
    sa.Column("tenant", sa.Text, primary_key=True),  # the name the operation started from
    sa.Column("operation", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=True),  # the new name (rename)
    sa.Column("from_server", sa.Text, nullable=True),
    sa.Column("from_database", sa.Text, nullable=True),
    sa.Column("from_schema", sa.Text, nullable=True),
    sa.Column("to_server", sa.Text, nullable=True),
    sa.Column("to_database", sa.Text, nullable=True),
    sa.Column("to_schema", sa.Text, nullable=True),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("started", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(
        "operation IN ('create', 'import', 'rename', 'drop', 'move')", name="tenantry_intents_op"
    ),
    schema=SHARED_SCHEMA,
)


@dataclass(frozen=True)
class Intent:
    """One unfinished operation on ``tenant`` (renamed to ``target``)."""

    operation: Operation
    tenant: str
    source: Location | None  # where the data was when it started (None: create)
    dest: Location | None  # where it goes (None: drop)
    target: str | None = None
    step: str = "started"
    started: datetime | None = None

    @property
    def names(self) -> list[str]:
        """The tenant names the operation holds locks on."""
        return [self.tenant] if self.target is None else [self.tenant, self.target]

    def describe(self) -> str:
        what = f"{self.operation} of {self.tenant!r}"
        if self.target is not None:
            what += f" to {self.target!r}"
        return f"{what} (stopped after step {self.step!r})"

    def command(self) -> str:
        """The CLI command that finishes the operation."""
        if self.operation == Operation.RENAME:
            return f"tenantry rename {self.tenant} {self.target}"
        if self.operation == Operation.DROP:
            return f"tenantry drop {self.tenant} --yes"
        if self.operation == Operation.MOVE:
            return "tenantry doctor --fix (it drops the unfinished copy; then move again)"
        if self.operation == Operation.IMPORT:
            return f"tenantry import EXPORT_DIR --as {self.tenant}"
        return f"tenantry create {self.tenant}"

    @classmethod
    def from_row(cls, row: Any) -> Intent:
        return cls(
            operation=Operation(row.operation),
            tenant=row.tenant,
            source=_location(row.from_schema, row.from_database, row.from_server),
            dest=_location(row.to_schema, row.to_database, row.to_server),
            target=row.target,
            step=row.step,
            started=row.started,
        )


def _location(schema: str | None, database: str | None, server: str | None) -> Location | None:
    return None if schema is None else Location(schema=schema, database=database, server=server)


def ensure(conn: Connection) -> None:
    """Create the intent table if it is missing (under the caller's global lock)."""
    metadata.create_all(conn, checkfirst=True)


def begin(engine: Engine, intent: Intent) -> None:
    """Record ``intent`` and commit it at once (before the first step that cannot roll back)."""
    source, dest = intent.source, intent.dest
    with engine.begin() as conn:
        conn.execute(intents.insert().values(
            tenant=intent.tenant,
            operation=intent.operation.value,
            target=intent.target,
            from_server=source.server if source else None,
            from_database=source.database if source else None,
            from_schema=source.schema if source else None,
            to_server=dest.server if dest else None,
            to_database=dest.database if dest else None,
            to_schema=dest.schema if dest else None,
            step=intent.step,
        ))


def advance(engine: Engine, tenant: str, step: str) -> None:
    """Record (and commit) that the intent on ``tenant`` completed ``step``."""
    with engine.begin() as conn:
        conn.execute(
            intents.update()
            .where(intents.c.tenant == tenant)
            .values(step=step, updated=sa.func.now())
        )


def clear(conn: Connection, tenant: str) -> None:
    """Delete the intent on ``tenant`` in the caller's transaction (with its registry change)."""
    conn.execute(intents.delete().where(intents.c.tenant == tenant))


def discard(engine: Engine, tenant: str) -> None:
    """Delete the intent on ``tenant`` now (an operation that failed and cleaned up)."""
    with engine.begin() as conn:
        clear(conn, tenant)


def find(conn: Connection, name: str) -> Intent | None:
    """The unfinished operation that involves tenant ``name`` (as its old or new name)."""
    row = conn.execute(
        sa.select(intents).where(sa.or_(intents.c.tenant == name, intents.c.target == name))
    ).first()
    return Intent.from_row(row) if row is not None else None


def all_intents(conn: Connection) -> list[Intent]:
    return [Intent.from_row(r) for r in conn.execute(sa.select(intents).order_by(intents.c.tenant))]

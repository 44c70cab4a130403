"""Compiled fleet migrations: Alembic renders a step's SQL once (offline mode), every tenant
runs it in one round trip.

Alembic's per-call overhead (environment, version-table checks, several queries) is many times
the cost of a small DDL change. For a fleet, the SQL of the step ``A -> B`` is rendered once for
a placeholder schema; each tenant then runs it with its own schema name, inside its own
transaction, and checks that its version table now says ``B`` (else the transaction rolls back
and the tenant is migrated the ordinary way). Opt-in: migrations that need the database while
they run (``op.get_bind()`` queries, reflection, ``context.is_offline_mode()`` branches) must not
use it; when rendering fails, tenantry falls back to ordinary migrations for everyone.
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .migrations import MigrationStream
from .template import execute_script

log = logging.getLogger("tenantry.compiled")

PLACEHOLDER = "tenantry_compiled_schema"
_MENTION = re.compile(rf"(?<![\w$]){PLACEHOLDER}(?![\w$])")
_TRANSACTION = re.compile(r"(?m)^(?:BEGIN|COMMIT);$")


class StaleRevision(Exception):
    """The tenant's version table was not at the step's start: migrate it the ordinary way."""


class CompiledStep:
    """The SQL of one upgrade step ``start -> target``, ready for any tenant schema."""

    def __init__(self, stream: MigrationStream, start: str | None, target: str) -> None:
        sql = stream.sql(PLACEHOLDER, target, start=start)
        self.start, self.target = start, target
        self.version_table = stream.version_table
        self._chunks = _MENTION.split(_TRANSACTION.sub("", sql))

    def run(self, conn: Connection, schema: str) -> None:
        """Run the step on ``schema`` (on the search path) in ``conn``'s transaction."""
        name = conn.dialect.identifier_preparer.quote(schema)
        execute_script(conn, name.join(self._chunks))
        table = sa.table(self.version_table, sa.column("version_num"), schema=schema)
        now = conn.execute(sa.select(table.c.version_num)).scalars().all()
        if now != [self.target]:
            raise StaleRevision(f"{schema}: version table says {now}, not {self.target!r}")


class Compiler:
    """Renders and caches compiled steps; ``None`` for a step that cannot be rendered."""

    def __init__(self, stream: MigrationStream) -> None:
        self.stream = stream
        self._steps: dict[tuple[str | None, str], CompiledStep | None] = {}

    def step(self, start: str | None, target: str) -> CompiledStep | None:
        key = (start, target)
        if key not in self._steps:
            try:
                self._steps[key] = CompiledStep(self.stream, start, target)
            except Exception as exc:  # offline rendering unsupported by these migrations
                log.warning("cannot compile %s -> %s, migrating the ordinary way: %s",
                            start or "base", target, exc)
                self._steps[key] = None
        return self._steps[key]

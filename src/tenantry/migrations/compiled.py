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

from sqlalchemy.engine import Connection

from ..names import quote
from ..provisioning.sqlscript import execute_script
from .stream import MigrationStream

log = logging.getLogger("tenantry.compiled")

PLACEHOLDER = "tenantry_compiled_schema"
_MENTION = re.compile(rf"(?<![\w$]){PLACEHOLDER}(?![\w$])")
_TRANSACTION = re.compile(r"(?m)^(?:BEGIN|COMMIT);$")
_STALE = "tenantry: stale revision"


class StaleRevision(Exception):
    """The tenant's version table was not at the step's start: migrate it the ordinary way."""


class CompiledStep:
    """The SQL of one upgrade step ``start -> target``, ready for any tenant schema."""

    def __init__(self, stream: MigrationStream, start: str | None, target: str) -> None:
        sql = stream.sql(PLACEHOLDER, target, start=start)
        self.start, self.target = start, target
        self.version_table = stream.version_table
        self._chunks = _MENTION.split(_TRANSACTION.sub("", sql))

    def run(self, conn: Connection, schema: str, prologue: str = "", epilogue: str = "") -> None:
        """Run the step on ``schema`` (on the search path) in ``conn``'s transaction.

        One round trip: ``prologue`` (e.g. a lock), the step, a check that the version table
        now says the target (else :class:`StaleRevision`, and the caller rolls back), then
        ``epilogue`` (e.g. the registry update, when it lives in the same database).
        """
        name = conn.dialect.identifier_preparer.quote(schema)
        table = f"{quote(schema)}.{quote(self.version_table)}"
        check = (
            "DO $tenantry$ BEGIN IF (SELECT array_agg(version_num::text) FROM "  # noqa: S608
            f"{table}) IS DISTINCT FROM ARRAY[{literal(self.target)}]::text[] THEN "
            f"RAISE EXCEPTION '{_STALE}'; END IF; END $tenantry$;\n"
        )
        script = prologue + name.join(self._chunks) + check + epilogue
        try:
            execute_script(conn, script)
        except Exception as exc:  # driver errors, raised by the raw cursor
            if _STALE in str(exc):
                raise StaleRevision(f"{schema}: version table is not at {self.start}") from exc
            raise


def literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings)."""
    return "'" + value.replace("'", "''") + "'"


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

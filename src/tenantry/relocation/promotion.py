"""Promotion and demotion: a tenant's schema moves between the main database and its own.

Both reuse :class:`~tenantry.relocation.moving.Move` (online: schema restored, logical replication,
the source's tables locked against writes only to catch up; offline: locked for the whole
``pg_dump --schema | pg_restore``; then row counts and sequences compared, the registry row
switched by the caller). The schema keeps its name, so routing and migrations are unchanged.

* :class:`Promotion`: schema ``tenant_acme`` of the main database -> database ``tenant_acme``
  (created from ``template0``) on a chosen server. :meth:`Promotion.finish` drops the old schema
  inside the transaction that held the locks, so writers that waited on them fail instead of
  writing to a copy that no longer counts.
* :class:`Demotion`: the tenant database's schema -> the main database;
  :meth:`Demotion.finish` drops the tenant database ``WITH (FORCE)``.

A foreign key from a tenant table to a table outside its schema (such as ``public.users``)
cannot exist in another database: :func:`outside_foreign_keys` finds them; the caller refuses
(:class:`~tenantry.ForeignKeyAcrossDatabases`) or asks :class:`Promotion` to leave them out.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import DropSchema

from ..core.registry import Location
from ..errors import MoveError, TenantExists
from ..pgtools import libpq_env
from ..strategies.base import schema_exists
from ..strategies.database import DatabaseStrategy
from .moving import Move

log = logging.getLogger("tenantry")

#: ``(table, constraint, referenced schema.table)``
ForeignKey = tuple[str, str, str]


def outside_foreign_keys(conn: Connection, schema: str) -> list[ForeignKey]:
    """Foreign keys of ``schema``'s tables that reference tables in other schemas."""
    query = sa.text(
        "SELECT rel.relname, c.conname, fn.nspname || '.' || f.relname "
        "FROM pg_constraint c "
        "JOIN pg_class rel ON rel.oid = c.conrelid "
        "JOIN pg_namespace rn ON rn.oid = rel.relnamespace "
        "JOIN pg_class f ON f.oid = c.confrelid "
        "JOIN pg_namespace fn ON fn.oid = f.relnamespace "
        "WHERE c.contype = 'f' AND rn.nspname = :s AND fn.nspname <> :s "
        "ORDER BY 1, 2"
    )
    return [(t, c, r) for t, c, r in conn.execute(query, {"s": schema})]


class Promotion(Move):
    """Schema tenant -> database tenant. ``leave_out``: foreign keys not to restore."""

    def __init__(
        self,
        strategy: DatabaseStrategy,
        tenant: str,
        source: Location,
        target: Location,
        *,
        lock_timeout: str = "30s",
        online: bool | None = None,
        leave_out: list[ForeignKey] | None = None,
    ) -> None:
        super().__init__(
            strategy, tenant, source, target, lock_timeout=lock_timeout, online=online
        )
        self.leave_out = leave_out or []

    def _dump_restore(self, *, schema_only: bool = False) -> None:
        if not self.leave_out:
            super()._dump_restore(schema_only=schema_only)
            return
        with tempfile.TemporaryDirectory(prefix="tenantry-promote-") as tmp:
            archive, listing = Path(tmp) / "schema.dump", Path(tmp) / "restore.list"
            common = self._common_flags(schema_only)
            self._run(
                [self._program("pg_dump"), "--format=custom", *self._dump_flags(),
                 f"--file={archive}", *common],
                self.source,
            )
            toc = self._run([self._program("pg_restore"), "--list", str(archive)], self.target)
            skipped = {f" FK CONSTRAINT {self.schema} {table} {name} "
                       for table, name, _ in self.leave_out}
            kept = [line for line in toc.splitlines()
                    if not any(s in line + " " for s in skipped)]
            listing.write_text("\n".join(kept) + "\n")
            assert self.target.database is not None
            self._run(
                [self._program("pg_restore"), "--exit-on-error", "--single-transaction",
                 f"--dbname={self.target.database}", f"--use-list={listing}", *common,
                 str(archive)],
                self.target,
            )
        log.info("promoting tenant %s without foreign keys %s", self.tenant,
                 [name for _, name, _ in self.leave_out])

    def _refuse_large_objects(self, conn: Connection) -> None:
        """The main database's large objects belong to no tenant: nothing to refuse."""

    def _run(self, command: list[str], location: Location) -> str:
        done = subprocess.run(
            command, capture_output=True, env=libpq_env(self._url(location)), check=False
        )
        if done.returncode:
            detail = done.stderr.decode(errors="replace").strip()
            raise MoveError(
                f"promoting tenant {self.tenant!r}: {Path(command[0]).name} failed "
                f"({done.returncode}): {detail[:2000]}"
            )
        return done.stdout.decode()

    def finish(self) -> None:
        """After the registry switch: drop the old schema in the lock-holding transaction."""
        holder = self._holder
        assert holder is not None
        holder.execute(sa.text("SELECT set_config('lock_timeout', '0', true)"))
        holder.execute(DropSchema(self.schema, cascade=True, if_exists=True))
        holder.commit()
        self._release()


class Demotion(Move):
    """Database tenant -> schema tenant of the main database."""

    _schema_made = False

    def _make_target(self) -> None:
        with self.strategy.main.connect() as conn:
            if schema_exists(conn, self.schema):
                raise TenantExists(
                    f"cannot demote tenant {self.tenant!r}: schema {self.schema!r} already "
                    "exists in the main database (left by an interrupted demotion? `tenantry "
                    "doctor` finds it)"
                )
        self._schema_made = True  # restored by the copy; dropped by abort

    def abort(self) -> None:
        super().abort()  # no target database was made: stops replicating, releases the locks
        if self._schema_made:
            with self.strategy.main.begin() as conn:
                conn.execute(DropSchema(self.schema, cascade=True, if_exists=True))

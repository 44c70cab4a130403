"""Moving a database tenant to another server, then a registry switch.

Online (the default when the source server has ``wal_level = logical``; see
docs/database-per-tenant.md for what is blocked when):

1. create the target database (from ``template0``) and restore the schema's definitions into it
   (``pg_dump --schema-only | pg_restore``);
2. logical replication (:class:`~tenantry.relocation.replication.Replication`) copies every table
   and then streams new changes; reads and writes go on;
3. the switch: a transaction on the source takes ``EXCLUSIVE`` locks on every table of the
   tenant schema (from here writers wait, readers go on), the target catches up with the last
   committed change, sequences are copied, replication is dropped;
4. compare row counts of every table and the value of every sequence;
5. the caller switches the registry row and commits;
6. :meth:`Move.finish` drops the source database ``WITH (FORCE)``: the waiting writers' sessions
   end with an error instead of writing to a copy that no longer counts.

Offline (``online=False``, or no logical WAL on the source): the locks of step 3 are taken first,
then ``pg_dump | pg_restore`` copies definitions and data; writes wait for the whole copy.
``pg_dump``/``pg_restore`` (found by :mod:`tenantry.pgtools`) get their credentials from the
environment, never the command line.

On any failure before the switch, :meth:`Move.abort` stops replicating, drops the target and
releases the locks.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from ..core.registry import Location
from ..errors import MoveError, OnlineMoveUnavailable
from ..names import quote
from ..pgtools import find_program, libpq_env
from ..strategies.database import DatabaseStrategy
from .replication import (
    Replication,
    copy_sequences,
    drop_local,
    leftovers,
    local_leftovers,
    move_name,
    obstacle,
)

log = logging.getLogger("tenantry")


class Move:
    """One tenant's copy from ``source`` to ``target`` (see the module docstring)."""

    def __init__(
        self,
        strategy: DatabaseStrategy,
        tenant: str,
        source: Location,
        target: Location,
        *,
        lock_timeout: str = "30s",
        online: bool | None = None,
    ) -> None:
        self.strategy = strategy
        self.tenant = tenant
        self.source, self.target = source, target
        self.schema = source.schema
        self.lock_timeout = lock_timeout
        self.online = online
        self._holder_engine: Engine | None = None
        self._holder: Connection | None = None
        self._replication: Replication | None = None
        self._target_made = False

    def _url(self, location: Location) -> URL:
        assert location.server is not None and location.database is not None
        return self.strategy.servers[location.server].set(database=location.database)

    def _program(self, name: str) -> str:
        """``pg_dump`` (at least the source server's version) or ``pg_restore`` (the
        target's): see :mod:`tenantry.pgtools`."""
        location = self.source if name == "pg_dump" else self.target
        assert location.server is not None
        engine = self.strategy.admin(location.server)
        if engine.dialect.server_version_info is None:  # set by the first connection
            with engine.connect():
                pass
        version = engine.dialect.server_version_info
        return find_program(name, int(version[0]) if version else None)

    def copy(self) -> None:
        """Copy the tenant; on return, writes to it wait until :meth:`finish` or :meth:`abort`.

        Online: schema, replication, then the write lock only to catch up. Offline: the write
        lock, then ``pg_dump | pg_restore`` of schema and data.
        """
        online = self._use_replication()
        self._make_target()
        self._clear_leftovers()
        if online:
            self._dump_restore(schema_only=True)
            self._replication = Replication(
                self.tenant, self.schema, self._url(self.source), self._url(self.target)
            )
            self._replication.start()
            self._replication.wait_synced()
            self._block_writes()
            self._replication.catch_up()
            assert self._holder is not None
            with self._connection(self.target) as target:
                copy_sequences(self._holder, target, self.schema)
            self._replication.stop(restore_identities=False)  # the source will be dropped
            self._replication = None
        else:
            self._block_writes()
            self._dump_restore()
        self._verify()

    def _use_replication(self) -> bool:
        """``online=None``: replicate when the source allows it, else copy offline."""
        with self._connection(self.source) as conn:
            self._refuse_large_objects(conn)
            reason = None if self.online is False else obstacle(conn, self.schema)
        if self.online is False:
            return False
        if reason is not None and self.online:
            raise OnlineMoveUnavailable(f"cannot move tenant {self.tenant!r} online: {reason}")
        if reason is not None:
            log.warning("moving tenant %s offline (writes wait for the whole copy): %s",
                        self.tenant, reason)
        return reason is None

    def _refuse_large_objects(self, conn: Connection) -> None:
        """A tenant database's large objects would not be copied: refuse rather than lose them."""
        if conn.exec_driver_sql("SELECT EXISTS (SELECT FROM pg_largeobject_metadata)").scalar():
            raise MoveError(
                f"cannot move tenant {self.tenant!r}: its database has large objects, which "
                "neither pg_dump --schema nor logical replication copies"
            )

    def _clear_leftovers(self) -> None:
        """Drop the publication and marker table a killed move of this tenant left in the
        source (ours: the tenant's lock is held); refuse while its slot or subscription exists.
        """
        name = move_name(self.schema)
        for server in {self.source.server, self.target.server}:
            assert server is not None
            with self.strategy.admin(server).connect() as conn:
                found = leftovers(conn).get(name)
            if found:
                raise MoveError(
                    f"cannot move tenant {self.tenant!r}: an interrupted move left "
                    f"{', '.join(found)} on server {server!r}; `tenantry doctor --fix` drops them"
                )
        with self._connection(self.source) as conn:
            if name in local_leftovers(conn):
                log.warning("moving tenant %s: dropping the publication and marker table an "
                            "interrupted move left", self.tenant)
                drop_local(conn, name)

    @contextmanager
    def _connection(self, location: Location) -> Iterator[Connection]:
        """A connection to ``location``'s database, in a transaction committed on exit."""
        engine = sa.create_engine(self._url(location), poolclass=NullPool)
        try:
            with engine.begin() as conn:
                yield conn
        finally:
            engine.dispose()

    def _make_target(self) -> None:
        """Create the target database (``template0``); refuse if it exists."""
        assert self.target.server is not None and self.target.database is not None
        if self.strategy.database_exists(self.target.server, self.target.database):
            raise MoveError(
                f"cannot move tenant {self.tenant!r}: database {self.target.database!r} "
                f"already exists on server {self.target.server!r} (left by an interrupted move? "
                "`tenantry doctor` finds it)"
            )
        with self.strategy.admin(self.target.server).connect() as conn:
            database = quote(self.target.database)
            conn.exec_driver_sql(f"CREATE DATABASE {database} TEMPLATE template0")
        self._target_made = True

    def _block_writes(self) -> None:
        self._holder_engine = sa.create_engine(self._url(self.source), poolclass=NullPool)
        holder = self._holder = self._holder_engine.connect()
        holder.begin()
        timeout = {"t": self.lock_timeout}
        holder.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), timeout)
        tables = self._tables(holder)
        if tables:
            names = ", ".join(f"{quote(self.schema)}.{quote(t)}" for t in tables)
            holder.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")

    def _tables(self, conn: Connection) -> list[str]:
        """The tenant's tables (not the replication's marker)."""
        query = sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY 1")
        tables = conn.execute(query, {"s": self.schema}).scalars()
        return [table for table in tables if table != move_name(self.schema)]

    def _dump_flags(self) -> list[str]:
        """``pg_dump`` flags selecting the tenant's schema, without a move's marker table."""
        marker = f'"{self.schema}"."{move_name(self.schema)}"'
        return [f"--schema={self.schema}", f"--exclude-table={marker}"]

    @staticmethod
    def _common_flags(schema_only: bool) -> list[str]:
        """Flags of both ``pg_dump`` and ``pg_restore``: no owners, no grants, (definitions)."""
        return ["--no-owner", "--no-privileges", *(["--schema-only"] if schema_only else [])]

    def _dump_restore(self, *, schema_only: bool = False) -> None:
        common = self._common_flags(schema_only)
        dump_cmd = [self._program("pg_dump"), "--format=custom", *self._dump_flags(), *common]
        assert self.target.database is not None
        restore_cmd = [
            self._program("pg_restore"),
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={self.target.database}",
            *common,
        ]
        dump = subprocess.Popen(
            dump_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=libpq_env(self._url(self.source)),
        )
        restore = subprocess.Popen(
            restore_cmd, stdin=dump.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=libpq_env(self._url(self.target)),
        )
        assert dump.stdout is not None
        dump.stdout.close()  # restore owns the pipe now
        _, restore_err = restore.communicate()
        dump_err = dump.stderr.read() if dump.stderr is not None else b""
        dump.wait()
        if dump.stderr is not None:
            dump.stderr.close()
        if dump.returncode or restore.returncode:
            detail = (dump_err or restore_err).decode(errors="replace").strip()
            raise MoveError(
                f"moving tenant {self.tenant!r}: pg_dump/pg_restore failed "
                f"({dump.returncode}/{restore.returncode}): {detail[:2000]}"
            )

    def _snapshot(self, conn: Connection) -> dict[str, int]:
        counts = {}
        for table in self._tables(conn):
            sql = f"SELECT count(*) FROM {quote(self.schema)}.{quote(table)}"  # noqa: S608
            counts[table] = int(conn.exec_driver_sql(sql).scalar_one())
        sequences = conn.execute(
            sa.text(
                "SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences "
                "WHERE schemaname = :s"
            ),
            {"s": self.schema},
        )
        counts.update({f"sequence {name}": int(value) for name, value in sequences})
        return counts

    def _verify(self) -> None:
        assert self._holder is not None
        before = self._snapshot(self._holder)
        with self._connection(self.target) as conn:
            after = self._snapshot(conn)
        if before != after:
            diff = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
                    if before.get(k) != after.get(k)}
            raise MoveError(f"moving tenant {self.tenant!r}: copy differs: {diff}")

    def abort(self) -> None:
        """Undo: release the source's locks, stop replicating, drop the target database."""
        self._release()
        if self._replication is not None:
            self._replication.stop()
            self._replication = None
        if self._target_made:
            assert self.target.server is not None and self.target.database is not None
            self.strategy.drop_database(self.target.server, self.target.database)

    def finish(self) -> None:
        """After the registry switch: drop the source (ending the sessions waiting on it)."""
        assert self.source.server is not None and self.source.database is not None
        self.strategy.drop_database(self.source.server, self.source.database)
        self._release()

    def _release(self) -> None:
        if self._holder is not None:
            try:
                self._holder.rollback()
                self._holder.close()
            except sa.exc.DBAPIError:  # terminated by DROP DATABASE ... WITH (FORCE)
                self._holder.invalidate()
            self._holder = None
        if self._holder_engine is not None:
            self._holder_engine.dispose()
            self._holder_engine = None

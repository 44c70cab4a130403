"""Database per tenant: tenant ``acme`` lives in schema ``tenant_acme`` of database ``tenant_acme``.

The database sits on one of several named servers; the registry (in the main database) records
which. Keeping the tenant's tables in a schema of the same name (not in ``public``) means routing
(``schema_translate_map``) and migrations (``SET LOCAL search_path``) work exactly as for schema
per tenant, and a schema tenant can later be promoted to its own database by one schema dump.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema

from ..core import registry
from ..core.registry import Location
from ..errors import TenantExists, UnknownServer, UnknownTenant, WrongTenantKind
from ..hooks import instrumentation, probe
from ..migrations.stream import MigrationStream
from ..names import identifier, quote
from ..provisioning.sqlscript import rename_schema
from ..urls import sync_engine_url, sync_url
from .base import Strategy, prepared, schema_exists
from .dialectreuse import DialectReuse
from .engines import EngineRegistry

log = logging.getLogger("tenantry")

#: ``placement(tenant, load) -> server``: ``load`` maps every configured server to its number of
#: database tenants (from the registry).
Placement = Callable[[str, Mapping[str, int]], str]

MAIN_SERVER = "main"
TEMPLATE_SCHEMA = "tenantry_template"


def creator_lock(server: str) -> str:
    """Name of the lock held while a database (or the template) is created on ``server``."""
    return f"__tenantry_server__:{server}"


def template_mark(head: str | None) -> str:
    """The comment of a finished template database built at ``head``."""
    return f"tenantry head={head}"


def fewest_tenants(tenant: str, load: Mapping[str, int]) -> str:
    """Default placement: the server holding the fewest tenants (ties: configuration order)."""
    return min(load, key=lambda server: load[server])


class DatabaseStrategy(Strategy):
    """One database per tenant, on a server chosen by a placement policy.

    Tenant engines come from an :class:`~tenantry.strategies.engines.EngineRegistry` (lazy, LRU,
    global connection budget). Creating, dropping and renaming databases goes through an AUTOCOMMIT
    connection (no pool) to each server's maintenance database: the database of its URL.
    """

    kind = "database"

    def __init__(
        self,
        main: Engine,
        prefix: str,
        *,
        servers: Mapping[str, str | URL] | None = None,
        placement: Placement | None = None,
        max_engines: int = 50,
        max_connections: int = 100,
        pool_size: int = 2,
        budget_timeout: float = 30.0,
        template: bool = True,
        tenant_engine_options: Mapping[str, Any] | None = None,
        max_parked: int | None = None,
    ) -> None:
        super().__init__(main, prefix)
        urls = {MAIN_SERVER: main.url} | {n: sync_engine_url(u) for n, u in (servers or {}).items()}
        self.servers: dict[str, URL] = urls
        self.placement: Placement = placement or fewest_tenants
        self.template = template
        #: The tenant migration stream used to build template databases (set by Tenancy).
        self.template_stream: MigrationStream | None = None
        self.engines = EngineRegistry(
            urls,
            self._make_tenant_engine,
            max_engines=max_engines,
            max_connections=max_connections,
            pool_size=pool_size,
            budget_timeout=budget_timeout,
            engine_options=tenant_engine_options,
            max_parked=max_parked,
        )
        self._admins: dict[str, Engine] = {}
        self.dialects = DialectReuse()  # later engines of a server skip dialect initialisation
        #: Called with a tenant's name when its storage vanished under a request (moved,
        #: renamed, promoted or demoted by another process): the Tenancy forgets its route.
        self.forget: Callable[[str], None] | None = None
        self.engines.on_drop = self._dropped

    def _dropped(self, server: str, database: str) -> None:
        """The registry forgot a tenant's engine for good: so does the cached route (which
        would keep the engine alive); the tenant's next request reads the registry again."""
        if self.forget is not None and database.startswith(self.prefix):
            self.forget(database.removeprefix(self.prefix))

    # -- engines -------------------------------------------------------------------------

    def _make_tenant_engine(self, url: URL, **options: Any) -> Engine:
        engine = self.dialects.make(sa.create_engine, url, **options)
        instrumentation.instrument(engine)
        database = url.database or ""
        tenant = database.removeprefix(self.prefix)
        missing = f'database "{database}" does not exist'

        def vanished(ctx: ExceptionContext) -> BaseException | None:
            # the tenant's database was dropped, renamed or moved by another process (a
            # connection open then was cut: ask its server, on a probe, never the pool)
            if missing in str(ctx.original_exception) or (
                ctx.is_disconnect and self.database_gone(url)
            ):
                return UnknownTenant(tenant, f"database {database!r} no longer exists here")
            return None

        event.listen(engine, "handle_error", vanished)
        event.listen(engine, "handle_error", self._vanished)
        return engine

    def _vanished(self, ctx: ExceptionContext) -> None:
        if self.forget is None:
            return
        error = getattr(ctx, "chained_exception", None)  # set once a handler returned one
        if isinstance(error, UnknownTenant):
            self.forget(error.name)
        elif ctx.is_disconnect and ctx.execution_context is not None:
            # e.g. the tenant's database was dropped WITH (FORCE) after a demotion or a move
            tenant = ctx.execution_context.execution_options.get("tenantry_tenant")
            if isinstance(tenant, str):
                self.forget(tenant)

    def database_gone(self, url: URL) -> bool:
        """Whether the database of tenant engine URL ``url`` is missing from its server.

        Asked on the server's maintenance database, with the server's URL (whoever ``url``
        logs in as), through a probe (:mod:`tenantry.hooks.probe`), outside every pool and the
        budget; ``False`` when it cannot tell.
        """
        url = sync_url(url)
        for server in self.servers.values():
            same = server.set(database=url.database, username=url.username, password=url.password)
            if same == url:
                query = sa.text("SELECT 1 FROM pg_database WHERE datname = :d")
                found = probe.rows(server, query.bindparams(d=url.database))
                return found is not None and not found
        return False

    def engine(self, location: Location) -> Engine:
        return self.engines.get(self.server_of(location), self._database(location))

    def admin(self, server: str) -> Engine:
        """AUTOCOMMIT engine (no pool) on ``server``'s maintenance database."""
        engine = self._admins.get(server)
        if engine is None:
            if server not in self.servers:
                raise UnknownServer(
                    f"unknown server {server!r}; configured: {sorted(self.servers)}"
                )
            engine = sa.create_engine(
                self.servers[server], isolation_level="AUTOCOMMIT", poolclass=NullPool
            )
            self._admins[server] = engine
        return engine

    def dispose(self) -> None:
        self.engines.dispose()
        for engine in self._admins.values():
            engine.dispose()
        self._admins.clear()

    @staticmethod
    def server_of(location: Location) -> str:
        """The name of the server holding ``location`` (``main`` when unnamed)."""
        return location.server or MAIN_SERVER

    @staticmethod
    def _database(location: Location) -> str:
        if location.database is None:
            raise WrongTenantKind(f"tenant location {location} has no database")
        return location.database

    # -- placement -----------------------------------------------------------------------

    def load(self, main: Connection) -> dict[str, int]:
        """Number of database tenants per configured server (from the registry)."""
        t = registry.tenants
        rows = main.execute(
            sa.select(t.c.server, sa.func.count())
            .where(t.c.strategy == self.kind)
            .group_by(t.c.server)
        )
        counts = {server: int(n) for server, n in rows}
        return {server: counts.get(server, 0) for server in self.servers}

    def locate(self, name: str, main: Connection) -> Location:
        ident = identifier(name, self.prefix)
        server = self.placement(name, self.load(main))
        if server not in self.servers:
            raise UnknownServer(
                f"placement chose unknown server {server!r} for tenant {name!r}; "
                f"configured: {sorted(self.servers)}"
            )
        return Location(schema=ident, database=ident, server=server)

    def renamed(self, location: Location, new_name: str) -> Location:
        ident = identifier(new_name, self.prefix)
        return replace(location, schema=ident, database=ident)

    # -- storage -------------------------------------------------------------------------

    def database_exists(self, server: str, database: str) -> bool:
        with self.admin(server).connect() as conn:
            query = sa.text("SELECT 1 FROM pg_database WHERE datname = :d")
            return conn.execute(query, {"d": database}).first() is not None

    def exists(self, main: Connection, location: Location) -> bool:
        return self.database_exists(self.server_of(location), self._database(location))

    @contextmanager
    def storage(
        self, main: Connection, tenant: str, location: Location, *, create: bool = False
    ) -> Iterator[Connection]:
        server, database = self.server_of(location), self._database(location)
        if not create:
            with self.engine(location).begin() as conn:
                yield prepared(conn, tenant, location.schema)
            return
        # One creator per server at a time: CREATE DATABASE ... TEMPLATE needs the template
        # free of other sessions, and the template may be rebuilt. Held until ``main`` ends.
        registry.lock_tenants(main, [creator_lock(server)])
        from_template = self._create_database(server, database)
        try:
            with self.engine(location).begin() as conn:
                if from_template:
                    rename_schema(conn, TEMPLATE_SCHEMA, location.schema)
                else:
                    conn.execute(CreateSchema(location.schema))
                yield prepared(conn, tenant, location.schema)
        except BaseException:
            self.drop_database(server, database)
            raise
        # The registry row is written on ``main`` after this: if that fails, drop the database.
        event.listen(main, "rollback", lambda _conn: self.drop_database(server, database))

    def _create_database(self, server: str, database: str) -> bool:
        """CREATE DATABASE (from the template when enabled); returns whether it was used."""
        template = self._ensure_template(server) if self.template else None
        sql = f"CREATE DATABASE {quote(database)}"
        if template is not None:
            sql += f" TEMPLATE {quote(template)} STRATEGY WAL_LOG"
        with self.admin(server).connect() as conn:
            conn.exec_driver_sql(sql)
        log.info("created database %s on server %s", database, server)
        return template is not None

    def drop_database(self, server: str, database: str) -> None:
        """Forget the engine and drop ``database`` (terminating its sessions)."""
        self.engines.discard(server, database)
        with self.admin(server).connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(database)} WITH (FORCE)")
        log.info("dropped database %s on server %s", database, server)

    def terminate(self, server: str, database: str) -> None:
        """End every other session connected to ``database``."""
        with self.admin(server).connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            )

    def drop(self, main: Connection, location: Location) -> None:
        self.drop_database(self.server_of(location), self._database(location))

    def rename(
        self,
        main: Connection,
        old: Location,
        new: Location,
        step: Callable[[str], None] | None = None,
    ) -> None:
        """Rename the database, then the schema in it; ``step`` is told of each step done.

        Resumes a rename that stopped part-way: the database already renamed, still refusing
        connections, or holding the schema under its old name.
        """
        server, before, after = self.server_of(old), self._database(old), self._database(new)
        done = step or (lambda _step: None)
        self.engines.discard(server, before)
        if self.database_exists(server, before):
            if self.database_exists(server, after):
                raise TenantExists(f"cannot rename database {before!r}: {after!r} exists")
            with self.admin(server).connect() as conn:
                conn.exec_driver_sql(f"ALTER DATABASE {quote(before)} ALLOW_CONNECTIONS false")
                done("connections refused")
                try:
                    self.terminate(server, before)
                    conn.exec_driver_sql(
                        f"ALTER DATABASE {quote(before)} RENAME TO {quote(after)}"
                    )
                    done("database renamed")
                finally:
                    name = after if self.database_exists(server, after) else before
                    self.allow_connections(server, name)
        elif self.database_exists(server, after):
            self.allow_connections(server, after)  # a killed rename may have left it refusing
        else:
            raise UnknownTenant(before, f"neither database {before!r} nor {after!r} exists")
        with self.engine(new).begin() as conn:
            if old.schema != new.schema and schema_exists(conn, old.schema):
                rename_schema(conn, old.schema, new.schema)
        done("schema renamed")

    def allow_connections(self, server: str, database: str) -> None:
        """``ALTER DATABASE ... ALLOW_CONNECTIONS true`` (undoes a killed rename's refusal)."""
        with self.admin(server).connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {quote(database)} ALLOW_CONNECTIONS true")

    def schemas_in(self, location: Location) -> list[str]:
        """The schemas of ``location``'s database that are named like a tenant's (or the
        template's), whatever ``location.schema`` says."""
        query = sa.text(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :p) OR nspname = :t "
            "ORDER BY nspname"
        )
        with self.engine(location).connect() as conn:
            return list(conn.scalars(query, {"p": self.prefix, "t": TEMPLATE_SCHEMA}))

    # -- template ------------------------------------------------------------------------

    def template_name(self) -> str:
        """The template database of this Tenancy (one per main database and prefix)."""
        key = f"{self.main.url.database}/{self.prefix}".encode()
        return f"tenantry_template_{zlib.crc32(key):08x}"

    def _ensure_template(self, server: str) -> str | None:
        """The template database on ``server`` at the stream's head, rebuilt if stale.

        The head it was built at is kept in the database's comment. ``None`` without a stream.
        """
        stream = self.template_stream
        if stream is None:
            return None
        name, mark = self.template_name(), template_mark(stream.head)
        with self.admin(server).connect() as conn:
            comment = conn.execute(
                sa.text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :d"
                ),
                {"d": name},
            ).first()
            if comment is not None and comment[0] == mark:
                return name
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
        builder = sa.create_engine(self.servers[server].set(database=name), poolclass=NullPool)
        try:
            with builder.begin() as conn:
                conn.execute(CreateSchema(TEMPLATE_SCHEMA))
                stream.upgrade(prepared(conn, "__template__", TEMPLATE_SCHEMA), TEMPLATE_SCHEMA)
        except BaseException:  # a failed migration leaves no half-built template behind
            builder.dispose()
            self.drop_database(server, name)
            raise
        finally:
            builder.dispose()
        with self.admin(server).connect() as conn:
            literal = "'" + mark.replace("'", "''") + "'"
            conn.exec_driver_sql(f"COMMENT ON DATABASE {quote(name)} IS {literal}")
        log.info("built template database %s on server %s at %s", name, server, stream.head)
        return name

    def drop_templates(self) -> None:
        """Drop the template database on every server."""
        for server in self.servers:
            with self.admin(server).connect() as conn:
                conn.exec_driver_sql(
                    f"DROP DATABASE IF EXISTS {quote(self.template_name())} WITH (FORCE)"
                )

"""The doctor's survey of storage: what exists on every server, registered or not."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..core import Core
from ..core.intents import Intent
from ..core.registry import Location, TenantInfo
from ..errors import TenantryError
from ..names import quote
from ..relocation import proof
from ..strategies.database import DatabaseStrategy
from .findings import (
    Finding,
    Problem,
    database_place,
    known_revision,
    storage_place,
)
from .leftovers import Leftover, Leftovers, first_line, place_of, tenant_of


class Survey:
    """What one Tenancy's servers hold, and the state an examination gathers."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._orphans: dict[str, Location] = {}  # orphan storage by subject (examine)
        self._down: set[str] = set()  # servers that cannot be reached (examine)
        self._shut: set[tuple[str, str | None]] = set()  # databases refusing connections
        self._leftovers: dict[Finding, Leftover] = {}  # what each leftover finding is
        self._helper = Leftovers(core, {})
        self._tables: dict[str, set[str]] = {}  # tenant -> its tables (examine)
        self._busy: set[tuple[str | None, str | None]] = set()  # databases of pending intents


    def _stored(self, conn: Connection) -> list[Location] | None:
        """Storage that looks like a tenant's; ``None`` when the strategy cannot list it.

        Database strategy: the databases with the prefix on every configured server (the
        prefix is the Tenancy's on a server: tenant database names would collide otherwise).
        """
        t = self.core
        kind = t.strategy.kind
        if kind not in ("schema", "database", "hybrid"):  # hybrid: schemas and databases
            return None
        found: list[Location] = []
        if kind != "database":
            names = conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars()
            found += [Location(schema=n) for n in names if tenant_of(n, t.prefix) is not None]
        if isinstance(t.strategy, DatabaseStrategy):
            found += self._stored_databases(t.strategy)
        return found

    def _stored_databases(self, strategy: DatabaseStrategy) -> list[Location]:
        found = []
        for server in strategy.servers:
            if server in self._down:
                continue
            with strategy.admin(server).connect() as admin:
                names = admin.execute(sa.text("SELECT datname FROM pg_database")).scalars()
                found += [
                    Location(schema=n, database=n, server=server)
                    for n in names if tenant_of(n, self.core.prefix) is not None
                ]
        return found

    def _stored_revision(self, conn: Connection, location: Location) -> str | None:
        stream = self.core.tenant_stream
        assert stream is not None
        if location.database is None:
            with conn.begin_nested():
                return stream.current(conn, location.schema)
        name = location.schema
        with self.core.strategy.storage(conn, name, location) as tenant:
            return stream.current(tenant, location.schema)

    def _orphan_storage(
        self, conn: Connection, infos: list[TenantInfo], pending: list[Intent]
    ) -> list[Finding]:
        stored = self._stored(conn)
        if stored is None:
            return []
        known = {storage_place(i.location) for i in infos}
        main_database = self.core.engine.url.database
        known |= {storage_place(Location(schema=loc.schema)) for i in pending for loc in (i.dest,)
                  if loc is not None and loc.database == main_database}  # a demotion's copy
        registered = {i.name: i for i in infos}
        found = []
        stream = self.core.tenant_stream
        for location in stored:
            if storage_place(location) in known or self._unreachable(location) or (
                location.database is not None and database_place(location) in self._busy
            ):
                continue
            name = tenant_of(location.database or location.schema, self.core.prefix)
            location = self._inner_schema(location)
            self._orphans[location.database or location.schema] = location
            subject = location.database or location.schema
            what = "database" if location.database is not None else "schema"
            if name in registered:
                continue  # a copy of a tenant registered elsewhere: a leftover (UNREGISTERED_COPY)
            revision = None
            if stream is not None:
                try:
                    revision = self._stored_revision(conn, location)
                except (sa.exc.DBAPIError, TenantryError) as exc:
                    found.append(Finding(Problem.UNREADABLE, name, location.schema,
                                         f"not registered, and cannot be examined: "
                                         f"{first_line(exc)}: needs you"))
                    continue
            if revision is not None and stream is not None and known_revision(stream, revision):
                found.append(Finding(
                    Problem.ORPHAN_STORAGE, name, subject,
                    f"not registered; its version table says {revision}",
                    f"register it as tenant {name!r}",
                ))
            elif self._empty(conn, location):
                found.append(Finding(
                    Problem.ORPHAN_STORAGE, name, subject,
                    "not registered, not at a known revision, and holds no rows",
                    f"drop the {what} (nothing in it)", destructive=True,
                ))
            else:
                found.append(self._needs_you(
                    name, location, "not registered and not at a known revision"))
        return found

    def _needs_you(self, name: str | None, location: Location, why: str) -> Finding:
        """Storage doctor may not drop (no proof it is a duplicate or empty): the command."""
        if location.database is not None:
            server = location.server or "main"
            command = f"DROP DATABASE {quote(location.database)} WITH (FORCE)  -- server {server}"
        else:
            command = f"DROP SCHEMA {quote(location.schema)} CASCADE"
        return Finding(
            Problem.ORPHAN_STORAGE, name, location.database or location.schema,
            f"{why}: needs you. Register it or keep it; to drop it, after checking: {command}",
        )

    def _inner_schema(self, location: Location) -> Location:
        """An orphan database's location with the schema it really holds (a killed rename
        leaves the old schema name in the new database)."""
        strategy = self.core.strategy
        if location.database is None or not isinstance(strategy, DatabaseStrategy):
            return location
        try:
            schemas = strategy.schemas_in(location)
        except sa.exc.OperationalError:  # refusing connections: reported as it is
            return location
        if location.schema in schemas or len(schemas) != 1:
            return location
        return Location(schema=schemas[0], database=location.database, server=location.server)

    def _fingerprint(self, conn: Connection, location: Location) -> proof.Fingerprint | None:
        """``location``'s fingerprint; ``None`` when it cannot be read."""
        try:
            if location.database is None:
                with conn.begin_nested():
                    return proof.fingerprint(conn, location.schema)
            with self.core.strategy.engine(location).connect() as tenant:
                return proof.fingerprint(tenant, location.schema)
        except sa.exc.SQLAlchemyError:
            return None

    def _empty(self, conn: Connection, location: Location) -> bool:
        """Whether ``location`` holds no rows (the version table aside)."""
        stream = self.core.tenant_stream
        ignore = frozenset(
            {f"{location.schema}.{stream.version_table}"} if stream is not None else ()
        )
        found = self._fingerprint(conn, location)
        return found is not None and proof.rows(found, ignore=ignore) == 0

    def _servers(self) -> dict[str, Engine]:
        """An AUTOCOMMIT engine on every server of the Tenancy."""
        strategy = self.core.strategy
        if isinstance(strategy, DatabaseStrategy):
            return {server: strategy.admin(server) for server in strategy.servers}
        return {"main": self.core.engine.execution_options(isolation_level="AUTOCOMMIT")}

    def _orphan_roles(self, conn: Connection, infos: list[TenantInfo]) -> list[Finding]:
        roles = self.core.strict_roles
        if roles is None:
            return []
        expected = {roles.role(conn, i.location) for i in infos}
        stored = self._stored(conn) or []
        expected |= {roles.role(conn, loc) for loc in stored}  # orphan schemas keep theirs
        return [
            Finding(Problem.ORPHAN_ROLE, None, role, "a tenant role without a tenant",
                    "drop the role (it owns nothing)")
            for role in roles.roles(conn) if role not in expected
        ]

    def _unreachable(self, location: Location) -> bool:
        """Whether ``location`` is on a server that is down or a database refusing
        connections (both reported on their own)."""
        if location.database is None:
            return False
        server, database = place_of(location)
        return server in self._down or (server, database) in self._shut

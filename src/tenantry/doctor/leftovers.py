"""Leftovers of interrupted operations: found, and removed when that cannot lose data.

What a killed operation can leave behind:

* an online move, promotion or demotion: its subscription, slot, publication and marker tables
  (all named :func:`~tenantry.relocation.replication.move_name`);
* a move, promotion or demotion: the copy it was making, never registered;
* a rename: a tenant database that refuses connections (``ALLOW_CONNECTIONS false``);
* a template build: a template database never finished (no head in its comment). A finished
  template on a server without tenants is a cache, not a leftover: the next tenant created
  there uses it.

:meth:`Leftovers.find` lists them, skipping tenants whose lock a running operation holds.
:meth:`Leftovers.fix` removes one only when that provably loses nothing: tenantry's own
replication objects and template databases, an unregistered copy that holds no rows or the same
rows as the registered tenant (count and checksum of every table); and re-allows connections to
a database the registry says is a tenant's. Anything else has an empty ``fix``: it needs a
person, and its detail says what to run.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import DropSchema

from ..core import Core, registry
from ..core.registry import Location, TenantInfo
from ..errors import InvalidTenantName, TenantryError
from ..names import quote, validate_name
from ..relocation import proof, replication
from ..strategies.database import MAIN_SERVER, DatabaseStrategy, creator_lock, template_mark

log = logging.getLogger("tenantry.doctor")

#: ``(server, database)``; the main database is ``("main", None)``.
Place = tuple[str, str | None]


class Kind(enum.StrEnum):
    """What an interrupted operation left (the values are doctor's problem names)."""

    REPLICATION = "replication_leftover"
    CONNECTIONS_DISALLOWED = "connections_disallowed"
    TEMPLATE = "template_leftover"
    COPY = "unregistered_copy"


@dataclass(frozen=True)
class Leftover:
    """One leftover; ``fix`` empty: it needs a person (``detail`` says what to run)."""

    kind: Kind
    tenant: str | None
    subject: str
    detail: str
    fix: str
    server: str = MAIN_SERVER
    location: Location | None = None  # COPY: the copy
    places: tuple[Place, ...] = ()  # REPLICATION: databases holding publications or markers


def tenant_of(name: str, prefix: str) -> str | None:
    """The tenant a schema or database called ``name`` would belong to, if any."""
    if not name.startswith(prefix):
        return None
    try:
        return validate_name(name[len(prefix):], prefix)
    except InvalidTenantName:
        return None


def place_of(location: Location) -> Place:
    return (location.server or MAIN_SERVER, location.database)


class Leftovers:
    """Finds and fixes the leftovers of one Tenancy on its reachable ``servers`` (AUTOCOMMIT
    engines by server name)."""

    def __init__(self, core: Core, servers: Mapping[str, Engine]) -> None:
        self.core = core
        self.servers = dict(servers)

    # -- finding -------------------------------------------------------------------------

    def find(
        self, conn: Connection, infos: list[TenantInfo], stored: list[Location]
    ) -> list[Leftover]:
        """Every leftover; ``stored`` is the storage that looks like a tenant's."""
        closed = self._closed(conn, infos)
        shut = {(c.server, c.subject) for c in closed}
        return [
            *self._replication(conn, infos, shut),
            *closed,
            *self._templates(conn),
            *self._copies(conn, infos, stored, shut),
        ]

    def _idle(self, conn: Connection, lock: str) -> bool:
        """Whether no running operation holds ``lock`` (taken until ``conn``'s transaction
        ends when free)."""
        with conn.begin_nested():
            return registry.try_lock_tenant(conn, lock)

    def _closed(self, conn: Connection, infos: list[TenantInfo]) -> list[Leftover]:
        """Tenant databases (by their prefix) refusing connections on a reachable server."""
        owners = {place_of(i.location): i.name for i in infos if i.location.database}
        found = []
        for server, engine in self.servers.items():
            with engine.connect() as admin:
                names = admin.execute(sa.text(
                    "SELECT datname FROM pg_database WHERE NOT datallowconn ORDER BY 1"
                )).scalars().all()
            for name in names:
                tenant = tenant_of(name, self.core.prefix)
                if tenant is None or not self._idle(conn, tenant):
                    continue  # not a tenant's, or a rename is running
                allow = f"ALTER DATABASE {quote(name)} ALLOW_CONNECTIONS true"
                owner = owners.get((server, name))
                if owner is not None:
                    found.append(Leftover(
                        Kind.CONNECTIONS_DISALLOWED, owner, name,
                        f"database {name} on server {server}, tenant {owner!r}'s, refuses "
                        "connections (left by an interrupted rename?)",
                        f"allow connections again ({allow})", server,
                    ))
                else:
                    found.append(Leftover(
                        Kind.CONNECTIONS_DISALLOWED, tenant, name,
                        f"database {name} on server {server} refuses connections and is no "
                        f"registered tenant's: needs you (to look inside, run `{allow}` on "
                        f"server {server})", "", server,
                    ))
        return found

    def _replication(
        self, conn: Connection, infos: list[TenantInfo], shut: set[tuple[str, str]]
    ) -> list[Leftover]:
        """Subscriptions and slots on every server; publications and marker tables in the
        main database and every reachable tenant database."""
        seen: dict[str, list[str]] = {}
        places: dict[str, set[Place]] = {}
        for server, engine in self.servers.items():
            with engine.connect() as server_conn:
                for name, what in replication.leftovers(server_conn).items():
                    seen.setdefault(name, []).extend(f"{w} on server {server}" for w in what)
        databases = {place_of(i.location): i for i in infos if i.location.database}
        for (server, database), info in [((MAIN_SERVER, None), None), *databases.items()]:
            if server not in self.servers or (server, database or "") in shut:
                continue
            try:
                with self._reading(info) as db:
                    local = replication.local_leftovers(db)
            except (sa.exc.DBAPIError, TenantryError):  # doctor reports it as unreadable
                continue
            where = f"database {database}" if database else "the main database"
            for name, what in local.items():
                seen.setdefault(name, []).extend(f"{w} in {where}" for w in what)
                places.setdefault(name, set()).add((server, database))
        owners = {replication.move_name(i.schema): i.name for i in infos}
        found = []
        for name, what in sorted(seen.items()):
            tenant = owners.get(name)
            if tenant is not None and not self._idle(conn, tenant):
                continue  # the move is running
            found.append(Leftover(
                Kind.REPLICATION, tenant, name,
                f"left by an interrupted online move: {', '.join(what)} (a slot makes the "
                "server keep its WAL)",
                "drop them (tenantry's own objects: no tenant data)",
                places=tuple(sorted(places.get(name, ()), key=str)),
            ))
        return found

    def _templates(self, conn: Connection) -> list[Leftover]:
        """Template databases whose build never finished."""
        strategy = self.core.strategy
        if not isinstance(strategy, DatabaseStrategy):
            return []
        name = strategy.template_name()
        found = []
        for server, engine in self.servers.items():
            with engine.connect() as admin:
                row = admin.execute(sa.text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :d"
                ), {"d": name}).first()
            if row is None or not self._idle(conn, creator_lock(server)):
                continue  # none, or a tenant (or the template) is being created there
            if (row[0] or "").startswith(template_mark("")):
                continue  # finished (one built at an older head is rebuilt on the next create)
            found.append(Leftover(
                Kind.TEMPLATE, None, name, f"template database {name} on server {server}: "
                "never finished (its build was interrupted)",
                "drop it (tenantry rebuilds it from the migrations when it next creates a "
                "tenant there)", server,
            ))
        return found

    def _copies(
        self, conn: Connection, infos: list[TenantInfo], stored: list[Location],
        shut: set[tuple[str, str]],
    ) -> list[Leftover]:
        """Storage of a registered tenant at a place the registry does not name."""
        registered = {i.name: i for i in infos}
        known = {(place_of(i.location), i.location.schema) for i in infos}
        found = []
        for location in stored:
            tenant = tenant_of(location.schema, self.core.prefix)
            info = registered.get(tenant) if tenant is not None else None
            server = place_of(location)[0]
            if (info is None or (place_of(location), location.schema) in known
                    or server not in self.servers
                    or (server, location.database or "") in shut
                    or not self._idle(conn, info.name)):
                continue
            what = f"database {location.database} on server {server}" if location.database \
                else f"schema {location.schema} of the main database"
            try:
                proof, differs = self._proof(info, location)
            except sa.exc.DBAPIError as exc:
                proof, differs = None, f"it cannot be read ({first_line(exc)})"
            drop = (f"DROP DATABASE {quote(location.database)} WITH (FORCE)"
                    if location.database else f"DROP SCHEMA {quote(location.schema)} CASCADE")
            head = (f"{what}: a copy of tenant {info.name!r}, which is registered elsewhere "
                    "(left by an interrupted move, promotion or demotion)")
            if proof is not None:
                found.append(Leftover(
                    Kind.COPY, info.name, location.schema, f"{head}; it {proof}",
                    f"drop the copy ({drop})", server, location,
                ))
            else:
                found.append(Leftover(
                    Kind.COPY, info.name, location.schema,
                    f"{head}; {differs}: needs you (keep what you need, then `{drop}`)",
                    "", server, location,
                ))
        return found

    def _proof(self, info: TenantInfo, copy: Location) -> tuple[str | None, str]:
        """Why dropping ``copy`` loses nothing (``None``: no proof), and what differs."""
        with self._connect(place_of(copy)) as conn:
            copy_sums = proof.fingerprint(conn, copy.schema,
                                          whole_database=copy.database is not None)
        if not proof.rows(copy_sums):
            return "holds no rows", ""
        with self._connect(place_of(info.location)) as conn:
            kept = proof.fingerprint(conn, info.location.schema)
        tables = proof.differing(copy_sums, kept)
        if not tables:
            return "holds the same rows as the registered tenant (count and checksum of " \
                "every table)", ""
        return None, f"its rows differ from the registered tenant's in {', '.join(tables)}"

    @contextmanager
    def _reading(self, info: TenantInfo | None) -> Iterator[Connection]:
        """A connection to the main database (``info`` ``None``) or to a database tenant's
        (from the Tenancy's pooled engines)."""
        if info is None:
            with self.core.engine.connect() as main:
                yield main
            return
        strategy = self.core.strategy
        assert isinstance(strategy, DatabaseStrategy)  # a tenant with a database
        with strategy.engine(info.location).connect() as tenant:
            yield tenant

    @contextmanager
    def _connect(self, place: Place) -> Iterator[Connection]:
        """An AUTOCOMMIT connection to the main database or to a database on a server."""
        server, database = place
        if database is None:
            with self.core.engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        url = self.servers[server].url.set(database=database)
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    # -- fixing --------------------------------------------------------------------------

    def fix(self, leftover: Leftover) -> None:
        """Remove ``leftover`` (re-checked under the tenant's lock) if its ``fix`` says how."""
        if not leftover.fix:
            return
        with self.core.engine.begin() as main:
            if leftover.tenant is not None:
                registry.lock_tenants(main, [leftover.tenant])
            if leftover.kind is Kind.REPLICATION:
                self._drop_replication(leftover)
            elif leftover.kind is Kind.CONNECTIONS_DISALLOWED:
                self._allow(main, leftover)
            elif leftover.kind is Kind.TEMPLATE:
                registry.lock_tenants(main, [creator_lock(leftover.server)])
                self._drop_template(leftover)
            else:
                self._drop_copy(main, leftover)

    def _drop_replication(self, leftover: Leftover) -> None:
        replication.drop_leftovers(list(self.servers.values()), leftover.subject)
        for place in leftover.places:
            with self._connect(place) as conn:
                replication.drop_local(conn, leftover.subject)
        log.info("doctor dropped the replication objects %s", leftover.subject)

    def _allow(self, main: Connection, leftover: Leftover) -> None:
        assert leftover.tenant is not None
        info = registry.get(main, leftover.tenant)
        if info is None or place_of(info.location) != (leftover.server, leftover.subject):
            return  # changed meanwhile
        with self.servers[leftover.server].connect() as admin:
            admin.exec_driver_sql(
                f"ALTER DATABASE {quote(leftover.subject)} ALLOW_CONNECTIONS true"
            )
        log.info("doctor allowed connections to database %s again", leftover.subject)

    def _drop_template(self, leftover: Leftover) -> None:
        with self.servers[leftover.server].connect() as admin:
            admin.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(leftover.subject)} WITH (FORCE)")
        log.info("doctor dropped template database %s on server %s", leftover.subject,
                 leftover.server)

    def _drop_copy(self, main: Connection, leftover: Leftover) -> None:
        copy = leftover.location
        assert leftover.tenant is not None and copy is not None
        info = registry.get(main, leftover.tenant)
        if info is None or place_of(info.location) == place_of(copy):
            return  # changed meanwhile
        proof, _ = self._proof(info, copy)
        if proof is None:
            log.warning("doctor kept the copy %s: its rows changed since examined", copy)
            return
        strategy = self.core.strategy
        if copy.database is not None:
            assert isinstance(strategy, DatabaseStrategy)
            strategy.drop_database(leftover.server, copy.database)
        else:
            main.execute(DropSchema(copy.schema, cascade=True, if_exists=True))
        log.warning("doctor dropped %s, a copy of tenant %s that %s", copy, leftover.tenant,
                    proof, extra={"tenant": leftover.tenant})


def first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]

"""Adopting existing storage: registering schemas or databases that tenantry did not create.

An existing deployment's tenants (schemas named by UUIDs, databases of any name) become
tenants where they are: :func:`adopt` registers one under a valid tenant name, at the revision
its version table records; :func:`adopt_all` registers every unregistered schema (or database)
whose name matches a pattern. Storage names are looked up in the catalogs as bound values and
quoted wherever they reach SQL; tenant names follow the usual rules (:mod:`tenantry.names`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core import Core, HasCore, TenantWork, core_of, registry
from ..core.registry import Location, TenantInfo
from ..errors import (
    ConfigurationError,
    InvalidTenantName,
    MigrationError,
    StorageNotFound,
    StorageRegistered,
    TenantExists,
    TenantryError,
    UnversionedStorage,
    WrongTenantKind,
)
from ..migrations.stream import is_revision_name
from ..models import SHARED_SCHEMA
from ..names import MAX_IDENTIFIER_BYTES, validate_name
from ..relocation.shapes import tables_in
from ..strategies.base import schema_exists
from ..strategies.database import MAIN_SERVER, DatabaseStrategy
from . import lifecycle
from .template import TEMPLATE_SCHEMA

log = logging.getLogger("tenantry")

#: Schemas of the main database that are never a tenant's.
NOT_TENANT_SCHEMAS = frozenset({SHARED_SCHEMA, "information_schema", TEMPLATE_SCHEMA})
_NOT_NAME = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True)
class Adoption:
    """One schema or database found by :func:`adopt_all`, and what became of it."""

    storage: str  # the schema's (or database's) name
    name: str | None  # the tenant name it gets (None: none could be derived)
    note: str | None = None  # how the name was derived, when not by dropping a prefix
    problem: str | None = None  # why it is left out (a dry run: why it would be)
    info: TenantInfo | None = None  # its registry row, once adopted

    @property
    def adopted(self) -> bool:
        return self.info is not None


def storage_name(value: object, what: str) -> str:
    """``value`` if it can be the name of an existing schema or database, else raise."""
    if not isinstance(value, str) or not value:
        raise InvalidTenantName(f"{what} name must be a non-empty string, not {value!r}")
    if "\x00" in value or len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise InvalidTenantName(f"invalid {what} name {value!r}: not a PostgreSQL identifier")
    return value


def adopt(
    owner: Core | HasCore,
    name: str,
    schema: str | None = None,
    database: str | None = None,
    server: str | None = None,
    rename: bool = False,
) -> TenantInfo:
    """Register existing storage as tenant ``name`` (:meth:`tenantry.Tenancy.adopt_tenant`).

    The storage is ``schema`` (a schema of the main database: any existing name, a UUID with
    hyphens too), or ``database`` on ``server`` (default ``main``), its tables in ``schema``
    (default: a schema named as the database if there is one, else ``public``). The tenant is
    registered ready, at the tenant stream's revision that its version table records (see
    :func:`recorded_revision`), and in strict mode its role gets the storage. Idempotent for the
    same name and storage. ``rename=True`` then gives the storage its conventional name (prefix
    + name) as :func:`~tenantry.provisioning.lifecycle.rename` does (resumable likewise).

    Raises :class:`StorageNotFound` (no such storage), :class:`StorageRegistered` (another
    tenant's), :class:`TenantExists` (``name`` registered elsewhere), or
    :class:`UnversionedStorage` (tables but no revision).
    """
    core = core_of(owner)
    validate_name(name, core.prefix)
    wanted = Location(schema or "", database, (server or MAIN_SERVER) if database else None)
    try:
        location = existing_location(core, schema, database, server)
    except StorageNotFound:  # adopted and renamed already (or part-way: the rename resumes)
        info = core.store.find(name)
        if not rename or info is None or not adopted_from(core, info, wanted, rename):
            raise
        return lifecycle.rename(core, name, name)
    if core.strict_roles is not None:
        core.strict_roles.ensure_group()
    # the storage's lock too: two names cannot adopt one schema at once
    with core.store.work([name, _storage_lock(location)]) as work:
        info = work.row(name)
        if info is None:
            work.unfinished()  # another operation on the name stopped part-way: refuse
            claimed = claimant(work.main, location)
            if claimed is not None:
                raise StorageRegistered(
                    f"{describe(location)} is registered already, as tenant {claimed!r}"
                )
            info = register(core, work, name, location)
            log.info("adopted %s as tenant %s (revision %s)", describe(location), name,
                     info.revision, extra={"tenant": name})
        elif not adopted_from(core, info, location, rename):
            raise TenantExists(
                f"tenant {name!r} is registered already, in {describe(info.location)}"
            )
    if rename:  # its own unit of work, resumable as any rename (intent, doctor --fix)
        return lifecycle.rename(core, name, name)
    return info


def adopted_from(core: Core, info: TenantInfo, wanted: Location, renamed: bool) -> bool:
    """Whether tenant ``info`` is registered in the storage ``wanted`` (its schema ``""``: any
    of its database) or, if ``renamed``, in the conventional storage it was renamed to."""
    here = info.location
    if renamed and same_storage(here, core.strategy.renamed(wanted, info.name)):
        return True
    if wanted.database is not None and wanted.schema == "":
        wanted = replace(wanted, schema=here.schema)
    return same_storage(here, wanted)


def existing_location(
    core: Core, schema: str | None, database: str | None, server: str | None
) -> Location:
    """Where the storage named by ``schema``/``database``/``server`` is; raises if missing."""
    if database is None:
        if server is not None:
            raise ConfigurationError("server= names the server of a database: pass database=")
        if core.strategy.kind == DatabaseStrategy.kind:
            raise WrongTenantKind("database-strategy tenants are databases: pass database=")
        if schema is None:
            raise ConfigurationError("pass schema= (an existing schema) or database=")
        schema = _tenant_schema(schema)
        with core.engine.connect() as conn:
            if not schema_exists(conn, schema):
                raise StorageNotFound(f"schema {schema!r} does not exist in the main database")
        return Location(schema=schema)
    strategy = core.database_strategy()
    database, server = storage_name(database, "database"), server or MAIN_SERVER
    strategy.admin(server)  # UnknownServer if it is not configured
    if database in _not_tenant_databases(core, strategy, server):
        raise InvalidTenantName(f"database {database!r} cannot be a tenant's")
    if not strategy.database_exists(server, database):
        raise StorageNotFound(f"database {database!r} does not exist on server {server!r}")
    location = Location(schema=SHARED_SCHEMA, database=database, server=server)
    with strategy.engine(location).connect() as conn:
        if schema is None:  # tenantry's layout (a schema named as the database), else public
            schema = database if schema_exists(conn, database) else SHARED_SCHEMA
        elif not schema_exists(conn, _tenant_schema(schema, own_database=True)):
            raise StorageNotFound(f"schema {schema!r} does not exist in database {database!r}")
    return replace(location, schema=schema)


def _tenant_schema(schema: str, own_database: bool = False) -> str:
    """``schema`` checked as a name and as the place of a tenant's tables."""
    schema = storage_name(schema, "schema")
    shared = schema in NOT_TENANT_SCHEMAS and not (own_database and schema == SHARED_SCHEMA)
    if shared or schema.startswith("pg_") or schema == "information_schema":
        raise InvalidTenantName(f"schema {schema!r} cannot be a tenant's")
    return schema


def _not_tenant_databases(core: Core, strategy: DatabaseStrategy, server: str) -> set[str]:
    """Databases of ``server`` that are never a tenant's: PostgreSQL's templates, the main
    database, the server's maintenance database and tenantry's template."""
    found = {"template0", "template1", strategy.template_name()}
    for url in (core.engine.url, strategy.servers[server]):
        if url.database:
            found.add(url.database)
    return found


def _storage_lock(location: Location) -> str:
    server, schema, database = place(location)
    return f"__tenantry_storage__:{server}/{database}/{schema}"


def place(location: Location) -> tuple[str | None, str, str | None]:
    """What identifies storage: server (main if unset), schema and database."""
    if location.database is None:
        return (None, location.schema, None)
    return (location.server or MAIN_SERVER, location.schema, location.database)


def same_storage(a: Location, b: Location) -> bool:
    return place(a) == place(b)


def claimant(main: Connection, location: Location) -> str | None:
    """The tenant registered in ``location`` (a database tenant: in its database), if any."""
    t = registry.tenants
    if location.database is None:
        query = sa.select(t.c.name).where(t.c.database.is_(None), t.c.schema == location.schema)
        return main.execute(query).scalar()
    query = sa.select(t.c.name, t.c.server).where(t.c.database == location.database)
    server = location.server or MAIN_SERVER
    return next((n for n, s in main.execute(query) if (s or MAIN_SERVER) == server), None)


def describe(location: Location) -> str:
    if location.database is None:
        return f"schema {location.schema!r}"
    return (f"database {location.database!r} (schema {location.schema!r}) on server "
            f"{location.server or MAIN_SERVER!r}")


def register(core: Core, work: TenantWork, name: str, location: Location) -> TenantInfo:
    """Read the revision of the storage at ``location``, give it to the tenant's role (strict
    mode) and register it as ready, in ``work``'s transaction."""
    with core.strategy.storage(work.main, name, location) as conn:
        revision = recorded_revision(core, conn, location)
        if core.strict_roles is not None:
            core.strict_roles.provision(conn, name, location)
    return work.insert(name, core.kind_of(location), location, revision)


def recorded_revision(core: Core, conn: Connection, location: Location) -> str | None:
    """The tenant-stream revision recorded in the storage's version table.

    ``None`` without a tenant stream, or for storage holding no table at all (migrating it
    builds it from the base). Tables but no version row: :class:`UnversionedStorage`.
    """
    stream = core.tenant_stream
    if stream is None:
        return None
    revision = stream.current(conn, location.schema)
    if revision is None:
        tables = (tables_in(conn, location.schema) or set()) - {stream.version_table}
        if tables:
            raise UnversionedStorage(
                f"{describe(location)} holds tables ({', '.join(sorted(tables)[:5])}) but "
                f"its version table {stream.version_table!r} records no revision: record the "
                "revision its tables are at first (alembic stamp REVISION, with "
                "version_table_schema set to the schema), then adopt it"
            )
        return None
    if not is_revision_name(stream.script, revision):
        raise MigrationError(
            f"{describe(location)} is at revision {revision!r}, which the tenant stream does "
            f"not have (head {stream.head}): is it another application's, or newer code's?"
        )
    return revision


# -- a whole fleet ------------------------------------------------------------------------


def adopt_all(
    owner: Core | HasCore,
    pattern: str = "*",
    *,
    name_from: Callable[[str], str] | None = None,
    strip: str | None = None,
    databases: bool | None = None,
    server: str | None = None,
    rename: bool = False,
    dry_run: bool = False,
) -> list[Adoption]:
    """Adopt every unregistered schema (or database) whose name matches the glob ``pattern``.

    Tenant names come from ``name_from(storage_name)``, or else from the storage name without
    ``strip`` (default: the Tenancy's prefix), lowercased with any other character than
    ``a-z0-9_`` made ``_`` (an :class:`Adoption`'s ``note`` says so). ``databases`` (default:
    with the database strategy) looks for databases on ``server`` instead of schemas of the
    main database. Storage that cannot be adopted (an invalid or taken name, no revision...)
    is listed with its ``problem`` and left alone; the others are adopted one by one, each as
    :func:`adopt` does (``dry_run``: only listed). Returns one :class:`Adoption` each.
    """
    core = core_of(owner)
    found = plan(core, pattern, name_from=name_from, strip=strip, databases=databases,
                 server=server)
    if dry_run:
        return found
    done = []
    for item in found:
        if item.problem is not None or item.name is None:
            done.append(item)
            continue
        where = ({"database": item.storage, "server": server} if _databases(core, databases)
                 else {"schema": item.storage})
        try:
            info = adopt(core, item.name, rename=rename, **where)
        except TenantryError as exc:
            done.append(replace(item, problem=str(exc)))
        else:
            done.append(replace(item, info=info))
    return done


def plan(
    core: Core,
    pattern: str,
    *,
    name_from: Callable[[str], str] | None = None,
    strip: str | None = None,
    databases: bool | None = None,
    server: str | None = None,
) -> list[Adoption]:
    """What :func:`adopt_all` would adopt, and what it would leave out and why."""
    infos = core.store.all()
    if _databases(core, databases):
        candidates = _unregistered_databases(core, infos, server or MAIN_SERVER)
    else:
        if server is not None:
            raise ConfigurationError("server= applies to databases (databases=True)")
        if core.strategy.kind == DatabaseStrategy.kind:
            raise WrongTenantKind("database-strategy tenants are databases: databases=True")
        candidates = _unregistered_schemas(core, infos)
    taken = {i.name: f"tenant {i.name!r} is registered already" for i in infos}
    found = []
    for storage in sorted(s for s in candidates if fnmatchcase(s, pattern)):
        if name_from is not None:
            name, note = name_from(storage), None
        else:
            name, note = derive_name(storage, core.prefix if strip is None else strip)
        problem = taken.get(name)
        if problem is None:
            try:
                validate_name(name, core.prefix)
            except InvalidTenantName as exc:
                problem = str(exc)
            else:
                taken[name] = f"tenant name {name!r} is {storage!r}'s too"
        found.append(Adoption(storage, name, note, problem))
    return found


def derive_name(storage: str, strip: str) -> tuple[str, str | None]:
    """A tenant name for ``storage`` (without the prefix ``strip``), and a note when it is not
    that stripped name itself."""
    stripped = storage.removeprefix(strip)
    name = _NOT_NAME.sub("_", stripped.lower())
    if name == stripped:
        return name, None
    return name, (f"{stripped!r} is not a valid tenant name: named {name!r} (lowercased, "
                  "other characters than a-z, 0-9 and _ made _)")


def _databases(core: Core, databases: bool | None) -> bool:
    return databases if databases is not None else core.strategy.kind == DatabaseStrategy.kind


def _unregistered_schemas(core: Core, infos: list[TenantInfo]) -> list[str]:
    registered = {i.schema for i in infos if i.location.database is None}
    with core.engine.connect() as conn:
        names = conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars().all()
    return [n for n in names if n not in registered and n not in NOT_TENANT_SCHEMAS
            and not n.startswith("pg_") and n != "information_schema"]


def _unregistered_databases(core: Core, infos: list[TenantInfo], server: str) -> list[str]:
    strategy = core.database_strategy()
    registered = {i.location.database for i in infos if i.location.database is not None
                  and (i.location.server or MAIN_SERVER) == server}
    skip = _not_tenant_databases(core, strategy, server)
    with strategy.admin(server).connect() as conn:
        query = sa.text("SELECT datname FROM pg_database WHERE datallowconn")
        names = conn.execute(query).scalars().all()
    return [n for n in names if n not in registered and n not in skip]

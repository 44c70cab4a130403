"""Strict mode: one PostgreSQL role per tenant, switched to at the start of every transaction.

Each tenant gets a ``NOLOGIN`` role that owns its schema and every object in it. Tenant
sessions run ``SET LOCAL ROLE <tenant role>`` when a transaction begins (engine hooks of
:mod:`tenantry.roleswitch`, driven by the ``tenantry_role`` execution option that routing adds;
AUTOCOMMIT and two-phase connections included), so even
hand-written SQL that names another tenant's schema fails with a permission error, which is
raised as :class:`~tenantry.TenantIsolationError`.

Tenant roles are members of one *group role* per database; shared tables are granted to the
group (:meth:`StrictRoles.grant_shared`), once, not to every tenant. Tenant migrations run as
the tenant role too (``SET LOCAL ROLE``), so what they create is owned by the tenant.

Role names are cluster-wide, so they carry a short hash of the database name:
``tenant_acme_1a2b3c4d`` for schema ``tenant_acme`` of one database.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from . import probe, registry
from .errors import TenantIsolationError, UnknownTenant
from .names import MAX_IDENTIFIER_BYTES, quote
from .registry import Location

log = logging.getLogger("tenantry.strict")

ROLE_OPTION = "tenantry_role"
_DENIED = "42501"  # insufficient_privilege
_NO_SUCH_ROLE = "22023"  # invalid_parameter_value: SET ROLE to a dropped role
_DENIED_FOR = re.compile(r"permission denied for (\w+(?: \w+)?) (\S+)")


def _digest(text: str) -> str:
    return hashlib.blake2s(text.encode(), digest_size=4).hexdigest()


def role_name(database: str, schema: str) -> str:
    """The role of the tenant stored in ``schema`` of ``database`` (fits 63 bytes)."""
    suffix = "_" + _digest(f"{database}/{schema}")
    return schema[: MAX_IDENTIFIER_BYTES - len(suffix)] + suffix


def group_name(database: str) -> str:
    """The group role (all tenants of ``database``) that receives shared-table grants."""
    return f"tenantry_{_digest(database)}_tenants"


def set_role(conn: Connection, role: str) -> None:
    """Switch ``conn`` to ``role`` until the end of the current transaction."""
    conn.exec_driver_sql(f"SET LOCAL ROLE {quote(role)}")


def reset_role(conn: Connection) -> None:
    conn.exec_driver_sql("RESET ROLE")


def role_exists(conn: Connection, role: str) -> bool:
    query = sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r")
    return conn.execute(query, {"r": role}).first() is not None


@dataclass(frozen=True)
class RoleProblem:
    """Something strict mode expects of a tenant that is not so (see :meth:`StrictRoles.check`)."""

    kind: str  # role_missing | not_in_group | not_settable | owner_mismatch
    detail: str


class StrictRoles:
    """Creates, renames, drops and checks tenant roles; routes sessions through them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._database: str | None = None
        self._group_ready = False

    # -- names ---------------------------------------------------------------------------

    def database(self, conn: Connection) -> str:
        """The main database's name (part of every role name)."""
        if self._database is None:
            self._database = conn.execute(sa.text("SELECT current_database()")).scalar_one()
        return self._database

    def role(self, conn: Connection, location: Location) -> str:
        """The role of the tenant at ``location``."""
        return role_name(location.database or self.database(conn), location.schema)

    def group(self, conn: Connection) -> str:
        return group_name(self.database(conn))

    # -- set-up --------------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the group role once, in its own transaction (before any tenant lock)."""
        if self._group_ready:
            return
        with self.engine.begin() as conn:
            group = self.group(conn)
            if not role_exists(conn, group):
                registry.lock_global(conn)
                if not role_exists(conn, group):
                    conn.exec_driver_sql(f"CREATE ROLE {quote(group)} NOLOGIN")
                    log.info("created group role %s", group)
        self._group_ready = True

    def route(self, engine: Engine, conn: Connection, location: Location) -> Engine:
        """``engine`` with the option that makes every transaction switch to the tenant role."""
        return engine.execution_options(**{ROLE_OPTION: self.role(conn, location)})

    # -- provisioning --------------------------------------------------------------------

    def provision(self, conn: Connection, tenant: str, location: Location) -> str:
        """Make the tenant's role and give it the tenant's schema; idempotent, returns the role.

        Runs in the caller's transaction (under its tenant lock): a failure leaves nothing.
        Objects already in the schema (a tenant made before strict mode) change owner too.
        """
        role, group = self.role(conn, location), self.group(conn)
        if not role_exists(conn, role):
            conn.exec_driver_sql(f"CREATE ROLE {quote(role)} NOLOGIN")
            log.info("created role %s for tenant %s", role, tenant, extra={"tenant": tenant})
        # Database tenants: shared tables live in the main database, which their sessions do
        # not reach, and their server may be another cluster: no group membership.
        if location.database is None and not _member(conn, role, group):
            conn.exec_driver_sql(f"GRANT {quote(group)} TO {quote(role)}")
        if not _can_set(conn, role):
            # PostgreSQL 16+ gives a CREATEROLE creator ADMIN only: it needs SET (to switch)
            # and INHERIT (to drop what the role owns) as well.
            options = " WITH INHERIT TRUE, SET TRUE" if _version(conn) >= 160000 else ""
            conn.exec_driver_sql(f"GRANT {quote(role)} TO CURRENT_USER{options}")
        objects = conn.execute(_OWNED_OBJECTS, {"s": location.schema})
        foreign = [r for r in objects if r.owner != role]
        if foreign or _schema_owner(conn, location.schema) != role:
            self._give(conn, tenant, location.schema, role, [(r.kind, r.name) for r in foreign])
        if location.database is not None and not _connect_restricted(
            conn, location.database, role
        ):
            self.database_grants(conn, location.database, role)
        return role

    def _give(
        self, conn: Connection, tenant: str, schema: str, role: str, objects: list[tuple[str, str]]
    ) -> None:
        """Hand ``schema`` and ``objects`` (kind, name) in it to ``role``."""
        conn.exec_driver_sql(f"ALTER SCHEMA {quote(schema)} OWNER TO {quote(role)}")
        moved = 0
        for kind, name in objects:
            target = f"{quote(schema)}.{quote(name)}"
            conn.exec_driver_sql(f"ALTER {kind} {target} OWNER TO {quote(role)}")
            moved += 1
        log.info(
            "gave schema %s (%d objects) to role %s of tenant %s",
            schema, moved, role, tenant, extra={"tenant": tenant},
        )

    @contextmanager
    def acting_as(self, conn: Connection, tenant: str, location: Location) -> Iterator[None]:
        """Provision the role, then run the block as the tenant (objects it makes are its)."""
        role = self.provision(conn, tenant, location)
        set_role(conn, role)
        yield
        reset_role(conn)

    def database_grants(self, admin: Connection, database: str, role: str) -> None:
        """Database tenants: only the tenant's role (and the app, its owner) may connect.

        :meth:`provision` calls it on the tenant database's own connection (any connection of
        the owner works: ``pg_database`` is cluster-wide), in the provisioning transaction.
        """
        admin.exec_driver_sql(f"REVOKE CONNECT ON DATABASE {quote(database)} FROM PUBLIC")
        admin.exec_driver_sql(f"GRANT CONNECT ON DATABASE {quote(database)} TO {quote(role)}")
        log.info("database %s: CONNECT for role %s only", database, role)

    def rename(self, conn: Connection, tenant: str, old: Location, new: Location) -> None:
        """Rename the tenant's role along with its storage (in the caller's transaction)."""
        before, after = self.role(conn, old), self.role(conn, new)
        if role_exists(conn, before) and not role_exists(conn, after):
            conn.exec_driver_sql(f"ALTER ROLE {quote(before)} RENAME TO {quote(after)}")
            log.info("renamed role %s to %s", before, after, extra={"tenant": tenant})

    def drop(self, conn: Connection, tenant: str, location: Location) -> None:
        """Drop the tenant's role (after its storage); idempotent."""
        role = self.role(conn, location)
        if role_exists(conn, role):
            conn.exec_driver_sql(f"DROP OWNED BY {quote(role)}")
            conn.exec_driver_sql(f"DROP ROLE {quote(role)}")
            log.info("dropped role %s of tenant %s", role, tenant, extra={"tenant": tenant})

    # -- shared tables -------------------------------------------------------------------

    def grant_shared(self, tables: Iterable[sa.Table | str], *, write: bool = False) -> None:
        """Let every tenant role read (``SELECT``, ``REFERENCES``) or also write shared tables.

        Writing includes the tables' own sequences (serial and identity columns).
        """
        self.ensure_group()
        privileges = "SELECT, INSERT, UPDATE, DELETE, REFERENCES" if write else "SELECT, REFERENCES"
        with self.engine.begin() as conn:
            registry.lock_global(conn)  # concurrent GRANTs on one table can collide
            group = quote(self.group(conn))
            for schema, table in (_split(t) for t in tables):
                target = f"{quote(schema)}.{quote(table)}"
                conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {group}")
                conn.exec_driver_sql(f"GRANT {privileges} ON TABLE {target} TO {group}")
                if write:
                    for seq in conn.execute(_TABLE_SEQUENCES, {"t": f"{target}"}).scalars():
                        conn.exec_driver_sql(
                            f"GRANT USAGE, SELECT ON SEQUENCE {quote(schema)}.{quote(seq)} "
                            f"TO {group}"
                        )
                log.info("granted %s on %s to all tenants", privileges, target)

    def revoke_shared(self, tables: Iterable[sa.Table | str]) -> None:
        """Take back every grant :meth:`grant_shared` gave on ``tables``."""
        self.ensure_group()
        with self.engine.begin() as conn:
            registry.lock_global(conn)
            group = quote(self.group(conn))
            for schema, table in (_split(t) for t in tables):
                target = f"{quote(schema)}.{quote(table)}"
                conn.exec_driver_sql(f"REVOKE ALL ON TABLE {target} FROM {group}")
                for seq in conn.execute(_TABLE_SEQUENCES, {"t": target}).scalars():
                    conn.exec_driver_sql(
                        f"REVOKE ALL ON SEQUENCE {quote(schema)}.{quote(seq)} FROM {group}"
                    )
                log.info("revoked grants on %s from all tenants", target)

    # -- checks (doctor) -----------------------------------------------------------------

    def check(self, conn: Connection, location: Location) -> list[RoleProblem]:
        """What is wrong with one tenant's role, ownership and grants (empty: nothing)."""
        role, group = self.role(conn, location), self.group(conn)
        if not role_exists(conn, role):
            return [RoleProblem("role_missing", f"role {role!r} does not exist")]
        problems = []
        if location.database is None and (
            not role_exists(conn, group) or not _member(conn, role, group)
        ):
            problems.append(RoleProblem("not_in_group", f"role {role!r} is not in {group!r}"))
        if not _can_set(conn, role):
            problems.append(RoleProblem("not_settable", f"the app cannot SET ROLE {role!r}"))
        owner = _schema_owner(conn, location.schema)
        if owner is not None and owner != role:
            problems.append(
                RoleProblem("owner_mismatch", f"schema {location.schema!r} is owned by {owner!r}")
            )
        if location.database is not None and not _connect_restricted(
            conn, location.database, role
        ):
            problems.append(RoleProblem(
                "database_connect",
                f"database {location.database!r}: PUBLIC may connect or {role!r} may not",
            ))
        foreign = conn.execute(_OWNED_OBJECTS, {"s": location.schema}).all()
        foreign = [r for r in foreign if r.owner != role]
        if foreign:
            names = ", ".join(sorted(r.name for r in foreign)[:5])
            problems.append(
                RoleProblem("owner_mismatch", f"{len(foreign)} object(s) not owned by {role!r}: "
                            f"{names}")
            )
        return problems

    def roles(self, conn: Connection) -> list[str]:
        """Every tenant role of this database, recognised by its hash suffix.

        A role whose schema name was cut to fit 63 bytes is not recognised.
        """
        database = self.database(conn)
        rows = conn.execute(sa.text("SELECT rolname FROM pg_roles ORDER BY rolname")).scalars()
        return [r for r in rows if role_name(database, _unsuffixed(r)) == r]


def _unsuffixed(role: str) -> str:
    return role.rsplit("_", 1)[0]


def _split(table: sa.Table | str) -> tuple[str, str]:
    if isinstance(table, sa.Table):
        return table.schema or "public", table.name
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def _member(conn: Connection, role: str, group: str) -> bool:
    query = sa.text(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        "JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname = :r AND g.rolname = :g"
    )
    return conn.execute(query, {"r": role, "g": group}).first() is not None


def _version(conn: Connection) -> int:
    return int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())


def _can_set(conn: Connection, role: str) -> bool:
    """Whether the app may ``SET ROLE`` to ``role`` and act with its privileges."""
    if _version(conn) >= 160000:
        query = sa.text(
            "SELECT pg_has_role(current_user, :r, 'SET') AND pg_has_role(current_user, :r, 'USAGE')"
        )
    else:
        query = sa.text("SELECT pg_has_role(current_user, :r, 'MEMBER')")
    return bool(conn.execute(query, {"r": role}).scalar())


def _connect_restricted(conn: Connection, database: str, role: str) -> bool:
    """Whether ``role`` may connect to ``database`` and PUBLIC may not."""
    query = sa.text(
        "SELECT d.datacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aclexplode(d.datacl) a "
        "WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') "
        "AND has_database_privilege(:r, d.datname, 'CONNECT') "
        "FROM pg_database d WHERE d.datname = :d"
    )
    return bool(conn.execute(query, {"d": database, "r": role}).scalar())


def _schema_owner(conn: Connection, schema: str) -> str | None:
    query = sa.text(
        "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = :s"
    )
    owner: str | None = conn.execute(query, {"s": schema}).scalar()
    return owner


# Objects whose owner can be changed on their own: tables, views, materialized views, foreign
# tables, sequences not owned by a column (those follow their table), functions, enum and
# domain types (row types follow their table).
_OWNED_OBJECTS = sa.text(
    """
    SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                ELSE 'TABLE' END AS kind,
           c.relname AS name, pg_get_userbyid(c.relowner) AS owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                      AND d.refclassid = 'pg_class'::regclass)
      AND NOT c.relispartition
    UNION ALL
    SELECT 'TYPE', t.typname, pg_get_userbyid(t.typowner)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = :s AND t.typtype IN ('e', 'd')
    """
)

_TABLE_SEQUENCES = sa.text(
    """
    SELECT s.relname FROM pg_class s
    JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
    WHERE s.relkind = 'S' AND d.deptype IN ('a', 'i') AND d.refobjid = CAST(:t AS regclass)
    """
)


# -- engine hooks ------------------------------------------------------------------------


def install_hooks(engine: Engine) -> None:
    """Raise permission errors of tenant connections on ``engine`` as
    :class:`~tenantry.TenantIsolationError` (idempotent). The role switching itself is
    :mod:`tenantry.roleswitch`; :func:`tenantry.instrumentation.instrument` adds both."""
    if not hooks_installed(engine):
        event.listen(engine, "handle_error", _translate_denied)


def hooks_installed(engine: Engine) -> bool:
    return _translate_denied in engine.dialect.dispatch.handle_error


def _translate_denied(ctx: ExceptionContext) -> BaseException | None:
    sqlstate = getattr(ctx.original_exception, "sqlstate", None)
    if sqlstate not in (_DENIED, _NO_SUCH_ROLE) or ctx.connection is None:
        return None
    options = ctx.connection.get_execution_options()
    tenant, role = options.get("tenantry_tenant"), options.get(ROLE_OPTION)
    if tenant is None or role is None:
        return None
    if sqlstate == _NO_SUCH_ROLE:
        if (ctx.statement or "").startswith("SET LOCAL ROLE"):
            return UnknownTenant(tenant, f"its role {role!r} no longer exists (dropped?)")
        return None
    match = _DENIED_FOR.search(str(ctx.original_exception))
    kind, name = (match.group(1), match.group(2)) if match else ("object", "?")
    owner = _tenant_of_schema(ctx, name) if kind == "schema" else None
    return TenantIsolationError(tenant, kind, name, owner)


def _tenant_of_schema(ctx: ExceptionContext, schema: str) -> str | None:
    """Which tenant ``schema`` belongs to (best effort: ``None`` when it cannot tell).

    Asked on the registry through a probe (:mod:`tenantry.probe`), never through the pool:
    the failing connection is still checked out.
    """
    if ctx.engine is None:
        return None
    query = sa.select(registry.tenants.c.name).where(registry.tenants.c.schema == schema)
    found = probe.rows(ctx.engine, query)
    return str(found[0][0]) if found else None

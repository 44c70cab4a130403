"""Strict mode: one PostgreSQL role per tenant, switched to at the start of every transaction.

Each tenant gets a ``NOLOGIN`` role that owns its schema and every object in it. Tenant
sessions run ``SET LOCAL ROLE <tenant role>`` when a transaction begins (engine hooks of
:mod:`tenantry.hooks.settings`, driven by the ``tenantry_role`` execution option that routing
adds; AUTOCOMMIT and two-phase connections included), so even
hand-written SQL that names another tenant's schema fails with a permission error, which is
raised as :class:`~tenantry.TenantIsolationError`.

Tenant roles are members of one *group role* per database; shared tables are granted to the
group (:meth:`StrictRoles.grant_shared`), once, not to every tenant. Tenant migrations run as
the tenant role too (``SET LOCAL ROLE``), so what they create is owned by the tenant.

Role names: :mod:`tenantry.strict.rolenames`; catalog queries: :mod:`tenantry.strict.rolecatalog`;
permission errors as :class:`~tenantry.TenantIsolationError`: :mod:`tenantry.strict.denials`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..core import registry
from ..core.registry import Location
from ..names import quote
from .rolecatalog import (
    OWNED_OBJECTS,
    TABLE_SEQUENCES,
    can_set_role,
    connect_restricted,
    is_member,
    reset_role,
    role_exists,
    schema_owner,
    server_version,
    set_role,
)
from .rolenames import ROLE_OPTION, group_name, role_name, unsuffixed

log = logging.getLogger("tenantry.strict")


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
        if location.database is None and not is_member(conn, role, group):
            conn.exec_driver_sql(f"GRANT {quote(group)} TO {quote(role)}")
        if not can_set_role(conn, role):
            # PostgreSQL 16+ gives a CREATEROLE creator ADMIN only: it needs SET (to switch)
            # and INHERIT (to drop what the role owns) as well.
            options = " WITH INHERIT TRUE, SET TRUE" if server_version(conn) >= 160000 else ""
            conn.exec_driver_sql(f"GRANT {quote(role)} TO CURRENT_USER{options}")
        objects = conn.execute(OWNED_OBJECTS, {"s": location.schema})
        foreign = [r for r in objects if r.owner != role]
        if foreign or schema_owner(conn, location.schema) != role:
            self._give(conn, tenant, location.schema, role, [(r.kind, r.name) for r in foreign])
        if location.database is not None and not connect_restricted(
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
                    for seq in conn.execute(TABLE_SEQUENCES, {"t": f"{target}"}).scalars():
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
                for seq in conn.execute(TABLE_SEQUENCES, {"t": target}).scalars():
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
            not role_exists(conn, group) or not is_member(conn, role, group)
        ):
            problems.append(RoleProblem("not_in_group", f"role {role!r} is not in {group!r}"))
        if not can_set_role(conn, role):
            problems.append(RoleProblem("not_settable", f"the app cannot SET ROLE {role!r}"))
        owner = schema_owner(conn, location.schema)
        if owner is not None and owner != role:
            problems.append(
                RoleProblem("owner_mismatch", f"schema {location.schema!r} is owned by {owner!r}")
            )
        if location.database is not None and not connect_restricted(
            conn, location.database, role
        ):
            problems.append(RoleProblem(
                "database_connect",
                f"database {location.database!r}: PUBLIC may connect or {role!r} may not",
            ))
        foreign = conn.execute(OWNED_OBJECTS, {"s": location.schema}).all()
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
        return [r for r in rows if role_name(database, unsuffixed(r)) == r]


def _split(table: sa.Table | str) -> tuple[str, str]:
    if isinstance(table, sa.Table):
        return table.schema or "public", table.name
    schema, _, name = table.rpartition(".")
    return schema or "public", name



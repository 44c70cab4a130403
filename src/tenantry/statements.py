"""Per-statement tenants: ``stmt.execution_options(tenant="acme")``.

* A session or connection bound to a tenant accepts statements naming that same tenant and
  raises :class:`~tenantry.TenantMismatch` for any other one.
* An admin session (:meth:`Tenancy.admin_session`) routes each ORM statement to the tenant it
  names (see :mod:`tenantry.orm`). An admin Core connection (:meth:`Tenancy.admin_connection`)
  routes each statement by rewriting its own per-connection ``schema_translate_map`` just before
  execution; a tenant living in another database cannot be reached from that connection and
  raises :class:`~tenantry.TenantElsewhere`.
* Anywhere else (a session or connection without a tenant), naming a tenant in a statement on
  tenant tables raises :class:`~tenantry.AdminSessionRequired`.

The Core hook is a ``before_execute`` listener on the :class:`~sqlalchemy.engine.Engine` class:
it only acts on statements that carry the ``tenant`` option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import util as sql_util

from .errors import AdminSessionRequired, TenantElsewhere, TenantMismatch, UnknownTenant
from .models import TENANT_SCHEMA
from .registry import TenantInfo
from .rolenames import ROLE_OPTION

if TYPE_CHECKING:
    from .tenancy import Tenancy

#: The execution option that names a statement's tenant.
TENANT_OPTION = "tenant"
#: Execution option set on connections/engines routed to one tenant (see ``routing_options``).
BOUND_OPTION = "tenantry_tenant"


def statement_tables(statement: Any) -> list[str]:
    """Names of the tables a statement reads or writes (tenant tables unqualified)."""
    try:
        tables = sql_util.find_tables(statement, include_crud=True)
    except Exception:  # text() and exotic constructs: nothing to report
        return []
    names = {t.name if t.schema in (None, TENANT_SCHEMA) else f"{t.schema}.{t.name}"
             for t in tables}
    return sorted(names)


def touches_tenant_tables(statement: Any) -> bool:
    """Whether ``statement`` reads or writes a tenant table."""
    try:
        return any(t.schema == TENANT_SCHEMA for t in
                   sql_util.find_tables(statement, include_crud=True))
    except Exception:
        return False


def resolve(
    tenancy: Tenancy, tenant: str, statement: Any = None
) -> tuple[Engine, TenantInfo]:
    """The routed engine of ``tenant`` and its registry row (:class:`UnknownTenant` if none)."""
    try:
        engine = tenancy._route(tenant)
    except UnknownTenant as exc:
        tables = statement_tables(statement) if statement is not None else []
        if not tables:
            raise
        detail = str(exc).partition(": ")[2]
        where = f"named by a statement on {', '.join(tables)}"
        raise UnknownTenant(tenant, f"{detail}; {where}" if detail else where) from None
    hit = tenancy._known.get(tenant)
    info = hit[0] if hit is not None else tenancy.get_tenant(tenant)
    return engine, info


def same_database(tenancy: Tenancy, info: TenantInfo, engine: Engine) -> bool:
    """Whether ``info``'s tables are reachable through ``engine``'s database."""
    return tenancy.strategy.engine(info.location).url == engine.url


def describe_location(info: TenantInfo) -> str:
    loc = info.location
    where = f"database {loc.database!r}" if loc.database else "the main database"
    return where + (f" on server {loc.server!r}" if loc.server else "")


class StatementSchemas(dict[str, str]):
    """The ``schema_translate_map`` of an admin connection, set per statement by the hook.

    ``role`` is the strict-mode role of the statement's tenant (``None``: no tenant, or not
    strict); :mod:`tenantry.roleswitch` switches to it.
    """

    def __init__(self, tenancy: Tenancy) -> None:
        super().__init__({TENANT_SCHEMA: TENANT_SCHEMA})
        self.tenancy = tenancy
        self.role: str | None = None


def _route_core(
    conn: Connection, elem: Any, multiparams: Any, params: Any, options: Any
) -> tuple[Any, Any, Any]:
    schemas = options.get("schema_translate_map")
    per_statement = schemas if isinstance(schemas, StatementSchemas) else None
    if per_statement is not None:
        per_statement[TENANT_SCHEMA] = TENANT_SCHEMA  # unrouted unless this statement names one
        per_statement.role = None
    wanted = options.get(TENANT_OPTION)
    if wanted is None:
        return elem, multiparams, params
    bound = options.get(BOUND_OPTION)
    if bound is not None:
        if wanted != bound:
            raise TenantMismatch(bound, wanted, statement_tables(elem))
    elif per_statement is not None:
        routed, info = resolve(per_statement.tenancy, wanted, elem)
        if not same_database(per_statement.tenancy, info, conn.engine):
            raise TenantElsewhere(wanted, describe_location(info), statement_tables(elem))
        per_statement[TENANT_SCHEMA] = info.schema
        per_statement.role = routed.get_execution_options().get(ROLE_OPTION)
    elif touches_tenant_tables(elem):
        raise AdminSessionRequired(wanted, statement_tables(elem))
    return elem, multiparams, params


def install() -> None:
    """Add the Core hook to every engine (idempotent)."""
    if not event.contains(Engine, "before_execute", _route_core):
        event.listen(Engine, "before_execute", _route_core, retval=True)

install()

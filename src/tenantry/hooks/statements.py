"""Per-statement tenants: ``stmt.execution_options(tenant="acme")``.

* A session or connection bound to a tenant accepts statements naming that same tenant and
  raises :class:`~tenantry.TenantMismatch` for any other one.
* An admin session (:meth:`Tenancy.admin_session`) routes each ORM statement to the tenant it
  names (see :mod:`tenantry.hooks.orm`). An admin Core connection (:meth:`Tenancy.admin_connection`)
  routes each statement by rewriting its own per-connection ``schema_translate_map`` just before
  execution; a tenant living in another database cannot be reached from that connection and
  raises :class:`~tenantry.TenantElsewhere`.
* Anywhere else (a session or connection without a tenant), naming a tenant in a statement on
  tenant tables raises :class:`~tenantry.AdminSessionRequired`.

:func:`check_named` runs in :mod:`tenantry.hooks.guard`'s dialect hook on every engine tenantry
hands out; the admin routing is a ``before_execute`` listener on the admin engine only
(:func:`admin_engine`).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import util as sql_util

from ..core.registry import TenantInfo
from ..errors import AdminSessionRequired, TenantElsewhere, TenantMismatch
from ..models import TENANT_SCHEMA
from ..strict.rolenames import ROLE_OPTION

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


#: Statement shapes (cache keys) already seen, and whether they touch tenant tables; cleared
#: when full (SQLAlchemy's compiled cache is bounded the same way).
_SHAPES: dict[Any, bool] = {}
SHAPES_KEPT = 4096


def touches_tenant_tables(statement: Any) -> bool:
    """Whether ``statement`` reads or writes a tenant table.

    Decided once per statement shape: statements with the same cache key compile to the same
    SQL, so they name the same tables. The key is memoized on the statement, and SQLAlchemy's
    compile reuses it (:func:`cache_key_of`); statements without one are walked each time.
    """
    return bool(_by_shape(_SHAPES, statement, _walk))


#: Statement shapes already seen, and the unqualified tables they name (as ``_SHAPES``).
_UNQUALIFIED: dict[Any, tuple[str, ...]] = {}


def unqualified_tables(statement: Any) -> tuple[str, ...]:
    """Names of the tables without a schema that ``statement`` reads or writes (the tenant
    tables of ``routing="search_path"``); decided once per statement shape."""
    return tuple(_by_shape(_UNQUALIFIED, statement, _unqualified))


def _by_shape(memo: dict[Any, Any], statement: Any, decide: Any) -> Any:
    key = cache_key_of(statement)
    if key is None:
        return decide(statement)
    known = memo.get(key)
    if known is None:
        if len(memo) >= SHAPES_KEPT:
            memo.clear()
        known = memo[key] = decide(statement)
    return known


def _unqualified(statement: Any) -> tuple[str, ...]:
    try:
        tables = sql_util.find_tables(statement, include_crud=True)
    except Exception:
        return ()
    return tuple(sorted({t.name for t in tables if getattr(t, "schema", "") is None}))


def cache_key_of(statement: Any) -> Any:
    """The structure of ``statement``'s SQLAlchemy cache key (its bound values left out), or
    ``None``: SQLAlchemy's ``_generate_cache_key``, memoized on the statement
    (tests/test_third_party.py checks it)."""
    try:
        key = statement._generate_cache_key()
    except Exception:  # not a SQLAlchemy construct, or an uncacheable one: walk it
        return None
    return key.key if key is not None else None


def _walk(statement: Any) -> bool:
    try:
        return any(t.schema == TENANT_SCHEMA for t in
                   sql_util.find_tables(statement, include_crud=True))
    except Exception:
        return False


class Resolver(Protocol):
    """What routes a statement's tenant (the core of a Tenancy)."""

    engine: Engine  # the main database's

    def resolve(self, tenant: str, statement: Any = None) -> tuple[Engine, TenantInfo]:
        """The routed engine of ``tenant`` and its registry row."""
        ...

    def same_database(self, info: TenantInfo, engine: Engine) -> bool:
        """Whether ``info``'s tables are reachable through ``engine``'s database."""
        ...


def describe_location(info: TenantInfo) -> str:
    loc = info.location
    where = f"database {loc.database!r}" if loc.database else "the main database"
    return where + (f" on server {loc.server!r}" if loc.server else "")


class StatementSchemas(dict[str, str]):
    """The ``schema_translate_map`` of an admin connection, set per statement by the hook.

    ``role`` is the strict-mode role of the statement's tenant (``None``: no tenant, or not
    strict); :mod:`tenantry.hooks.settings` switches to it.
    """

    def __init__(self, resolver: Resolver) -> None:
        super().__init__({TENANT_SCHEMA: TENANT_SCHEMA})
        self.resolver = resolver
        self.role: str | None = None


def check_named(options: dict[str, Any], context: Any) -> None:
    """A statement naming a tenant, on a connection that is not an admin connection: it must
    be the connection's tenant (:class:`TenantMismatch`), or touch no tenant table
    (:class:`AdminSessionRequired`). Called by :mod:`tenantry.hooks.guard` before the driver
    runs it."""
    if isinstance(options.get("schema_translate_map"), StatementSchemas):
        return  # an admin connection: routed by its own hook (see admin_engine)
    wanted = options[TENANT_OPTION]
    compiled = getattr(context, "compiled", None)
    elem = compiled.statement if compiled is not None else None
    bound = options.get(BOUND_OPTION)
    if bound is not None:
        if wanted != bound:
            raise TenantMismatch(bound, wanted, statement_tables(elem))
    elif elem is not None and touches_tenant_tables(elem):
        raise AdminSessionRequired(wanted, statement_tables(elem))


def _route_admin(
    conn: Connection, elem: Any, multiparams: Any, params: Any, options: Any
) -> tuple[Any, Any, Any]:
    per_statement = options.get("schema_translate_map")
    if not isinstance(per_statement, StatementSchemas):
        return elem, multiparams, params
    per_statement[TENANT_SCHEMA] = TENANT_SCHEMA  # unrouted unless this statement names one
    per_statement.role = None
    wanted = options.get(TENANT_OPTION)
    if wanted is not None:
        routed, info = per_statement.resolver.resolve(wanted, elem)
        if not per_statement.resolver.same_database(info, conn.engine):
            raise TenantElsewhere(wanted, describe_location(info), statement_tables(elem))
        per_statement[TENANT_SCHEMA] = info.schema
        per_statement.role = routed.get_execution_options().get(ROLE_OPTION)
    return elem, multiparams, params


def admin_engine(engine: Engine) -> Engine:
    """The engine of admin connections: ``engine`` (sharing its pool) with the hook that
    routes each statement before it is compiled. The hook is a ``before_execute`` listener on
    this derived engine only, so ``engine``'s other connections do not pay for it."""
    admin = engine.execution_options()
    event.listen(admin, "before_execute", _route_admin, retval=True)
    return admin

"""The per-statement checks, as dialect hooks: they cost SQLAlchemy no per-connection work.

:func:`install` adds, on an engine's dialect (shared by the engines derived from it, and by
nothing else), one hook on each way a statement reaches the driver (``do_execute``,
``do_execute_no_params``, ``do_executemany``). Just before the driver runs a statement it:

1. checks a tenant named by the statement (``execution_options(tenant=...)``) against the
   connection's (:func:`tenantry.hooks.statements.check_named`);
2. stops a statement whose SQL still names the placeholder schema
   (:data:`~tenantry.models.TENANT_SCHEMA`) on a connection without a tenant, with
   :class:`~tenantry.NoTenantSelected`, before it reaches the database. This sits below the
   ORM, so it covers ORM, Core, ``text()`` and DDL alike. On a tenant's connection the
   placeholder left in SQL that SQLAlchemy does not translate (``text()``, literal SQL
   fragments) names the tenant's schema, as it does for tables;
3. puts strict mode's tenant role in force (:mod:`tenantry.hooks.settings`).

Connection events (``before_execute``, ``before_cursor_execute``, ``begin``) would do the same
but make every connection of the engine join the engine's event dispatch, a fixed cost per
connection (bench/hooks_floor.py); dialect events do not.

``handle_error``: a tenant whose schema vanished while in use (dropped by another process)
surfaces as :class:`~tenantry.UnknownTenant`, not as a driver error. Telling it from a typo
may take one catalog lookup, made on a probe (:mod:`tenantry.hooks.probe`), never through the
pool: the failing connection is still checked out.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext

from ..errors import NoTenantSelected, UnknownTenant
from ..models import TENANT_SCHEMA
from ..names import quote
from ..strategies.base import NO_TENANT, SCHEMA_EXISTS, SEARCH_PATH_OPTION
from . import probe, settings, statements

# Not preceded by an identifier character: schema "tenant__tenant__" is not the placeholder.
_TABLE = re.compile(rf'(?<![A-Za-z0-9_$])("?){TENANT_SCHEMA}\1\.("[^"]+"|[A-Za-z0-9_$]+)')
_SCHEMA = re.compile(rf'(?<![A-Za-z0-9_$])("?){TENANT_SCHEMA}\1(?=\.)')
_MISSING_SCHEMA = "3F000"  # invalid_schema_name
_MISSING_TABLE = "42P01"  # undefined_table
# What PostgreSQL (in English) says is missing; a localized message is not read (then: probe).
_MISSING = re.compile(r'\b(relation|table|schema) "([^"]*)" does not exist')


def install(engine: Engine) -> None:
    """Add the hooks to ``engine``'s dialect (idempotent)."""
    if not installed(engine):
        event.listen(engine, "do_execute", _do_execute)
        event.listen(engine, "do_execute_no_params", _do_execute_no_params)
        event.listen(engine, "do_executemany", _do_executemany)
        event.listen(engine, "handle_error", _translate_vanished_tenant)


def installed(engine: Engine) -> bool:
    dispatch = engine.dialect.dispatch
    return (
        _do_execute in dispatch.do_execute
        and _do_execute_no_params in dispatch.do_execute_no_params
        and _do_executemany in dispatch.do_executemany
        and _translate_vanished_tenant in dispatch.handle_error
    )


def placeholder_tables(statement: str) -> list[str]:
    """Names of tenant tables that ``statement`` reaches without a tenant."""
    if TENANT_SCHEMA not in statement:
        return []
    return sorted({m[1].strip('"') for m in _TABLE.findall(statement)})


def checked(statement: str, context: Any) -> str:
    """``statement`` as it may run on ``context``'s connection (see the module doc), or an
    error. Runs the role switch when it has to precede the statement."""
    options: dict[str, Any] = context.execution_options if context is not None else {}
    if statements.TENANT_OPTION in options:
        statements.check_named(options, context)
    if options.get(SEARCH_PATH_OPTION) == NO_TENANT and context.compiled is not None:
        tables = statements.unqualified_tables(context.compiled.statement)
        if tables:  # routing="search_path", no tenant: unqualified tables are tenant tables
            raise NoTenantSelected(list(tables))
    if TENANT_SCHEMA in statement:
        statement = _placed(statement, options)
    if context is not None:
        settings.before_statement(context)
    return statement


def _placed(statement: str, options: dict[str, Any]) -> str:
    schema = (options.get("schema_translate_map") or {}).get(TENANT_SCHEMA)
    if schema is None or schema == TENANT_SCHEMA:
        tables = placeholder_tables(statement)
        if tables:
            raise NoTenantSelected(tables)
        return statement
    return _SCHEMA.sub(quote(schema).replace("\\", "\\\\"), statement)


def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    sql = checked(statement, context)
    if sql is statement:
        return False  # SQLAlchemy runs it
    context.dialect.do_execute(cursor, sql, parameters, context)
    return True


def _do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
    sql = checked(statement, context)
    if sql is statement:
        return False
    context.dialect.do_execute_no_params(cursor, sql, context)
    return True


def _do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    sql = checked(statement, context)
    if sql is statement:
        return False
    context.dialect.do_executemany(cursor, sql, parameters, context)
    return True


def _translate_vanished_tenant(ctx: ExceptionContext) -> BaseException | None:
    sqlstate = getattr(ctx.original_exception, "sqlstate", None)
    if sqlstate not in (_MISSING_SCHEMA, _MISSING_TABLE) or ctx.execution_context is None:
        return None
    options = ctx.execution_context.execution_options
    if options.get(SEARCH_PATH_OPTION) == NO_TENANT and sqlstate == _MISSING_TABLE:
        named = _MISSING.search(str(ctx.original_exception))  # text(): unqualified, no tenant
        if named is not None and "." not in named[2]:
            return NoTenantSelected([named[2]])
    if options.get("tenantry_maintenance"):
        return None  # provisioning or migrating: the schema may not be committed yet
    tenant = options.get("tenantry_tenant")
    schema = (options.get("schema_translate_map") or {}).get(TENANT_SCHEMA)
    if tenant is None or schema is None or ctx.engine is None:
        return None
    named = _MISSING.search(str(ctx.original_exception))
    if named is not None and named[1] == "schema":
        gone: bool | None = named[2] == schema  # PostgreSQL said so itself
    elif named is not None and named[1] == "relation" and not named[2].startswith(schema + "."):
        return None  # a relation outside the tenant's schema: a typo, not a vanished tenant
    else:  # the tenant's table is missing, or its schema: ask (never through the pool)
        found = probe.rows(ctx.engine, SCHEMA_EXISTS.bindparams(n=schema))
        gone = found is not None and not found
    if gone:
        return UnknownTenant(tenant, f"schema {schema!r} no longer exists (dropped while in use?)")
    return None

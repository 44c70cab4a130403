"""Engine event hooks that keep statements inside their tenant.

* ``before_cursor_execute``: a statement whose SQL still names the placeholder schema
  (:data:`~tenantry.models.TENANT_SCHEMA`) had no tenant to route to. It is stopped with
  :class:`~tenantry.NoTenantSelected` before it reaches the database. This sits below the ORM,
  so it covers ORM, Core and DDL alike, and costs one substring test per statement.
* ``handle_error``: a tenant whose schema vanished while in use (dropped by another process)
  surfaces as :class:`~tenantry.UnknownTenant`, not as a driver error. Telling it from a
  typo may take one catalog lookup, made on a probe (:mod:`tenantry.hooks.probe`), never through
  the pool: the failing connection is still checked out.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from ..errors import NoTenantSelected, UnknownTenant
from ..models import TENANT_SCHEMA
from ..strategies.base import SCHEMA_EXISTS
from . import probe

# Not preceded by an identifier character: schema "tenant__tenant__" is not the placeholder.
_TABLE = re.compile(rf'(?<![A-Za-z0-9_$])("?){TENANT_SCHEMA}\1\.("[^"]+"|[A-Za-z0-9_$]+)')
_MISSING_SCHEMA = "3F000"  # invalid_schema_name
_MISSING_TABLE = "42P01"  # undefined_table
# What PostgreSQL (in English) says is missing; a localized message is not read (then: probe).
_MISSING = re.compile(r'\b(relation|table|schema) "([^"]*)" does not exist')


def install(engine: Engine) -> None:
    """Add tenantry's hooks to ``engine`` (idempotent)."""
    if not event.contains(engine, "before_cursor_execute", _stop_unrouted):
        event.listen(engine, "before_cursor_execute", _stop_unrouted, retval=True)
        event.listen(engine, "handle_error", _translate_vanished_tenant)


def installed(engine: Engine) -> bool:
    dispatch = engine.dispatch
    return (
        _stop_unrouted in dispatch.before_cursor_execute
        and _translate_vanished_tenant in engine.dialect.dispatch.handle_error
    )


def placeholder_tables(statement: str) -> list[str]:
    """Names of tenant tables that ``statement`` reaches without a tenant."""
    if TENANT_SCHEMA not in statement:
        return []
    return sorted({m[1].strip('"') for m in _TABLE.findall(statement)})


def _stop_unrouted(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> tuple[str, Any]:
    if TENANT_SCHEMA in statement:
        tables = placeholder_tables(statement)
        if tables:
            raise NoTenantSelected(tables)
    return statement, parameters


def _translate_vanished_tenant(ctx: ExceptionContext) -> BaseException | None:
    sqlstate = getattr(ctx.original_exception, "sqlstate", None)
    if sqlstate not in (_MISSING_SCHEMA, _MISSING_TABLE) or ctx.execution_context is None:
        return None
    options = ctx.execution_context.execution_options
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

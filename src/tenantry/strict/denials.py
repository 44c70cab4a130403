"""Strict mode's permission errors raised as :class:`~tenantry.TenantIsolationError`.

A tenant connection that touches another tenant's objects fails with PostgreSQL's
``insufficient_privilege``; a ``handle_error`` hook on the engine turns that into an error that
names the tenant and, when it can tell, the tenant the object belongs to.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext

from ..core import registry
from ..errors import TenantIsolationError
from ..hooks import probe
from .rolenames import ROLE_OPTION

_DENIED = "42501"  # insufficient_privilege
_DENIED_FOR = re.compile(r"permission denied for (\w+(?: \w+)?) (\S+)")


def install_hooks(engine: Engine) -> None:
    """Raise permission errors of tenant connections on ``engine`` as
    :class:`~tenantry.TenantIsolationError` (idempotent). The role switching itself is
    :mod:`tenantry.hooks.settings`; :func:`tenantry.hooks.instrumentation.instrument` adds
    both."""
    if not hooks_installed(engine):
        event.listen(engine, "handle_error", _translate_denied)


def hooks_installed(engine: Engine) -> bool:
    return _translate_denied in engine.dialect.dispatch.handle_error


def _translate_denied(ctx: ExceptionContext) -> BaseException | None:
    sqlstate = getattr(ctx.original_exception, "sqlstate", None)
    if sqlstate != _DENIED or ctx.connection is None:
        return None
    options = ctx.connection.get_execution_options()
    tenant, role = options.get("tenantry_tenant"), options.get(ROLE_OPTION)
    if tenant is None or role is None:
        return None
    match = _DENIED_FOR.search(str(ctx.original_exception))
    kind, name = (match.group(1), match.group(2)) if match else ("object", "?")
    owner = _tenant_of_schema(ctx, name) if kind == "schema" else None
    return TenantIsolationError(tenant, kind, name, owner)


def _tenant_of_schema(ctx: ExceptionContext, schema: str) -> str | None:
    """Which tenant ``schema`` belongs to (best effort: ``None`` when it cannot tell).

    Asked on the registry through a probe (:mod:`tenantry.hooks.probe`), never through the pool:
    the failing connection is still checked out.
    """
    if ctx.engine is None:
        return None
    query = sa.select(registry.tenants.c.name).where(registry.tenants.c.schema == schema)
    found = probe.rows(ctx.engine, query)
    return str(found[0][0]) if found else None

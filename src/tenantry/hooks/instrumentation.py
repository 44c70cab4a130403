"""The one place that makes an engine fit for tenant work.

Every engine tenantry hands out goes through :func:`instrument`: the main engine of a
:class:`~tenantry.Tenancy`, the engines of tenant databases, and the async engines (main and
per tenant database, psycopg and asyncpg) of :class:`~tenantry.aio.AsyncTenancy`. It adds,
on that engine only (engines derived from it with ``execution_options()`` share its hooks):

* :mod:`tenantry.hooks.statements`: statements naming a tenant (``execution_options(tenant=...)``)
  are checked against the connection's tenant, or routed on an admin connection;
* :mod:`tenantry.hooks.guard`: statements that reach tenant tables without a tenant are stopped;
  a tenant whose storage vanished is reported as :class:`~tenantry.UnknownTenant`;
* :mod:`tenantry.hooks.roleswitch`: strict mode's tenant role on every door (transactions,
  two-phase transactions, AUTOCOMMIT, admin connections);
* :mod:`tenantry.strict.denials`: permission errors as :class:`~tenantry.TenantIsolationError`;
* :mod:`tenantry.hooks.poolreset`: a connection that ran as a tenant role is reset at check-in.

The role hooks and the reset act only on connections with a tenant role (strict routing), so
a non-strict Tenancy pays one dictionary lookup per statement for them.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ..strict import denials
from . import guard, poolreset, roleswitch, statements


def instrument(engine: Engine | AsyncEngine) -> None:
    """Add tenantry's hooks to ``engine`` (an async engine: to its sync core); idempotent."""
    core = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    guard.install(core)
    statements.install(core)
    roleswitch.install(core)
    denials.install_hooks(core)
    poolreset.install(core)


def instrumented(engine: Engine | AsyncEngine) -> bool:
    """Whether every hook of :func:`instrument` is on ``engine`` (or the engine it derives
    from, for an engine with execution options)."""
    core = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    return (
        guard.installed(core)
        and statements.installed(core)
        and roleswitch.installed(core)
        and denials.hooks_installed(core)
        and poolreset.installed(core)
    )

"""The one place that makes an engine fit for tenant work.

Every engine tenantry hands out goes through :func:`instrument`: the main engine of a
:class:`~tenantry.Tenancy`, the engines of tenant databases, and the async engines (main and
per tenant database, psycopg and asyncpg) of :class:`~tenantry.aio.AsyncTenancy`. It adds,
on that engine's dialect and pool only (engines derived from it with ``execution_options()``
share them; other engines get nothing):

* :mod:`tenantry.hooks.guard`: before the driver runs a statement, a tenant it names is checked
  (:mod:`tenantry.hooks.statements`), statements that reach tenant tables without a tenant are
  stopped, and strict mode's tenant role is put in force (:mod:`tenantry.hooks.settings`);
  a tenant whose storage vanished is reported as :class:`~tenantry.UnknownTenant`;
* :mod:`tenantry.strict.denials`: permission errors as :class:`~tenantry.TenantIsolationError`;
* :mod:`tenantry.hooks.poolreset`: a connection that ran as a tenant role (or with a tenant's
  ``search_path``) is reset at check-in; its pool hook is added when first needed.

No connection event (``before_execute``, ``begin``, ...) is added: any listener of one makes
SQLAlchemy join event dispatch for every connection of the engine (bench/hooks_floor.py).
Admin connections route each statement with one on their own engine
(:func:`tenantry.hooks.statements.admin_engine`).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ..strict import denials
from . import guard


def instrument(engine: Engine | AsyncEngine) -> None:
    """Add tenantry's hooks to ``engine`` (an async engine: to its sync core); idempotent."""
    core = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    guard.install(core)
    denials.install_hooks(core)


def instrumented(engine: Engine | AsyncEngine) -> bool:
    """Whether every hook of :func:`instrument` is on ``engine`` (or the engine it derives
    from, for an engine with execution options)."""
    core = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    return guard.installed(core) and denials.hooks_installed(core)

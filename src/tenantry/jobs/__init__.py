"""Run background work with the tenant that was current when it was scheduled.

Threads: :func:`~tenantry.carry`, :class:`~tenantry.ContextExecutor`.
Processes: :class:`TenantProcessPool` (or ``carry(fn)`` handed to any pool).
Celery: :mod:`tenantry.jobs.celery` (imported on demand; needs the ``celery`` extra).
Every tenant: :meth:`Tenancy.each <tenantry.Tenancy.each>` (:mod:`tenantry.jobs.each`), and for
Celery :mod:`tenantry.jobs.fanout` (a task fanned out over the tenants, beat entries).
"""

from __future__ import annotations

from ..context import ContextExecutor, carry, current_tenant, run_in_thread
from .processes import TenantProcessPool

__all__ = ["ContextExecutor", "TenantProcessPool", "carry", "current_tenant", "run_in_thread"]

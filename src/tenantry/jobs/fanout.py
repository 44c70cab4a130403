"""Celery: a task sent once per tenant (on demand or on a beat schedule), and tasks that refuse
a tenant suspended since they were sent.

In the module defining the Celery app (imported by producers, workers and beat)::

    register(app, tenancy)                 # the header hooks, the fan-out task, the Tenancy

    @app.task(base=TenantTask)
    def send_digest(day): ...

    fan_out(send_digest, tenancy, args=("2026-12-04",))   # one message per tenant
    app.conf.beat_schedule = {"digest": beat_entry(send_digest, crontab(hour=3))}
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Task, group

from ..context import current_tenant
from ..core.registry import State, TenantInfo
from ..errors import ConfigurationError, NoTenantSelected, TenantSuspended, UnknownTenant
from ..migrations.revisions import matches
from ..tenancy import Tenancy
from .celery import HEADER, install

#: The name of the task :func:`register` adds: it fans a task out (beat entries run it).
FAN_OUT_TASK = "tenantry.fan_out"

#: Which tenants: glob patterns of names, or a predicate on the registry row.
Tenants = Sequence[str] | Callable[[TenantInfo], bool] | None

_registered: weakref.WeakKeyDictionary[Any, Tenancy] = weakref.WeakKeyDictionary()


class TenantTask(Task):  # type: ignore[misc]  # celery is untyped
    """Base of tasks that run for one tenant (``@app.task(base=TenantTask)``).

    Before the task body runs, the worker reads the tenant's registry row: a task sent for a
    tenant that is suspended by now raises :class:`~tenantry.TenantSuspended` (one that is
    gone or unusable :class:`~tenantry.UnknownTenant`; one sent with no tenant
    :class:`~tenantry.NoTenantSelected`), and the body never runs. Needs :func:`register`.
    """

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        refuse_unless_usable(tenancy_of(self.app), current_tenant())


def refuse_unless_usable(tenancy: Tenancy, name: str | None) -> None:
    """Raise unless tenant ``name`` is registered and usable now (one registry read)."""
    if name is None:
        raise NoTenantSelected()
    info = tenancy.get_tenant(name)
    if info.state is State.SUSPENDED:
        raise TenantSuspended(name, info.reason)
    if not info.usable:
        raise UnknownTenant(name, f"state is {info.state}")


def register(app: Any, tenancy: Tenancy) -> None:
    """Prepare ``app`` for tenant tasks, in every process using it (producer, worker, beat):
    :func:`tenantry.jobs.celery.install`, the Tenancy that :class:`TenantTask` checks with,
    and the task :data:`FAN_OUT_TASK` that :func:`beat_entry` schedules."""
    install()
    _registered[app] = tenancy

    @app.task(name=FAN_OUT_TASK, shared=False)  # type: ignore[untyped-decorator]
    def fan_out_task(
        task: str, tenants: list[str] | None = None, args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        names = targets(tenancy, tenants)
        result = send(app.tasks[task], names, args or (), kwargs)
        return {"group": result.id, "tenants": names}


def tenancy_of(app: Any) -> Tenancy:
    """The Tenancy :func:`register` gave ``app``."""
    tenancy = _registered.get(app)
    if tenancy is None:
        raise ConfigurationError(
            f"Celery app {getattr(app, 'main', app)!r} has no Tenancy: call "
            "tenantry.jobs.fanout.register(app, tenancy) where the app is defined"
        )
    return tenancy


def targets(tenancy: Tenancy, tenants: Tenants = None) -> list[str]:
    """The usable, not suspended tenants that ``tenants`` picks (one registry query)."""
    infos = [i for i in tenancy.list_tenants() if i.usable]
    if tenants is None:
        return [i.name for i in infos]
    if callable(tenants):
        return [i.name for i in infos if tenants(i)]
    if isinstance(tenants, str):
        tenants = [tenants]
    return [i.name for i in infos if matches(i.name, tenants)]


def fan_out(
    task: Any,
    tenancy: Tenancy,
    tenants: Tenants = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Send ``task(*args, **kwargs)`` once per usable, not suspended tenant (or those that
    ``tenants`` picks: glob patterns, or a predicate on :class:`~tenantry.TenantInfo`), each
    message carrying its tenant; returns the Celery ``GroupResult``. ``task`` must be a
    :class:`TenantTask`, so that a tenant suspended before its message is consumed is refused.
    """
    return send(task, targets(tenancy, tenants), args, kwargs)


def send(
    task: Any, names: Sequence[str], args: Sequence[Any], kwargs: Mapping[str, Any] | None
) -> Any:
    """Send ``task(*args, **kwargs)`` once for each tenant of ``names``, as a group."""
    if not isinstance(task, TenantTask):
        raise ConfigurationError(
            f"fan_out wants a TenantTask (@app.task(base=TenantTask)), not {task!r}: other "
            "tasks would run for a tenant suspended after the fan-out"
        )
    signatures = [task.signature(tuple(args), dict(kwargs or {}), headers={HEADER: name})
                  for name in names]
    return group(signatures, app=task.app).apply_async()


def beat_entry(
    task: Any,
    schedule: Any,
    tenants: Sequence[str] | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An entry of ``app.conf.beat_schedule`` that runs :data:`FAN_OUT_TASK` on ``schedule``
    (seconds, a ``timedelta`` or a ``crontab``): it fans ``task`` (a :class:`TenantTask` or its
    name) out over the tenants of that moment. ``tenants``: glob patterns (a beat entry is a
    message: no predicate)."""
    if callable(tenants) or isinstance(tenants, str):
        raise ConfigurationError("beat_entry tenants are a list of glob patterns")
    name = task if isinstance(task, str) else getattr(task, "name", None)
    if not isinstance(name, str):
        raise ConfigurationError(f"beat_entry wants a task or a task name, not {task!r}")
    return {
        "task": FAN_OUT_TASK,
        "schedule": schedule,
        "args": (name,),
        "kwargs": {"tenants": list(tenants) if tenants is not None else None,
                   "args": list(args), "kwargs": dict(kwargs or {})},
    }

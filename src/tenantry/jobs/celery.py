"""Celery integration: the tenant travels in the task message's headers.

Call :func:`install` once in the producer and in the worker (for example where the Celery app
is defined). Then:

* publishing a task records :func:`~tenantry.current_tenant` in the header ``tenantry_tenant``
  (unless the caller set that header explicitly);
* the worker selects that tenant for the duration of the task (an eager ``task.apply()`` keeps
  the caller's), and selects *no* tenant for a task sent without one, so such a task fails
  with :class:`~tenantry.NoTenantSelected` as soon as it touches a tenant table, instead of
  silently using whatever a previous task left behind.
"""

from __future__ import annotations

import contextvars
from typing import Any

from celery import signals

from ..context import current_tenant, enter, leave
from ..names import validate_name

HEADER = "tenantry_tenant"

_tokens: dict[str, contextvars.Token[str | None]] = {}


def _on_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None and HEADER not in headers:
        headers[HEADER] = current_tenant()


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    name = _header(task)
    if name is None and getattr(getattr(task, "request", None), "is_eager", False):
        return  # task.apply() / always-eager: runs right here, in the caller's context
    if name is not None:
        validate_name(name, prefix="")
    token = enter(name)
    if task_id is not None:
        _tokens[task_id] = token


def _on_postrun(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        try:
            leave(token)
        except ValueError:  # set in another context (should not happen): clear instead
            enter(None)


def _header(task: Any) -> str | None:
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = request.get(HEADER)
    if value is None and isinstance(getattr(request, "headers", None), dict):
        value = request.headers.get(HEADER)
    return value if isinstance(value, str) else None


def install() -> None:
    """Connect the signal handlers (idempotent; process-wide, for every Celery app)."""
    signals.before_task_publish.connect(_on_publish, weak=False, dispatch_uid="tenantry.publish")
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="tenantry.prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="tenantry.postrun")


def uninstall() -> None:
    """Disconnect the signal handlers."""
    signals.before_task_publish.disconnect(dispatch_uid="tenantry.publish")
    signals.task_prerun.disconnect(dispatch_uid="tenantry.prerun")
    signals.task_postrun.disconnect(dispatch_uid="tenantry.postrun")


"""Suspending and resuming a tenant: its data stays, and is migrated with the fleet, but its
sessions, requests and jobs are refused (:class:`~tenantry.errors.TenantSuspended`)."""

from __future__ import annotations

import logging

from ..core import Core
from ..core.registry import State, TenantInfo
from ..errors import TenantryError, UnknownTenant
from ..names import validate_name
from ..strategies.base import routed

log = logging.getLogger("tenantry")


def suspend(core: Core, name: str, reason: str | None = None) -> TenantInfo:
    """Suspend tenant ``name`` (idempotent: a new ``reason`` replaces the old one)."""
    info = _change(core, name, "suspended", State.SUSPENDED, reason)
    log.info("suspended tenant %s%s", name, f" ({reason})" if reason else "",
             extra={"tenant": name})
    return info


def resume(core: Core, name: str) -> TenantInfo:
    """Resume suspended tenant ``name`` (idempotent): ``ready``, or ``failed`` if its last
    migration failed."""
    info = _change(core, name, "resumed", None, None)
    log.info("resumed tenant %s", name, extra={"tenant": name})
    return info


def _change(
    core: Core, name: str, event: str, state: State | None, reason: str | None
) -> TenantInfo:
    validate_name(name, core.prefix)
    with core.store.work([name]) as work:
        info = work.row(name)
        if info is None:
            raise UnknownTenant(name)
        suspending = state is State.SUSPENDED
        if suspending and not (info.usable or info.state is State.SUSPENDED):
            raise TenantryError(f"cannot suspend tenant {name!r}: its state is {info.state}")
        if not suspending and info.state is not State.SUSPENDED:
            return info  # not suspended: nothing to resume
        if suspending and info.state is State.SUSPENDED and info.reason == reason:
            return info
        if state is None:
            state = State.FAILED if info.error else State.READY
        changed = work.update(name, state=state, reason=reason)
        core.events.inside(event, name, routed(work.main, name, changed.location),
                           reason=reason)
    core.events.after(event, name, reason=reason)
    return changed

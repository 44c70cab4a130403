"""Running tenants day to day: lifecycle hooks, history, suspension."""

from __future__ import annotations

from collections.abc import Callable

from ..core import Core
from ..core.events import Hook, When
from ..core.history import HistoryEntry
from ..core.registry import TenantInfo
from ..provisioning import suspension


class OperatingVerbs:
    """Lifecycle hooks (:mod:`tenantry.core.events`), history and suspension."""

    core: Core

    def on(
        self, event: str, hook: Hook | None = None, *, when: When = "after"
    ) -> Callable[..., object]:
        """Call ``hook(event)`` (a :class:`~tenantry.TenantEvent`) when ``event`` happens to a
        tenant: ``"created"``, ``"dropped"``, ``"renamed"``, ``"migrated"``,
        ``"fleet_migrated"``, ``"moved"``, ``"promoted"``, ``"demoted"``, ``"imported"``,
        ``"suspended"``, ``"resumed"``. ``when="inside"`` runs it in the operation's
        transaction (an exception undoes the operation); ``"after"`` once committed (an
        exception is logged and kept in ``tenancy.core.events.failures``). Without ``hook``,
        a decorator. See docs/lifecycle.md."""
        if hook is None:
            def register(fn: Hook) -> Hook:
                return self.core.events.on(event, fn, when)
            return register
        return self.core.events.on(event, hook, when)

    def history(self, name: str | None = None, *, limit: int = 100) -> list[HistoryEntry]:
        """The latest ``limit`` lifecycle events, newest first: of tenant ``name`` (under the
        name it had then), or of every tenant and fleet run."""
        return self.core.history.read(name, limit)

    def suspend_tenant(self, name: str, *, reason: str | None = None) -> TenantInfo:
        """Suspend tenant ``name``: its data stays and migrations still reach it, but sessions,
        connections, web requests and jobs raise :class:`~tenantry.TenantSuspended` (within
        a second in other processes). Idempotent."""
        return suspension.suspend(self.core, name, reason)

    def resume_tenant(self, name: str) -> TenantInfo:
        """Undo :meth:`suspend_tenant` (idempotent)."""
        return suspension.resume(self.core, name)

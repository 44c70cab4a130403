"""Lifecycle events: what happened to a tenant, and the application's hooks on it.

A hook registered ``when="inside"`` runs in the operation's transaction, before it commits,
with a :class:`~sqlalchemy.engine.Connection` routed to the tenant: it can write rows
atomically with the change, and its exception undoes the whole operation (a veto). A hook
registered ``when="after"`` (the default) runs once the change is committed; its exception is
logged and kept in :attr:`Events.failures`, and the change stays. After-hooks may be
coroutine functions: they run on the event loop of the :class:`~tenantry.aio.AsyncTenancy`
that did the work, else in a loop of their own (:func:`asyncio.run`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.engine import Connection

from ..errors import ConfigurationError

log = logging.getLogger("tenantry.events")

#: Events, and whether each can have inside hooks (a transaction of the tenant to run in).
EVENTS: dict[str, bool] = {
    "created": True,     # the tenant's tables are built; inside: seed them
    "dropped": True,     # inside: before its storage goes (can veto the drop)
    "renamed": True,     # inside: after the storage is renamed, before commit
    "migrated": True,    # one tenant's migration; inside: in its migration transaction
    "fleet_migrated": False,  # a migrate_all run is over (details: the report)
    "moved": False,      # to another server (after the switch)
    "promoted": False,   # schema to database of its own
    "demoted": False,    # database back to a schema
    "imported": True,    # inside: after its data is loaded, before commit
    "suspended": True,   # inside: in the registry transaction that suspends it
    "resumed": True,
}
When = Literal["inside", "after"]
Hook = Callable[["TenantEvent"], Any]
#: Failed after-hooks kept in :attr:`Events.failures` (the oldest go first).
KEPT_FAILURES = 100


@dataclass(frozen=True)
class TenantEvent:
    """What happened: the ``event`` name, the ``tenant``, and ``details`` (``old`` name of a
    rename, ``revision`` of a migration, ``report`` of a fleet run...). ``connection`` is set
    for inside hooks only: the operation's connection, routed to the tenant's tables."""

    event: str
    tenant: str | None
    details: dict[str, Any] = field(default_factory=dict)
    connection: Connection | None = None


@dataclass(frozen=True)
class HookFailure:
    """An after-hook that raised: the event it was given and the exception."""

    hook: str
    event: TenantEvent
    error: BaseException


class Events:
    """The hooks of one Tenancy, by event."""

    def __init__(self) -> None:
        self._hooks: dict[tuple[str, When], list[Hook]] = {}
        #: After-hooks that raised, most recent last (at most :data:`KEPT_FAILURES`).
        self.failures: deque[HookFailure] = deque(maxlen=KEPT_FAILURES)
        #: The event loop coroutine after-hooks run on (set by AsyncTenancy).
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Where every event is written down first (the tenants' history).
        self.journal: Callable[[TenantEvent], None] | None = None
        self._lock = threading.Lock()

    def on(self, event: str, hook: Hook, when: When = "after") -> Hook:
        """Call ``hook(TenantEvent)`` on ``event``, ``inside`` its transaction or ``after``."""
        if event not in EVENTS:
            raise ConfigurationError(
                f"unknown event {event!r}: one of {', '.join(sorted(EVENTS))}"
            )
        if when not in ("inside", "after"):
            raise ConfigurationError(f"when must be 'inside' or 'after', not {when!r}")
        if when == "inside" and not EVENTS[event]:
            raise ConfigurationError(f"{event!r} has no transaction to run in: use when='after'")
        if when == "inside" and inspect.iscoroutinefunction(hook):
            raise ConfigurationError(
                "inside hooks get the operation's sync Connection: make it a plain function "
                "(coroutine functions are for when='after')"
            )
        with self._lock:
            self._hooks.setdefault((event, when), []).append(hook)
        return hook

    def off(self, event: str, hook: Hook) -> None:
        """Remove ``hook`` from ``event`` (both kinds)."""
        with self._lock:
            for when in ("inside", "after"):
                hooks = self._hooks.get((event, when), [])
                if hook in hooks:
                    hooks.remove(hook)

    def wanted(self, event: str, when: When) -> bool:
        return bool(self._hooks.get((event, when)))

    def inside(self, event: str, tenant: str | None, connection: Connection,
               **details: Any) -> None:
        """Run ``event``'s inside hooks; an exception propagates (the caller rolls back)."""
        happened = TenantEvent(event, tenant, details, connection)
        for hook in list(self._hooks.get((event, "inside"), ())):
            hook(happened)

    def after(self, event: str, tenant: str | None, **details: Any) -> list[HookFailure]:
        """Write ``event`` in the journal, then run its after-hooks; failures are logged, kept,
        and returned."""
        happened = TenantEvent(event, tenant, details)
        if self.journal is not None:
            self.journal(happened)
        failed = []
        for hook in list(self._hooks.get((event, "after"), ())):
            try:
                result = hook(happened)
                if inspect.isawaitable(result):
                    self._await(result)
            except Exception as exc:
                name = getattr(hook, "__qualname__", repr(hook))
                log.exception("%s hook %s failed for tenant %s", event, name, tenant,
                              extra={"tenant": tenant})
                failure = HookFailure(name, happened, exc)
                self.failures.append(failure)
                failed.append(failure)
        return failed

    def _await(self, awaitable: Awaitable[Any]) -> None:
        async def run() -> Any:
            return await awaitable

        loop = self.loop
        if loop is not None and loop.is_running() and not _on_loop(loop):
            asyncio.run_coroutine_threadsafe(run(), loop).result()
        else:
            asyncio.run(run())


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

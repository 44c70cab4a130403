"""What migration runs did: one stream's step, each tenant's outcome, a fleet run's report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """What one run did: the revision before and after (``None`` means base)."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class TenantOutcome:
    """What a migration run did to one tenant: ``upgraded``, ``current`` or ``failed``."""

    tenant: str
    result: str
    before: str | None
    after: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.result != "failed"


@dataclass(frozen=True)
class MigrationReport:
    """The outcome of :meth:`~tenantry.Tenancy.migrate_all`."""

    shared: Step | None
    tenants: list[TenantOutcome]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tenants)

    def by_result(self, result: str) -> list[TenantOutcome]:
        return [t for t in self.tenants if t.result == result]

    @property
    def failed(self) -> list[TenantOutcome]:
        return self.by_result("failed")


@dataclass(frozen=True)
class TenantStatus:
    """One tenant's revision against the head of the tenant stream."""

    tenant: str
    state: str
    revision: str | None
    head: str | None
    error: str | None
    #: The tenant's record (``Tenancy(tenant_columns=...)``; empty without).
    record: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def current(self) -> bool:
        return self.revision == self.head

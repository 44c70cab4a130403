"""Fleet migrations: the shared stream first, then every tenant, planned from one registry
query and run by an executor (:mod:`tenantry.migrations.executors`); a crash leaves every tenant at
its old or its new revision and a re-run finishes the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core import Core, registry
from ..core.records import Where
from ..core.registry import MIGRATABLE_STATES, State, TenantInfo
from ..errors import ConfigurationError, ConfirmationRequired, MigrationError, UnknownTenant
from ..models import SHARED_SCHEMA
from ..names import quote
from ..strategies.base import set_search_path
from .executors import Jobs, OnOutcome, checked, run
from .perserver import checked_cap
from .results import MigrationReport, Step, TenantOutcome, TenantStatus
from .revisions import is_downgrade, matches, resolve
from .stream import MigrationStream
from .tenant import migrate_one

_MIGRATABLE = MIGRATABLE_STATES
_SETTLED = frozenset({State.READY, State.SUSPENDED})


@dataclass
class Plan:
    """The tenants to migrate and those already at the target (one registry query)."""

    target: str | None
    todo: list[TenantInfo]
    current: list[TenantOutcome]


def plan(
    core: Core,
    stream: MigrationStream,
    target: str,
    patterns: Sequence[str] | None,
    *,
    confirm: bool = False,
    where: Where | None = None,
) -> Plan:
    """Read the registry once; split the tenants into to-do and already-at-``target``.

    Downgrading destroys data: it needs ``confirm=True``. ``where``: only tenants whose
    record matches (one more query).
    """
    wanted = resolve(stream, target)
    with core.store.begin() as conn:
        infos = registry.all_tenants(conn)
    picked = None if where is None else {i.name for i in core.store.all(where)}
    chosen = [i for i in infos
              if matches(i.name, patterns) and (picked is None or i.name in picked)]
    for pattern in patterns or ():
        if not any(ch in pattern for ch in "*?[") and not any(i.name == pattern for i in chosen):
            raise UnknownTenant(pattern, "not registered")
    todo, current = [], []
    for info in chosen:
        if info.state in _SETTLED and info.revision == wanted:
            current.append(TenantOutcome(info.name, "current", info.revision, info.revision))
        elif info.state in _MIGRATABLE:
            todo.append(info)
    down = [i.name for i in todo if is_downgrade(stream, i.revision, wanted)]
    if down and not confirm:
        raise ConfirmationRequired(
            f"migrating to {target!r} downgrades {len(down)} tenant(s) (e.g. {down[0]!r}) and "
            "may destroy data: pass confirm=True (CLI: --yes)"
        )
    return Plan(wanted, todo, current)



def migrate_shared(core: Core, target: str = "heads") -> Step | None:
    """The shared stream to ``target`` in ``public`` (without a stream: missing shared tables
    created from the metadata); see :meth:`tenantry.Tenancy.migrate_shared`."""
    with core.store.begin() as main:
        registry.lock_global(main)
        set_search_path(main, SHARED_SCHEMA)
        if core.shared_stream is None:
            core.metadata.create_all(main, tables=core.shared_tables())
            return None
        return core.shared_stream.upgrade(main, SHARED_SCHEMA, target)


def migrate_tenant(core: Core, name: str, target: str = "heads") -> TenantOutcome:
    """One tenant to ``target`` in one transaction; raises on failure."""
    stream = core.require_tenant_stream()
    try:
        resolved = resolve(stream, target)
    except MigrationError:  # a relative target ("+1"): Alembic resolves it per tenant
        resolved = target
    outcome = migrate_one(core, core.tenant(name), resolved)
    if not outcome.ok:
        raise MigrationError(f"tenant {name!r}: {outcome.error}")
    _heard(core, outcome)
    return outcome


def _heard(core: Core, outcome: TenantOutcome) -> None:
    """Tell the ``migrated`` after-hooks of a tenant the run changed (in this process)."""
    if outcome.ok and outcome.before != outcome.after:
        core.events.after("migrated", outcome.tenant, before=outcome.before,
                          after=outcome.after)


def migrate_all(
    core: Core,
    target: str,
    tenants: Sequence[str] | None,
    *,
    jobs: Jobs,
    on_outcome: OnOutcome | None,
    on_plan: Callable[[int], None] | None,
    confirm: bool,
    compiled: bool,
    where: Where | None = None,
    per_server: int | None = None,
) -> MigrationReport:
    """Shared stream first, then every (matching) tenant; see
    :meth:`tenantry.Tenancy.migrate_all`."""
    checked(jobs)  # bad input fails before anything is migrated
    checked_cap(per_server)
    if jobs != 1 and core.events.wanted("migrated", "inside"):
        raise ConfigurationError(
            "inside 'migrated' hooks run in this process's transactions: migrate with jobs=1"
        )
    shared = migrate_shared(core)
    stream = core.require_tenant_stream()
    todo = plan(core, stream, target, tenants, confirm=confirm, where=where)
    if on_plan is not None:
        on_plan(len(todo.todo))

    def heard(outcome: TenantOutcome) -> None:
        _heard(core, outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    with core.history.batch():  # one statement for the run's history, at its end
        done = run(core, todo.todo, todo.target, jobs=jobs, on_outcome=heard,
                   compiled=compiled, per_server=per_server)
        report = MigrationReport(shared, todo.current + done)
        core.events.after("fleet_migrated", None, report=report)
    return report


def status(core: Core, where: Where | None = None) -> list[TenantStatus]:
    """Each tenant's (matching ``where``) revision against the head and its record, from one
    registry query."""
    head = core.tenant_stream.head if core.tenant_stream is not None else None
    return [TenantStatus(i.name, i.state.value, i.revision, head, i.error, i.record)
            for i in core.store.all(where)]


def migration_sql(core: Core, name: str, target: str = "heads") -> str:
    """The SQL that migrating tenant ``name`` to ``target`` would run (Alembic offline)."""
    info = core.tenant(name)
    stream = core.require_tenant_stream()
    wanted = resolve(stream, target)
    if is_downgrade(stream, info.revision, wanted):
        raise MigrationError("--dry-run shows upgrades only")
    if info.revision == wanted:
        return f"-- tenant {name} is already at {wanted or 'base'}: nothing to do\n"
    header = f"-- tenant {name}: {info.revision or 'base'} -> {wanted}\n"
    search_path = f"SET LOCAL search_path TO {quote(info.schema)};\n"
    return header + search_path + stream.sql(info.schema, target, start=info.revision)


def drift(core: Core) -> Drift:
    """Revision counts, states and failed/migrating tenants, from one registry query."""
    head = core.tenant_stream.head if core.tenant_stream is not None else None
    return Drift.of(head, status(core))


@dataclass(frozen=True)
class Drift:
    """Revision drift of the fleet at a glance, from one :meth:`~tenantry.Tenancy.status`."""

    head: str | None
    total: int
    by_revision: dict[str | None, int]
    by_state: dict[str, int]
    attention: list[TenantStatus]  # failed or migrating tenants

    @property
    def behind(self) -> int:
        return self.total - self.by_revision.get(self.head, 0)

    @classmethod
    def of(cls, head: str | None, rows: Sequence[TenantStatus]) -> Drift:
        return cls(
            head=head,
            total=len(rows),
            by_revision=dict(Counter(r.revision for r in rows).most_common()),
            by_state=dict(Counter(r.state for r in rows).most_common()),
            attention=[r for r in rows if r.state in (State.FAILED, State.MIGRATING)],
        )

"""Fleet migrations: plan from one registry query, run tenants on worker processes.

Alembic's ``op`` and ``context`` proxies are module globals, so one process runs one migration
at a time; ``jobs=N`` migrates batches of tenants in this process and N-1 helper processes, each
helper rebuilding the Tenancy from :class:`TenancyConfig` once (scripts loaded once, connections
pooled) and exiting if this process dies. Each tenant is marked ``migrating`` (committed,
visible to everyone) and then migrated in one transaction that also records its new revision
and state, so a crash leaves every tenant at its old or its new revision and a re-run finishes
the rest.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from alembic.script.revision import RevisionError

from . import registry
from .compiled import Compiler, StaleRevision, literal
from .errors import ConfirmationRequired, MigrationError, UnknownTenant
from .lifeline import exit_with_parent
from .migrations import (
    MigrationStream,
    Step,
    TenantOutcome,
    TenantStatus,
    is_ancestor,
    is_revision_name,
)
from .names import quote
from .registry import State, TenantInfo
from .scripts import query_script
from .strategies.base import prepared
from .strategies.hybrid import HybridStrategy
from .strategies.schema import SchemaStrategy

if TYPE_CHECKING:
    from .tenancy import Tenancy

log = logging.getLogger("tenantry.fleet")

OnOutcome = Callable[[TenantOutcome], None]
_MIGRATABLE = frozenset({State.READY, State.MIGRATING, State.FAILED})
#: Tenants marked ``migrating`` together (and sent to a worker together): a killed run leaves
#: at most this many tenants marked but not migrated, and a re-run finishes them.
BATCH = 20
#: ``jobs="auto"``: seconds of migrating left, at this process's pace, that make one more
#: process worth starting on an idle machine. A helper pays off once the work left exceeds its
#: start-up (a spawned interpreter importing tenantry, Alembic and the scripts: 0.5-1 s on a
#: quiet 2-core machine); twice that, to be safe. On a busy machine (load average above the
#: CPU count) it is scaled by ``2 * load / CPUs - 1``: start-up takes longer and a helper finds
#: no idle core (fitted to ``bench/fleet_migrate.py --sizes`` at load 7-8 on 2 CPUs, where
#: jobs=2 broke even at ~15 s of work; see docs/fleet.md).
HELPER_WORTH = 2.0

Jobs = int | Literal["auto"]


@dataclass(frozen=True)
class TenancyConfig:
    """What it takes to rebuild a :class:`~tenantry.Tenancy` in another process (picklable)."""

    url: str = field(repr=False)  # carries the password: never printed
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Tenancy:
        from .tenancy import Tenancy

        return Tenancy(self.url, **self.options)


def resolve(stream: MigrationStream, target: str) -> str | None:
    """The revision id ``target`` names (``head``/``heads``/``base`` or a revision prefix)."""
    if target in ("head", "heads"):
        return stream.head
    if target == "base":
        return None
    try:
        found = stream.script.get_revision(target)
    except Exception as exc:  # alembic raises several types for unknown/ambiguous ids
        raise MigrationError(f"unknown revision {target!r}: {exc}") from exc
    if found is None:
        raise MigrationError(f"unknown revision {target!r}")
    return str(found.revision)


def is_downgrade(stream: MigrationStream, current: str | None, target: str | None) -> bool:
    """Whether going from ``current`` to ``target`` means walking down the history."""
    if current is None or current == target:
        return False
    if target is None:
        return True
    return _below(stream, current, target)


@functools.lru_cache(maxsize=64)
def _below(stream: MigrationStream, current: str, target: str) -> bool:
    """Whether ``target`` is below ``current`` (asked for every tenant of a run: cached)."""
    try:
        return is_ancestor(stream.script, current, target)
    except RevisionError:  # a revision the scripts do not know: that tenant fails on its own
        return False


def matches(name: str, patterns: Sequence[str] | None) -> bool:
    """Whether ``name`` matches one of the glob ``patterns`` (no patterns: everything)."""
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass
class Plan:
    """The tenants to migrate and those already at the target (one registry query)."""

    target: str | None
    todo: list[TenantInfo]
    current: list[TenantOutcome]


def plan(
    tenancy: Tenancy,
    stream: MigrationStream,
    target: str,
    patterns: Sequence[str] | None,
    *,
    confirm: bool = False,
) -> Plan:
    """Read the registry once; split the tenants into to-do and already-at-``target``.

    Downgrading destroys data: it needs ``confirm=True``.
    """
    wanted = resolve(stream, target)
    with tenancy._begin() as conn:
        infos = registry.all_tenants(conn)
    chosen = [i for i in infos if matches(i.name, patterns)]
    for pattern in patterns or ():
        if not any(ch in pattern for ch in "*?[") and not any(i.name == pattern for i in chosen):
            raise UnknownTenant(pattern, "not registered")
    todo, current = [], []
    for info in chosen:
        if info.state == State.READY and info.revision == wanted:
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


def mark_migrating(tenancy: Tenancy, names: Sequence[str]) -> None:
    """Mark ``names`` as ``migrating`` in one committed update, visible to everyone."""
    if names:
        with tenancy._begin() as main:
            main.execute(
                registry.tenants.update()
                .where(registry.tenants.c.name.in_(list(names)))
                .values(state=State.MIGRATING.value, updated_at=sa.func.now())
            )


def migrate_one(
    tenancy: Tenancy,
    info: TenantInfo,
    target: str | None,
    *,
    mark: bool = True,
    compiler: Compiler | None = None,
) -> TenantOutcome:
    """Migrate one tenant to revision ``target`` in its own transaction; never raises.

    With ``mark`` the tenant is first marked ``migrating`` (else the caller did, in a batch).
    With a ``compiler``, upgrades run the step's pre-rendered SQL (see :mod:`tenantry.compiled`).
    """
    stream = tenancy._tenant_stream()
    name = info.name
    try:
        if mark:
            mark_migrating(tenancy, [name])
        step = (
            _compiled(tenancy, info, target, compiler)
            or _prefetched(tenancy, info, target)
            or _ordinary(tenancy, info, target)
        )
    except Exception as exc:  # one tenant's failure is recorded, not fatal to the fleet
        error = f"{type(exc).__name__}: {exc}".strip()[:4000]
        log.error("migration of tenant %s failed: %s", name, error)
        try:
            with tenancy._begin() as main:
                registry.update(main, name, state=State.FAILED, error=error)
        except Exception:  # the database is gone: the tenant stays 'migrating'
            log.exception("cannot record the failure of tenant %s", name)
        return TenantOutcome(name, "failed", info.revision, info.revision, error)
    tenancy._forget(name)
    if step.changed:
        log.info("tenant %s: %s -> %s", name, step.before or "base", step.after or "base",
                 extra={"tenant": name})
    result = "current" if not step.changed else (
        "downgraded" if is_downgrade(stream, step.before, step.after) else "upgraded"
    )
    return TenantOutcome(name, result, step.before, step.after)


def _ordinary(tenancy: Tenancy, info: TenantInfo, target: str | None) -> Step:
    stream = tenancy._tenant_stream()
    with tenancy._begin() as main:
        registry.lock_tenants(main, [info.name])
        with (
            tenancy.strategy.storage(main, info.name, info.location) as conn,
            tenancy._as_tenant(conn, info.name, info.location),
        ):
            goal = target if target is not None else "base"
            if is_downgrade(stream, info.revision, target):
                step = stream.downgrade(conn, info.schema, goal)
            else:
                step = stream.upgrade(conn, info.schema, goal)
        registry.update(main, info.name, state=State.READY, revision=step.after, error=None)
    return step


_UNDEFINED_TABLE = "42P01"


class _NoVersionTable(Exception):
    """The tenant's version table is missing: the registry was wrong; migrate it the long way."""


def _prefetched(tenancy: Tenancy, info: TenantInfo, target: str | None) -> Step | None:
    """The ordinary Alembic migration with tenantry's bookkeeping in one round trip.

    For a tenant of the main database that the registry says is at a revision: its advisory
    lock, its registry update (``ready`` at ``target``) and the read of its version table go in
    one round trip. On a linear path (see :meth:`MigrationStream.linear`) that round trip also
    moves the version row to ``target`` and only the scripts run after it; otherwise Alembic
    runs from the heads read (no version-table check or read of its own). All in one
    transaction: a failure rolls back the bookkeeping with the migration. If Alembic ends
    elsewhere than ``target``, the registry is corrected in the same transaction. ``None``:
    this does not apply (or the version table is missing).
    """
    stream = tenancy._tenant_stream()
    if target is None or info.revision is None or info.location.database is not None:
        return None
    if not is_revision_name(stream.script, target):  # e.g. a relative "+1"
        return None
    down = is_downgrade(stream, info.revision, target)
    schema = quote(info.schema)
    # schema tenants of the main database: what storage() does, the search path batched too
    batched = type(tenancy.strategy) in (SchemaStrategy, HybridStrategy)
    linear = stream.linear(info.revision, target) is not None
    table = f"{schema}.{quote(stream.version_table)}"
    path = f"SET LOCAL search_path TO {schema};\n" if batched else ""
    read = (_move_version_sql(table, info.revision, target) if linear
            else f"SELECT version_num, 0 FROM {table}")  # noqa: S608
    prologue = _lock_sql(info.name) + path + _ready_sql(tenancy, info.name, target) + read
    try:
        with tenancy._begin() as main:
            try:
                rows = query_script(main, prologue)
            except Exception as exc:  # raw driver error; psycopg stays a lazy import
                if getattr(exc, "sqlstate", None) == _UNDEFINED_TABLE:
                    raise _NoVersionTable(str(exc)) from exc
                raise
            heads = [str(row[0]) for row in rows]
            moved = bool(rows) and rows[0][1] == 1
            with (
                nullcontext(prepared(main, info.name, info.schema, search_path=False))
                if batched else tenancy.strategy.storage(main, info.name, info.location) as conn,
                tenancy._as_tenant(conn, info.name, info.location),
            ):
                if moved:  # the version row is at the target already: only the scripts run
                    step = stream.replay(conn, info.schema, info.revision, target)
                else:
                    run = stream.downgrade if down else stream.upgrade
                    step = run(conn, info.schema, target, heads=heads)
            if step.after != target:
                registry.update(main, info.name, state=State.READY, revision=step.after,
                                error=None)
    except _NoVersionTable as exc:
        log.info("tenant %s has no version table, migrating the long way: %s", info.name, exc)
        return None
    return step


def _compiled(
    tenancy: Tenancy, info: TenantInfo, target: str | None, compiler: Compiler | None
) -> Step | None:
    """The compiled upgrade, if one applies; ``None``: migrate the ordinary way."""
    if compiler is None or target is None or info.revision == target:
        return None
    if tenancy.strict_roles is not None:  # migrations must run as the tenant's role
        return None
    if is_downgrade(compiler.stream, info.revision, target):
        return None
    compiled = compiler.step(info.revision, target)
    if compiled is None:
        return None
    same_database = info.location.database is None  # registry and tenant in one database
    try:
        with tenancy._begin() as main:
            if not same_database:
                registry.lock_tenants(main, [info.name])
            with tenancy.strategy.storage(main, info.name, info.location) as conn:
                if same_database:  # lock, step, check and registry row: one round trip
                    compiled.run(conn, info.schema, _lock_sql(info.name),
                                 _ready_sql(tenancy, info.name, target))
                else:
                    compiled.run(conn, info.schema)
            if not same_database:
                registry.update(main, info.name, state=State.READY, revision=target, error=None)
    except StaleRevision as exc:  # rolled back; the registry was out of date
        log.info("compiled step skipped: %s", exc)
        return None
    return Step(info.revision, target)


def _move_version_sql(table: str, start: str, target: str) -> str:
    """Move the version row of ``table`` from ``start`` to ``target`` if it is the only row and
    says ``start``; return the rows as they were, each with 1 if the row moved (else 0)."""
    return (
        f"WITH old AS (SELECT version_num FROM {table}), "  # noqa: S608
        f"moved AS (UPDATE {table} SET version_num = {literal(target)} "
        f"WHERE version_num = {literal(start)} AND (SELECT count(*) FROM old) = 1 "
        "RETURNING 1) "
        "SELECT version_num, (SELECT count(*) FROM moved) FROM old"
    )


def _lock_sql(name: str) -> str:
    """The statement :func:`registry.lock_tenants` runs for one tenant, as SQL text."""
    return f"SELECT pg_advisory_xact_lock({registry._LOCK_CLASS}, {registry._lock_key(name)});\n"


def _ready_sql(tenancy: Tenancy, name: str, revision: str) -> str:
    """The registry update of a migrated tenant, as SQL text (values rendered as literals)."""
    return _ready_template(tenancy.engine.dialect, revision).replace(_NAME_MARK, literal(name))


_NAME_MARK = "'\x01tenantry-name\x01'"  # never a valid tenant name


@functools.lru_cache(maxsize=64)
def _ready_template(dialect: sa.engine.Dialect, revision: str) -> str:
    """:func:`_ready_sql` compiled once per revision, the tenant name left as a marker."""
    update = (
        registry.tenants.update()
        .where(registry.tenants.c.name == _NAME_MARK[1:-1])
        .values(state=State.READY.value, revision=revision, error=None, updated_at=sa.func.now())
    )
    compiled = update.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    text = f"{compiled};\n"
    assert text.count(_NAME_MARK) == 1, text
    return text


def migrate_batch(
    tenancy: Tenancy,
    batch: Sequence[TenantInfo],
    target: str | None,
    compiler: Compiler | None = None,
) -> list[TenantOutcome]:
    """Mark a batch ``migrating`` with one update, then migrate its tenants one by one."""
    mark_migrating(tenancy, [i.name for i in batch])
    return [migrate_one(tenancy, info, target, mark=False, compiler=compiler) for info in batch]


def checked(jobs: Jobs) -> Jobs:
    """``jobs`` if it is a number of processes (1 or more) or ``"auto"``; else MigrationError."""
    if jobs == "auto" or (isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1):
        return jobs
    raise MigrationError(f"jobs must be a number of processes (1 or more) or 'auto', not {jobs!r}")


def auto_processes(
    seconds_left: float, cpus: int | None = None, load: float | None = None
) -> int:
    """``jobs="auto"``: how many processes should migrate what this process alone would take
    ``seconds_left`` to: one more per :data:`HELPER_WORTH` seconds (times ``2 * load / cpus - 1``
    when above 1), at most ``cpus``. Defaults: this machine's CPUs and 1-minute load average."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    load = load if load is not None else _load_average()
    worth = HELPER_WORTH * max(1.0, 2 * load / cpus - 1)
    return max(1, min(cpus, 1 + int(seconds_left / worth)))


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows; or not available
        return 0.0


def parse_jobs(text: str) -> Jobs:
    """``--jobs`` of the CLI: a number of processes or ``auto``."""
    if text == "auto":
        return "auto"
    try:
        return checked(int(text))
    except ValueError:
        raise MigrationError(
            f"jobs must be a number of processes (1 or more) or 'auto', not {text!r}"
        ) from None


def run(
    tenancy: Tenancy,
    todo: Sequence[TenantInfo],
    target: str | None,
    *,
    jobs: Jobs = 1,
    on_outcome: OnOutcome | None = None,
    compiled: bool = False,
) -> list[TenantOutcome]:
    """Migrate ``todo`` in this process (``jobs=1``) or on ``jobs`` worker processes.

    ``jobs="auto"``: this process migrates a first batch (warming up), times a second, and
    starts helpers for the rest only if it is worth their start-up (:func:`auto_processes`).
    ``compiled=True`` renders each upgrade step's SQL once (see :mod:`tenantry.compiled`).
    """
    jobs = checked(jobs)
    outcomes: list[TenantOutcome] = []

    def record(outcome: TenantOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    compiler = Compiler(tenancy._tenant_stream()) if compiled else None
    if jobs == "auto":
        warm, timed, todo = todo[:BATCH], todo[BATCH:2 * BATCH], todo[2 * BATCH:]
        for outcome in migrate_batch(tenancy, warm, target, compiler):
            record(outcome)
        started = time.perf_counter()
        for outcome in migrate_batch(tenancy, timed, target, compiler):
            record(outcome)
        pace = (time.perf_counter() - started) / max(1, len(timed))
        jobs = auto_processes(pace * len(todo))
        log.info("jobs='auto': %.1f ms per tenant, %d left: %d process(es)", pace * 1000,
                 len(todo), jobs)
    if jobs == 1 or len(todo) <= 1:
        for batch in _batches(todo, BATCH):
            for outcome in migrate_batch(tenancy, batch, target, compiler):
                record(outcome)
        return outcomes
    for outcome in _parallel(tenancy, todo, target, jobs, compiler):
        record(outcome)
    return outcomes


def _batches(items: Sequence[TenantInfo], size: int) -> Iterator[list[TenantInfo]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _parallel(
    tenancy: Tenancy,
    todo: Sequence[TenantInfo],
    target: str | None,
    jobs: int,
    compiler: Compiler | None,
) -> Iterator[TenantOutcome]:
    """This process and ``jobs - 1`` helper processes migrate batches of ``todo``.

    Helpers (spawned: they import and connect first) always have two batches each queued;
    this process migrates the next batch itself meanwhile, so work starts at once.
    """
    helpers = jobs - 1
    size = max(1, min(BATCH, len(todo) // (jobs * 8) or 1))
    batches = _batches(todo, size)
    context = multiprocessing.get_context("spawn")  # never fork a process holding a pool
    with ProcessPoolExecutor(
        max_workers=helpers, mp_context=context, initializer=_init_worker,
        initargs=(tenancy.config(), compiler is not None),
    ) as pool:
        pending: set[Future[list[TenantOutcome]]] = set()

        def refill() -> None:
            while len(pending) < 2 * helpers:
                batch = next(batches, None)
                if batch is None:
                    return
                pending.add(pool.submit(_run_batch, batch, target))

        refill()
        for batch in batches:
            yield from migrate_batch(tenancy, batch, target, compiler)
            for future in [f for f in pending if f.done()]:
                pending.discard(future)
                yield from future.result()
            refill()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield from future.result()


_worker: Tenancy | None = None
_worker_compiler: Compiler | None = None


def _init_worker(config: TenancyConfig, compiled: bool) -> None:
    global _worker, _worker_compiler
    exit_with_parent()  # a killed parent leaves no helper (and no connection) behind
    _worker = config.build()
    _worker_compiler = Compiler(_worker._tenant_stream()) if compiled else None


def _run_batch(batch: Iterable[TenantInfo], target: str | None) -> list[TenantOutcome]:
    assert _worker is not None, "worker not initialised"
    return migrate_batch(_worker, list(batch), target, _worker_compiler)


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

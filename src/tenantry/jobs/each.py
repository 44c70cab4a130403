"""Run a function once per tenant (:meth:`~tenantry.Tenancy.each`): the tenant selected around
each call, ``jobs`` calls at once on threads, one outcome per tenant, a named run resumable."""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from ..context import use
from ..core import Core
from ..core.records import Where
from ..core.registry import USABLE_STATES, State, TenantInfo
from ..errors import ConfigurationError, TenantSuspended, UnknownTenant
from ..migrations.revisions import matches
from . import runs

log = logging.getLogger("tenantry.each")

Outcome = Literal["ok", "failed", "skipped", "suspended"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "failed", "skipped", "suspended")


@dataclass(frozen=True)
class EachOutcome:
    """What :meth:`~tenantry.Tenancy.each` did for one tenant.

    ``outcome``: ``ok`` (``value`` is what the function returned), ``failed`` (``error`` says
    why), ``skipped`` (already ``ok`` in this run) or ``suspended`` (never called).
    ``duration`` in seconds.
    """

    tenant: str
    outcome: Outcome
    error: str | None = None
    duration: float = 0.0
    value: Any = field(default=None, compare=False, repr=False)

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def ok(self) -> bool:
        """Not failed (skipped and suspended tenants are not failures)."""
        return not self.failed


@dataclass(frozen=True)
class EachReport:
    """The outcome of :meth:`~tenantry.Tenancy.each`: one :class:`EachOutcome` per tenant, by
    tenant name."""

    run: str | None
    tenants: list[EachOutcome]

    @property
    def ok(self) -> bool:
        """No tenant failed (skipped and suspended ones are not failures)."""
        return not self.failed

    @property
    def failed(self) -> list[EachOutcome]:
        return self.by_outcome("failed")

    def by_outcome(self, outcome: Outcome) -> list[EachOutcome]:
        return [t for t in self.tenants if t.outcome == outcome]

    def counts(self) -> dict[str, int]:
        """How many tenants had each outcome (every outcome named, zeros included)."""
        found = Counter(t.outcome for t in self.tenants)
        return {o: found[o] for o in OUTCOMES}


def checked_jobs(jobs: object) -> int:
    """``jobs`` if it is a number of threads (1 or more); else :class:`ConfigurationError`."""
    if isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1:
        return jobs
    raise ConfigurationError(f"jobs must be a number of threads (1 or more), not {jobs!r}")


def choose(
    core: Core, patterns: Sequence[str] | None, where: Where | None = None
) -> list[TenantInfo]:
    """The usable and suspended tenants matching the glob ``patterns`` and whose record
    matches ``where`` (one registry query); a pattern without wildcards must name a
    registered tenant."""
    if isinstance(patterns, str):
        patterns = [patterns]
    infos = core.store.all(where)
    for pattern in patterns or ():
        if not any(ch in pattern for ch in "*?[") and not any(i.name == pattern for i in infos):
            raise UnknownTenant(pattern, "not registered")
    return [i for i in infos if matches(i.name, patterns)
            and (i.state in USABLE_STATES or i.state is State.SUSPENDED)]


class EachRun:
    """The bookkeeping of one :meth:`~tenantry.Tenancy.each`: which tenants to call, and each
    outcome recorded (in ``tenantry_runs`` for a named run), reported and kept."""

    def __init__(
        self, core: Core, run: str | None, on_outcome: Callable[[EachOutcome], None] | None
    ) -> None:
        self.core = core
        self.run = runs.checked_run_id(run) if run is not None else None
        self.on_outcome = on_outcome
        self.outcomes: list[EachOutcome] = []

    def plan(self, patterns: Sequence[str] | None, where: Where | None = None) -> list[str]:
        """Settle the tenants not to call (done in this run, suspended); the others' names."""
        chosen = choose(self.core, patterns, where)
        finished: set[str] = set()
        if self.run is not None:
            with self.core.store.begin() as conn:
                finished = runs.done(conn, self.run)
        todo = []
        for info in chosen:
            if info.name in finished:
                self.settle(EachOutcome(info.name, "skipped", f"ok in run {self.run!r}"))
            elif info.state is State.SUSPENDED:
                self.settle(suspended(info.name, TenantSuspended(info.name, info.reason), 0.0))
            else:
                todo.append(info.name)
        return todo

    def record(self, outcome: EachOutcome) -> None:
        """Write ``outcome`` to ``tenantry_runs`` (named runs; a skipped tenant's record stays)."""
        if self.run is not None and outcome.outcome != "skipped":
            with self.core.store.begin() as conn:
                runs.record(conn, self.run, outcome.tenant, outcome.outcome, outcome.error)

    def add(self, outcome: EachOutcome) -> None:
        """Keep ``outcome`` and tell ``on_outcome``."""
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def settle(self, outcome: EachOutcome) -> None:
        self.record(outcome)
        self.add(outcome)

    def report(self) -> EachReport:
        return EachReport(self.run, sorted(self.outcomes, key=lambda o: o.tenant))


def suspended(name: str, exc: TenantSuspended, started: float) -> EachOutcome:
    return EachOutcome(name, "suspended", str(exc), elapsed(started))


def failed(name: str, exc: Exception, started: float) -> EachOutcome:
    log.warning("tenant %s failed: %s", name, exc, exc_info=exc, extra={"tenant": name})
    return EachOutcome(name, "failed", f"{type(exc).__name__}: {exc}", elapsed(started))


def elapsed(started: float) -> float:
    return time.perf_counter() - started if started else 0.0


def call(core: Core, fn: Callable[[str], Any], name: str) -> EachOutcome:
    """``fn(name)`` with tenant ``name`` selected (checked as :meth:`Tenancy.use` does: a
    tenant suspended since the plan is not called); never raises an :class:`Exception`."""
    started = time.perf_counter()
    try:
        core.route(name)
        with use(name):
            value = fn(name)
    except TenantSuspended as exc:
        return suspended(name, exc, started)
    except Exception as exc:
        return failed(name, exc, started)
    return EachOutcome(name, "ok", None, elapsed(started), value)


def recorded(state: EachRun, fn: Callable[[str], Any], name: str) -> EachOutcome:
    """:func:`call`, its outcome recorded (on the calling thread: workers record in parallel)."""
    outcome = call(state.core, fn, name)
    state.record(outcome)
    return outcome


def each(
    core: Core,
    fn: Callable[[str], Any],
    tenants: Sequence[str] | None,
    *,
    jobs: int,
    run: str | None,
    on_outcome: Callable[[EachOutcome], None] | None,
    where: Where | None = None,
) -> EachReport:
    """See :meth:`tenantry.Tenancy.each`."""
    threads = checked_jobs(jobs)
    if not callable(fn):
        raise ConfigurationError(f"each() wants a function of the tenant name, not {fn!r}")
    if inspect.iscoroutinefunction(fn):
        raise ConfigurationError(f"{fn!r} is a coroutine function: use AsyncTenancy.each")
    state = EachRun(core, run, on_outcome)
    todo = state.plan(tenants, where)
    if threads == 1 or len(todo) <= 1:
        for name in todo:
            state.settle(call(core, fn, name))
        return state.report()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tenantry-each") as pool:
        futures = [pool.submit(recorded, state, fn, name) for name in todo]
        for future in as_completed(futures):
            state.add(future.result())
    return state.report()

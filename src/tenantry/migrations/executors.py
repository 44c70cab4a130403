"""Fleet executors: tenants migrated in this process, or on ``jobs`` worker processes.

Alembic's ``op`` and ``context`` proxies are module globals, so one process runs one migration
at a time; ``jobs=N`` migrates batches of tenants in this process and N-1 helper processes, each
helper rebuilding the core once (scripts loaded once, connections pooled) and exiting if this
process dies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Literal

from ..core import Core
from ..core.registry import TenantInfo
from ..errors import MigrationError
from .compiled import Compiler
from .lifeline import exit_with_parent
from .perserver import Feeder, ServerSlots, checked_cap
from .results import TenantOutcome
from .tenant import migrate_batch

log = logging.getLogger("tenantry.fleet")

OnOutcome = Callable[[TenantOutcome], None]
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
    core: Core,
    todo: Sequence[TenantInfo],
    target: str | None,
    *,
    jobs: Jobs = 1,
    on_outcome: OnOutcome | None = None,
    compiled: bool = False,
    per_server: int | None = None,
) -> list[TenantOutcome]:
    """Migrate ``todo`` in this process (``jobs=1``) or on ``jobs`` worker processes.

    ``jobs="auto"``: this process migrates a first batch (warming up), times a second, and
    starts helpers for the rest only if it is worth their start-up (:func:`auto_processes`).
    ``compiled=True`` renders each upgrade step's SQL once (see
    :mod:`tenantry.migrations.compiled`). ``per_server``: at most this many tenants of one
    database server migrating at once, across the processes (one process migrates one tenant
    at a time, so ``jobs=1`` always keeps it).
    """
    jobs = checked(jobs)
    per_server = checked_cap(per_server)
    outcomes: list[TenantOutcome] = []

    def record(outcome: TenantOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    compiler = Compiler(core.require_tenant_stream()) if compiled else None
    if jobs == "auto":
        warm, timed, todo = todo[:BATCH], todo[BATCH:2 * BATCH], todo[2 * BATCH:]
        for outcome in migrate_batch(core, warm, target, compiler):
            record(outcome)
        started = time.perf_counter()
        for outcome in migrate_batch(core, timed, target, compiler):
            record(outcome)
        pace = (time.perf_counter() - started) / max(1, len(timed))
        jobs = auto_processes(pace * len(todo))
        log.info("jobs='auto': %.1f ms per tenant, %d left: %d process(es)", pace * 1000,
                 len(todo), jobs)
    if jobs == 1 or len(todo) <= 1:
        for batch in _batches(todo, BATCH):
            for outcome in migrate_batch(core, batch, target, compiler):
                record(outcome)
        return outcomes
    parallel = (_parallel(core, todo, target, jobs, compiler) if per_server is None
                else _capped(core, todo, target, jobs, per_server, compiler))
    for outcome in parallel:
        record(outcome)
    return outcomes


def _batches(items: Sequence[TenantInfo], size: int) -> Iterator[list[TenantInfo]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _parallel(
    core: Core,
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
    batches = _batches(todo, _batch_size(todo, jobs))
    with _helpers(core, helpers, compiler) as pool:
        pending: set[Future[list[TenantOutcome]]] = set()

        def refill() -> None:
            while len(pending) < 2 * helpers:
                batch = next(batches, None)
                if batch is None:
                    return
                pending.add(pool.submit(_run_batch, batch, target))

        refill()
        for batch in batches:
            yield from migrate_batch(core, batch, target, compiler)
            for future in [f for f in pending if f.done()]:
                pending.discard(future)
                yield from future.result()
            refill()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield from future.result()


def _capped(
    core: Core,
    todo: Sequence[TenantInfo],
    target: str | None,
    jobs: int,
    per_server: int,
    compiler: Compiler | None,
) -> Iterator[TenantOutcome]:
    """Like :func:`_parallel`, but each batch holds one server's tenants and no more than
    ``per_server`` batches of one server are out at once (:class:`ServerSlots`); helpers are
    fed by a :class:`Feeder` thread. While every server with work left is at its cap, this
    process waits for a helper instead of migrating.
    """
    slots = ServerSlots(todo, per_server, _batch_size(todo, jobs))
    with _helpers(core, jobs - 1, compiler) as pool:
        feeder = Feeder(slots, lambda batch: pool.submit(_run_batch, batch, target),
                        [pool.submit(_started) for _ in range(jobs - 1)])
        try:
            while (own := feeder.take()) is not False:
                if own is None:
                    yield from feeder.collected().result()
                    continue
                try:
                    yield from migrate_batch(core, own[1], target, compiler)
                finally:
                    feeder.returned(own[0])
                while not feeder.results.empty():
                    yield from feeder.collected().result()
        finally:
            feeder.stop()


def _batch_size(todo: Sequence[TenantInfo], jobs: int) -> int:
    """Tenants per batch: small enough that every process gets about 8 batches."""
    return max(1, min(BATCH, len(todo) // (jobs * 8) or 1))


def _helpers(core: Core, helpers: int, compiler: Compiler | None) -> ProcessPoolExecutor:
    """A pool of ``helpers`` spawned processes, each with its own core (and compiler)."""
    context = multiprocessing.get_context("spawn")  # never fork a process holding a pool
    return ProcessPoolExecutor(
        max_workers=helpers, mp_context=context, initializer=_init_worker,
        initargs=(core.recipe(), compiler is not None),
    )


_worker: Core | None = None
_worker_compiler: Compiler | None = None


def _init_worker(recipe: tuple[str, dict[str, Any]], compiled: bool) -> None:
    global _worker, _worker_compiler
    exit_with_parent()  # a killed parent leaves no helper (and no connection) behind
    url, options = recipe
    _worker = Core(url, **options)
    _worker_compiler = Compiler(_worker.require_tenant_stream()) if compiled else None


def _started() -> None:
    """A helper's first task: it returns once the helper has started (its core is built)."""
    assert _worker is not None, "worker not initialised"


def _run_batch(batch: Iterable[TenantInfo], target: str | None) -> list[TenantOutcome]:
    assert _worker is not None, "worker not initialised"
    return migrate_batch(_worker, list(batch), target, _worker_compiler)


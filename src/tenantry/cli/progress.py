"""Progress displays for the CLI: fleet migrations (a live bar on a terminal, plain lines
otherwise, summary tables) and long per-table operations (export, import)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Protocol, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..migrations.fleet import Drift
from ..migrations.results import MigrationReport

RESULTS = ("upgraded", "downgraded", "current", "failed")


class Settled(Protocol):
    """What a progress display needs of a tenant's outcome (a migration's, an each() call's)."""

    @property
    def tenant(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def ok(self) -> bool: ...


class TenantProgress:
    """Reports tenants as they finish: a live bar on a TTY, a line every few percent if not.

    Use as a context manager; :meth:`plan` gives the total, :meth:`advance` each outcome.
    ``label`` names the work on the bar, ``heading`` (``{}``: the total) on plain output,
    ``nothing`` what to say when there is no tenant to do (``None``: the heading).
    """

    def __init__(
        self, console: Console, *, quiet: bool = False, label: str = "migrating",
        heading: str = "migrating {} tenant(s)",
        nothing: str | None = "nothing to do: every tenant is at the target revision",
    ) -> None:
        self.console = console
        self.quiet = quiet
        self.label, self.heading, self.nothing = label, heading, nothing
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._next_line = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def plan(self, total: int) -> None:
        self.total, self.started = total, time.monotonic()
        if self.quiet:
            return
        if total == 0 and self.nothing is not None:
            self.console.print(self.nothing)
            return
        if self.console.is_terminal and total:
            self._bar = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]:.1f}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._task = self._bar.add_task(self.label, total=total, failed=0, rate=0.0)
            self._bar.start()
        else:
            self.console.print(self.heading.format(total), highlight=False)

    def advance(self, outcome: Settled) -> None:
        self.done += 1
        self.failed += not outcome.ok
        if self.quiet:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, failed=self.failed, rate=self.rate)
            if not outcome.ok:
                self._bar.console.print(f"[red]failed[/red] {outcome.tenant}: {outcome.error}",
                                        highlight=False)
            return
        if not outcome.ok:
            self.console.print(f"failed {outcome.tenant}: {outcome.error}", highlight=False)
        if self.done >= self._next_line or self.done == self.total:
            self._next_line = self.done + max(1, self.total // 20)
            left = (self.total - self.done) / self.rate if self.rate else 0.0
            self.console.print(
                f"{self.done}/{self.total} done, {self.failed} failed, "
                f"{self.rate:.1f}/s, ETA {left:.0f}s", highlight=False
            )


#: A fleet migration's progress (``on_plan=progress.plan``, ``on_outcome=progress.advance``).
MigrationProgress = TenantProgress


def report_json(report: MigrationReport, elapsed: float) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "shared": None if report.shared is None else {
            "before": report.shared.before, "after": report.shared.after},
        "counts": {k: len(report.by_result(k)) for k in RESULTS},
        "elapsed_s": round(elapsed, 3),
        "tenants": [
            {"tenant": t.tenant, "result": t.result, "before": t.before, "after": t.after,
             "error": t.error}
            for t in report.tenants
        ],
    }


def summary_table(report: MigrationReport, elapsed: float) -> Table:
    table = Table("result", "tenants", title="migration summary")
    for result in RESULTS:
        count = len(report.by_result(result))
        if count or result in ("upgraded", "failed"):
            table.add_row(result, str(count), style="red" if result == "failed" and count else None)
    moved = sum(1 for t in report.tenants if t.result in ("upgraded", "downgraded", "failed"))
    table.add_row("elapsed", f"{elapsed:.1f}s" + (f" ({moved / elapsed:.1f}/s)" if elapsed else ""))
    return table


def failures_table(report: MigrationReport, limit: int = 50) -> Table | None:
    failed = report.failed
    if not failed:
        return None
    more = f" (first {limit} of {len(failed)})" if len(failed) > limit else ""
    table = Table("tenant", "revision", "error", title=f"failed tenants{more}")
    for t in failed[:limit]:
        table.add_row(t.tenant, t.before or "-", (t.error or "")[:200], style="red")
    return table


def drift_tables(drift: Drift, limit: int = 50, *, head_known: bool = True) -> list[Table]:
    """Counts per revision and per state, and the tenants that need attention
    (``head_known=False``: no tenant stream, revisions are listed but not compared)."""
    title = f"head: {drift.head or '-'}" if head_known else "head: unknown"
    revisions = Table("revision", "tenants", "", title=title)
    for revision, count in drift.by_revision.items():
        mark = ("[green]head[/green]" if revision == drift.head else "[yellow]behind[/yellow]"
                ) if head_known else "-"
        revisions.add_row(revision or "-", str(count), mark)
    states = Table("state", "tenants")
    for state, count in drift.by_state.items():
        states.add_row(state, str(count), style="red" if state == "failed" else None)
    tables = [revisions, states]
    if drift.attention:
        more = f" (first {limit} of {len(drift.attention)})" if len(drift.attention) > limit else ""
        attention = Table("tenant", "state", "revision", "error", title=f"needs attention{more}")
        for r in drift.attention[:limit]:
            attention.add_row(r.tenant, r.state, r.revision or "-", (r.error or "")[:200])
        tables.append(attention)
    return tables


@contextmanager
def table_progress(console: Console, verb: str) -> Iterator[_Callback | None]:
    """Yield a ``progress(table, done, expected)`` callback drawing one bar per table on
    ``console``, or ``None`` when ``console`` is not a terminal."""
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn(f"{verb} [bold]{{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:
        yield _Callback(bars)


class _Callback:
    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, table: str, done: int, expected: int | None) -> None:
        total = max(expected, done) if expected is not None else None
        task = self.tasks.get(table)
        if task is None:
            task = self.tasks[table] = self.bars.add_task(table, total=total)
        self.bars.update(task, completed=done, total=total)

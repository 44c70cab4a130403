"""``tenantry run module:fn --all-tenants``: a function of the application once per tenant
(:meth:`~tenantry.Tenancy.each`), progress on stderr, outcomes on stdout."""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any, Self

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigurationError
from ..jobs.each import EachReport, choose
from ..loading import import_spec
from .console import err, out
from .exits import handle_errors
from .options import JsonOpt
from .progress import TenantProgress
from .records import WhereOpt, where_of
from .settings import tenancy_of

# A failing tenant is one red line on stderr; its traceback goes to the application's logging
# if it configured any, not to Python's last-resort handler.
logging.getLogger("tenantry.each").addHandler(logging.NullHandler())


@handle_errors
def run(
    ctx: typer.Context,
    function: Annotated[
        str, typer.Argument(metavar="MODULE:FN", show_default=False,
                            help="A function taking the tenant name, imported from the current "
                                 "directory as --app is.")
    ],
    all_tenants: Annotated[
        bool, typer.Option("--all-tenants", help="Every usable tenant (or those --tenant picks).")
    ] = False,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only tenants matching this glob (repeatable)."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Tenants at once (threads).")] = 1,
    run_id: Annotated[
        str | None,
        typer.Option("--run", help="Record outcomes under this id; running it again skips the "
                     "tenants already ok (resume).", show_default=False),
    ] = None,
    where: WhereOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Call MODULE:FN(tenant) for every tenant, with the tenant selected. Suspended tenants are
    skipped. Exit 1 if any tenant failed."""
    if not all_tenants and not tenant:
        raise ConfigurationError("say which tenants: --all-tenants, or --tenant PATTERN")
    fn = load_function(function)
    tenancy = tenancy_of(ctx)
    matching = where_of(where)
    started = time.monotonic()
    with EachProgress(err, len(choose(tenancy.core, tenant, matching)),
                      quiet=as_json) as progress:
        report = tenancy.each(fn, tenant, jobs=jobs, run=run_id, on_outcome=progress.advance,
                              where=matching)
    print_report(report, as_json, time.monotonic() - started)
    if not report.ok:
        raise typer.Exit(1)


def load_function(spec: str) -> Callable[[str], Any]:
    """The plain function ``module:fn`` names, importable from the current directory."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    fn = import_spec(spec, "run")
    if not callable(fn):
        raise ConfigurationError(f"run {spec!r} is a {type(fn).__name__}, not a function")
    if inspect.iscoroutinefunction(fn):
        raise ConfigurationError(
            f"run {spec!r} is a coroutine function: call AsyncTenancy.each in your program"
        )
    return fn  # type: ignore[no-any-return]


class EachProgress(TenantProgress):
    """An each() run's progress (:class:`~tenantry.cli.progress.TenantProgress`), its total
    known from the start."""

    def __init__(self, console: Console, total: int, *, quiet: bool = False) -> None:
        super().__init__(console, quiet=quiet, label="running",
                         heading="running for {} tenant(s)", nothing=None)
        self.total = total

    def __enter__(self) -> Self:
        self.plan(self.total)
        return self


def report_json(report: EachReport, elapsed: float) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "run": report.run,
        "counts": report.counts(),
        "elapsed_s": round(elapsed, 3),
        "tenants": [{"tenant": o.tenant, "outcome": o.outcome, "error": o.error,
                     "duration_s": round(o.duration, 3)} for o in report.tenants],
    }


def print_report(report: EachReport, as_json: bool, elapsed: float, limit: int = 50) -> None:
    """The outcome counts and the tenants that did not run ok, as tables or JSON."""
    if as_json:
        out.print_json(json.dumps(report_json(report, elapsed)))
        return
    title = "run summary" + (f" ({report.run})" if report.run else "")
    summary = Table("outcome", "tenants", title=title)
    for outcome, count in report.counts().items():
        summary.add_row(outcome, str(count), style="red" if outcome == "failed" and count else None)
    summary.add_row("elapsed", f"{elapsed:.1f}s")
    out.print(summary)
    notable = [o for o in report.tenants if o.outcome in ("failed", "suspended")]
    if notable:
        more = f" (first {limit} of {len(notable)})" if len(notable) > limit else ""
        table = Table("tenant", "outcome", "error", title=f"not run{more}")
        for o in notable[:limit]:
            table.add_row(o.tenant, o.outcome, (o.error or "")[:200],
                          style="red" if o.failed else None)
        out.print(table)

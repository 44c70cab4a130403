"""Commands that run migrations and show where tenants stand: migrate, status, downgrade."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigurationError
from ..migrations.executors import parse_jobs
from ..migrations.fleet import Drift
from ..migrations.results import MigrationReport
from ..migrations.revisions import matches
from .console import err, out
from .exits import handle_errors
from .options import JobsOpt, JsonOpt, PerServerOpt
from .progress import MigrationProgress, drift_tables, failures_table, report_json, summary_table
from .records import WhereOpt, cells, fields, jsonable, where_of
from .settings import tenancy_of


@handle_errors
def migrate(
    ctx: typer.Context,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only tenants matching this glob (repeatable)."),
    ] = None,
    to: Annotated[str, typer.Option("--to", help="Target revision (up or down).")] = "heads",
    jobs: JobsOpt = "1",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the SQL for one tenant; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm downgrades (data loss).")] = False,
    compiled: Annotated[
        bool,
        typer.Option("--compiled", help="Render each step's SQL once, run it per tenant in one "
                     "round trip (migrations must not query the database)."),
    ] = False,
    as_json: JsonOpt = False,
    where: WhereOpt = None,
    per_server: PerServerOpt = None,
) -> None:
    """Run the shared migrations, then every tenant's. Exit 1 if any tenant failed."""
    how_many = parse_jobs(jobs)
    tenancy = tenancy_of(ctx)
    chosen = where_of(where)
    if dry_run:
        names = [t.name for t in tenancy.list_tenants(where=chosen) if matches(t.name, tenant)]
        if not names:
            raise ConfigurationError("--dry-run: no tenant matches")
        out.print(tenancy.migration_sql(names[0], to), highlight=False, markup=False)
        return
    started = time.monotonic()
    with MigrationProgress(out, quiet=as_json) as progress:
        report = tenancy.migrate_all(
            to, tenants=tenant, jobs=how_many, on_plan=progress.plan, on_outcome=progress.advance,
            confirm=yes, compiled=compiled, where=chosen, per_server=per_server,
        )
    print_report(report, as_json, time.monotonic() - started)
    if not report.ok:
        raise typer.Exit(1)


def print_report(report: MigrationReport, as_json: bool, elapsed: float = 0.0) -> None:
    """A migration run's summary and failures, as tables or JSON."""
    if as_json:
        out.print_json(json.dumps(report_json(report, elapsed)))
        return
    out.print(summary_table(report, elapsed))
    failures = failures_table(report)
    if failures is not None:
        out.print(failures)


@handle_errors
def status(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    each: Annotated[bool, typer.Option("--each", help="One line per tenant.")] = False,
    where: WhereOpt = None,
) -> None:
    """Revision drift at a glance: tenants per revision and state, failed/migrating ones."""
    tenancy = tenancy_of(ctx)
    rows = tenancy.status(where=where_of(where))
    extra = fields(tenancy)
    known = tenancy.tenant_stream is not None  # without the stream, the head is unknown
    if not known:
        err.print("no tenant migrations configured (--tenant-migrations, "
                  "TENANTRY_TENANT_MIGRATIONS or --app): revisions are not compared with a "
                  "head", highlight=False)
    if as_json:
        out.print_json(json.dumps([
            {"tenant": r.tenant, "state": r.state, "revision": r.revision, "head": r.head,
             "current": r.current if known else None, "error": r.error,
             **({"record": jsonable(r.record)} if extra else {})}
            for r in rows
        ]))
        return
    if each:
        table = Table("tenant", "state", "revision", "head", "", *extra)
        for r in rows:
            mark = ("[green]current[/green]" if r.current else "[yellow]behind[/yellow]"
                    ) if known else "-"
            table.add_row(r.tenant, r.state, r.revision or "-", r.head or "-", mark,
                          *cells(extra, r.record))
        out.print(table)
    head = tenancy.tenant_stream.head if tenancy.tenant_stream is not None else None
    drift = Drift.of(head, rows)  # from the rows read above: one registry query
    for table in drift_tables(drift, head_known=known):
        out.print(table)
    behind = f"{drift.behind} behind" if known else "head unknown"
    out.print(f"{drift.total} tenant(s), {behind}, {len(drift.attention)} "
              "failed or migrating", highlight=False)


@handle_errors
def downgrade(
    ctx: typer.Context,
    to: Annotated[str, typer.Argument(help="Target revision ('base' for none).")],
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only tenants matching this glob (repeatable)."),
    ] = None,
    jobs: JobsOpt = "1",
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: downgrades may lose data.")] = False,
    as_json: JsonOpt = False,
    per_server: PerServerOpt = None,
) -> None:
    """Downgrade tenants to a revision (needs --yes). Exit 1 if any tenant failed."""
    how_many = parse_jobs(jobs)
    tenancy = tenancy_of(ctx)
    started = time.monotonic()
    with MigrationProgress(out, quiet=as_json) as progress:
        report = tenancy.migrate_all(
            to, tenants=tenant, jobs=how_many, on_plan=progress.plan, on_outcome=progress.advance,
            confirm=yes, per_server=per_server,
        )
    print_report(report, as_json, time.monotonic() - started)
    if not report.ok:
        raise typer.Exit(1)

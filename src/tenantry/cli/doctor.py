"""The ``doctor`` command: compare the registry with the database, repair on request."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ..doctor import DoctorReport
from .console import err, out
from .exits import handle_errors
from .options import JsonOpt
from .settings import tenancy_of


@handle_errors
def doctor(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe (asks first).")] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="With --fix: do not ask, and also run destructive fixes."),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option("--strict", envvar="TENANTRY_STRICT",
                     help="Check strict-mode roles too (implied by an --app with strict=True)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare the registry with the database. Exit 1 if anything is wrong (after --fix)."""
    tenancy = tenancy_of(ctx)
    if strict:
        tenancy.enable_strict()
    report = tenancy.doctor()
    if fix and report.findings and not yes:
        print_findings(report, as_json=False, title="found")
        safe = [f for f in report.findings if f.fix and not f.destructive]
        if not safe:
            err.print("nothing safe to fix; destructive fixes need --yes", highlight=False)
            raise typer.Exit(1)
        if not typer.confirm(f"apply {len(safe)} safe fix(es)?", err=True):
            raise typer.Exit(1)
    if fix and report.findings:
        report = tenancy.doctor(fix=True, destructive=yes)
    print_findings(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


def print_findings(report: DoctorReport, as_json: bool, title: str = "remaining") -> None:
    """The doctor's findings, fixes and failed fixes, as a table or JSON."""
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    for finding in report.fixed:
        out.print(f"fixed: {finding.problem} {finding.tenant or finding.subject}: {finding.fix}",
                  highlight=False)
    for finding, error in report.errors:
        err.print(f"[red]could not fix[/red] {finding.problem} {finding.subject}: {error}",
                  highlight=False)
    if report.ok:
        out.print("[green]no problems found[/green]")
        return
    table = Table("problem", "tenant", "subject", "detail", "fix", title=f"{title} problems")
    for f in report.findings:
        fix = f.fix + (" [red](destroys data: --yes)[/red]" if f.destructive else "")
        table.add_row(f.problem.value, f.tenant or "-", f.subject, f.detail, fix or "-")
    out.print(table)
    out.print(f"{len(report.findings)} problem(s)")

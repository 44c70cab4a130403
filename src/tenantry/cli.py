"""The ``tenantry`` command line: provision, list, migrate and inspect tenants."""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from .doctor import DoctorReport
from .errors import ConfigurationError, TenantryError
from .migrations import MigrationReport
from .names import DEFAULT_PREFIX
from .tenancy import Tenancy

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="tenantry",
    help="Multi-tenancy for SQLAlchemy + Alembic on PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)


@dataclass
class Settings:
    """What the global options say; the Tenancy is built on first use."""

    url: str | None
    app: str | None
    prefix: str
    tenant_migrations: Path | None
    shared_migrations: Path | None
    _tenancy: Tenancy | None = field(default=None, repr=False)

    def tenancy(self) -> Tenancy:
        if self._tenancy is None:
            self._tenancy = self._build()
        return self._tenancy

    def _build(self) -> Tenancy:
        if self.app:
            return load_app(self.app)
        if not self.url:
            raise ConfigurationError("no database: pass --url or set TENANTRY_URL (or --app)")
        return Tenancy(
            self.url,
            prefix=self.prefix,
            tenant_migrations=self.tenant_migrations,
            shared_migrations=self.shared_migrations,
        )

    def close(self) -> None:
        if self._tenancy is not None:
            self._tenancy.dispose()


def load_app(spec: str) -> Tenancy:
    """Import ``module:attribute`` naming a Tenancy (or a callable returning one)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"--app wants 'module:attribute', not {spec!r}")
    try:
        target: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load --app {spec!r}: {exc}") from exc
    if callable(target) and not isinstance(target, Tenancy):
        target = target()
    if not isinstance(target, Tenancy):
        raise ConfigurationError(f"--app {spec!r} is a {type(target).__name__}, not a Tenancy")
    return target


def describe_db_error(exc: sa.exc.DBAPIError) -> str:
    """One line about a driver error, without SQL parameters or credentials."""
    first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return first


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn tenantry and database errors into a message on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx: Any = kwargs["ctx"]  # every command takes ctx: typer.Context
        try:
            return fn(*args, **kwargs)
        except TenantryError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        except sa.exc.OperationalError as exc:
            where = _safe_url(ctx)
            err.print(f"[red]error:[/red] cannot reach the database {where}: "
                      f"{describe_db_error(exc)}", highlight=False)
        except sa.exc.DBAPIError as exc:
            err.print(f"[red]error:[/red] database error: {describe_db_error(exc)}",
                      highlight=False)
        finally:
            settings = ctx.find_object(Settings)
            if settings is not None:
                settings.close()
        raise typer.Exit(1)

    return wrapper


def _safe_url(ctx: Any) -> str:
    settings = ctx.find_object(Settings)
    if settings is None or not settings.url:
        return "(from --app)"
    try:
        return sa.make_url(settings.url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"


def tenancy_of(ctx: typer.Context) -> Tenancy:
    return ctx.ensure_object(Settings).tenancy()


UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="TENANTRY_URL", help="Database URL (main database).",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


@app.callback()
def options(
    ctx: typer.Context,
    url: UrlOpt = None,
    app_spec: Annotated[
        str | None,
        typer.Option("--app", envvar="TENANTRY_APP",
                     help="module:attribute of your Tenancy (overrides the options below)."),
    ] = None,
    prefix: Annotated[
        str, typer.Option(envvar="TENANTRY_PREFIX", help="Schema/database name prefix.")
    ] = DEFAULT_PREFIX,
    tenant_migrations: Annotated[
        Path | None,
        typer.Option(envvar="TENANTRY_TENANT_MIGRATIONS", help="Tenant Alembic directory."),
    ] = None,
    shared_migrations: Annotated[
        Path | None,
        typer.Option(envvar="TENANTRY_SHARED_MIGRATIONS", help="Shared Alembic directory."),
    ] = None,
) -> None:
    ctx.obj = Settings(url, app_spec, prefix, tenant_migrations, shared_migrations)


@app.command()
@handle_errors
def create(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Tenant names.", show_default=False)],
) -> None:
    """Create tenants (idempotent)."""
    tenancy = tenancy_of(ctx)
    for name in names:
        info = tenancy.create_tenant(name)
        out.print(f"tenant {info.name}: {info.state} in {info.schema} "
                  f"(revision {info.revision or '-'})", highlight=False)


@app.command()
@handle_errors
def drop(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Tenant names.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the data is destroyed.")] = False,
) -> None:
    """Drop tenants and all their data (needs --yes)."""
    tenancy = tenancy_of(ctx)
    for name in names:
        dropped = tenancy.drop_tenant(name, confirm=yes)
        out.print(f"tenant {name}: {'dropped' if dropped else 'no such tenant'}", highlight=False)


@app.command()
@handle_errors
def rename(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(show_default=False)],
    new: Annotated[str, typer.Argument(show_default=False)],
) -> None:
    """Rename a tenant (and its storage)."""
    info = tenancy_of(ctx).rename_tenant(old, new)
    out.print(f"tenant {old} is now {info.name} ({info.schema})", highlight=False)


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List tenants."""
    tenants = tenancy_of(ctx).list_tenants()
    if as_json:
        out.print_json(json.dumps([
            {"name": t.name, "strategy": t.strategy, "schema": t.schema,
             "database": t.location.database, "server": t.location.server,
             "state": t.state.value, "revision": t.revision}
            for t in tenants
        ]))
        return
    table = Table("tenant", "strategy", "location", "state", "revision")
    for t in tenants:
        where = t.schema if t.location.database is None else f"{t.location.database}/{t.schema}"
        table.add_row(t.name, t.strategy, where, t.state.value, t.revision or "-")
    out.print(table)
    out.print(f"{len(tenants)} tenant(s)")


@app.command()
@handle_errors
def migrate(
    ctx: typer.Context,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Only these tenants (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the shared migrations, then every tenant's. Exit 1 if any tenant failed."""
    report = tenancy_of(ctx).migrate_all(tenants=tenant)
    print_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


def print_report(report: MigrationReport, as_json: bool) -> None:
    rows = [
        {"tenant": t.tenant, "result": t.result, "before": t.before, "after": t.after,
         "error": t.error}
        for t in report.tenants
    ]
    if as_json:
        out.print_json(json.dumps({"ok": report.ok, "tenants": rows}))
        return
    table = Table("tenant", "result", "from", "to", "error")
    for r in rows:
        style = "red" if r["result"] == "failed" else None
        table.add_row(r["tenant"], r["result"], r["before"] or "-", r["after"] or "-",
                      (r["error"] or "")[:120], style=style)
    out.print(table)
    counts = {k: len(report.by_result(k)) for k in ("upgraded", "current", "failed")}
    out.print(", ".join(f"{v} {k}" for k, v in counts.items()))


@app.command()
@handle_errors
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Each tenant's revision against the head."""
    rows = tenancy_of(ctx).status()
    if as_json:
        out.print_json(json.dumps([
            {"tenant": r.tenant, "state": r.state, "revision": r.revision, "head": r.head,
             "current": r.current, "error": r.error}
            for r in rows
        ]))
        return
    table = Table("tenant", "state", "revision", "head", "")
    for r in rows:
        mark = "[green]current[/green]" if r.current else "[yellow]behind[/yellow]"
        table.add_row(r.tenant, r.state, r.revision or "-", r.head or "-", mark)
    out.print(table)
    behind = sum(not r.current for r in rows)
    out.print(f"{len(rows)} tenant(s), {behind} behind")


@app.command()
@handle_errors
def demo(ctx: typer.Context) -> None:
    """Run the demo (on an embedded PostgreSQL unless --url is given)."""
    from .demo import run

    settings = ctx.ensure_object(Settings)
    run(settings.url or os.environ.get("TENANTRY_URL"))


@app.command()
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


def main() -> None:
    """Console-script entry point."""
    app()

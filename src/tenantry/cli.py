"""The ``tenantry`` command line: provision, list, migrate and inspect tenants."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from . import fleet, urls
from .across import DEFAULT_CHUNK
from .doctor import DoctorReport
from .errors import ConfigurationError, TenantryError
from .fleet import Drift
from .loading import import_spec
from .migrations import MigrationReport
from .names import DEFAULT_PREFIX
from .progress import (
    MigrationProgress,
    drift_tables,
    failures_table,
    report_json,
    summary_table,
)
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
    strategy: str = "schema"  # database per tenant (issue 3)
    servers: list[str] = field(default_factory=list)

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
            admin_url(self.url),
            prefix=self.prefix,
            tenant_migrations=self.tenant_migrations,
            shared_migrations=self.shared_migrations,
            **database_options(self.strategy, self.servers),
        )

    def close(self) -> None:
        if self._tenancy is not None:
            self._tenancy.dispose()


def admin_url(url: str) -> sa.URL:
    """``url`` for the CLI's admin work: an asyncio driver's URL (an async app's) gets psycopg 3.

    A bad URL is a :class:`ConfigurationError` that does not echo it.
    """
    parsed = urls.parse(url)
    return urls.sync_url(parsed) if urls.is_async(parsed) else parsed


def load_app(spec: str) -> Tenancy:
    """Import ``module:attribute`` naming a Tenancy (or a callable returning one)."""
    target = import_spec(spec, "--app")
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
    except (sa.exc.ArgumentError, ValueError):
        return "(unparseable URL)"


def tenancy_of(ctx: typer.Context) -> Tenancy:
    return ctx.ensure_object(Settings).tenancy()


UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="TENANTRY_URL", help="Database URL (main database).",
                 show_default=False),
]
JobsOpt = Annotated[
    str, typer.Option("--jobs", "-j", metavar="N|auto",
                      help="Processes migrating: this one and N-1 helpers; auto: helpers only "
                           "when the work left is worth their start-up.")
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
    strategy: Annotated[
        str, typer.Option(envvar="TENANTRY_STRATEGY", help="Isolation: schema, database or hybrid.")
    ] = "schema",
    server: Annotated[
        list[str] | None,
        typer.Option("--server", envvar="TENANTRY_SERVERS", show_default=False,
                     help="Extra server for database tenants: name=URL (repeatable; the env "
                          "variable holds several separated by spaces)."),
    ] = None,
) -> None:
    ctx.obj = Settings(url, app_spec, prefix, tenant_migrations, shared_migrations,
                       strategy=strategy, servers=list(server or []))


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
) -> None:
    """Run the shared migrations, then every tenant's. Exit 1 if any tenant failed."""
    how_many = fleet.parse_jobs(jobs)
    tenancy = tenancy_of(ctx)
    if dry_run:
        names = [t.name for t in tenancy.list_tenants() if fleet.matches(t.name, tenant)]
        if not names:
            raise ConfigurationError("--dry-run: no tenant matches")
        out.print(tenancy.migration_sql(names[0], to), highlight=False, markup=False)
        return
    started = time.monotonic()
    with MigrationProgress(out, quiet=as_json) as progress:
        report = tenancy.migrate_all(
            to, tenants=tenant, jobs=how_many, on_plan=progress.plan, on_outcome=progress.advance,
            confirm=yes, compiled=compiled,
        )
    print_report(report, as_json, time.monotonic() - started)
    if not report.ok:
        raise typer.Exit(1)


def print_report(report: MigrationReport, as_json: bool, elapsed: float = 0.0) -> None:
    if as_json:
        out.print_json(json.dumps(report_json(report, elapsed)))
        return
    out.print(summary_table(report, elapsed))
    failures = failures_table(report)
    if failures is not None:
        out.print(failures)


@app.command()
@handle_errors
def status(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    each: Annotated[bool, typer.Option("--each", help="One line per tenant.")] = False,
) -> None:
    """Revision drift at a glance: tenants per revision and state, failed/migrating ones."""
    tenancy = tenancy_of(ctx)
    rows = tenancy.status()
    if as_json:
        out.print_json(json.dumps([
            {"tenant": r.tenant, "state": r.state, "revision": r.revision, "head": r.head,
             "current": r.current, "error": r.error}
            for r in rows
        ]))
        return
    if each:
        table = Table("tenant", "state", "revision", "head", "")
        for r in rows:
            mark = "[green]current[/green]" if r.current else "[yellow]behind[/yellow]"
            table.add_row(r.tenant, r.state, r.revision or "-", r.head or "-", mark)
        out.print(table)
    head = tenancy.tenant_stream.head if tenancy.tenant_stream is not None else None
    drift = Drift.of(head, rows)
    for table in drift_tables(drift):
        out.print(table)
    out.print(f"{drift.total} tenant(s), {drift.behind} behind, {len(drift.attention)} "
              "failed or migrating", highlight=False)


@app.command()
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
) -> None:
    """Downgrade tenants to a revision (needs --yes). Exit 1 if any tenant failed."""
    how_many = fleet.parse_jobs(jobs)
    tenancy = tenancy_of(ctx)
    started = time.monotonic()
    with MigrationProgress(out, quiet=as_json) as progress:
        report = tenancy.migrate_all(
            to, tenants=tenant, jobs=how_many, on_plan=progress.plan, on_outcome=progress.advance,
            confirm=yes,
        )
    print_report(report, as_json, time.monotonic() - started)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@handle_errors
def demo(ctx: typer.Context) -> None:
    """Run the demo (on an embedded PostgreSQL unless --url is given)."""
    from .demo import run

    settings = ctx.ensure_object(Settings)
    url = settings.url or os.environ.get("TENANTRY_URL")
    run(admin_url(url).render_as_string(hide_password=False) if url else None)


@app.command("export")
@handle_errors
def export_(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant to export.", show_default=False)],
    dest: Annotated[
        Path, typer.Argument(help="New or empty directory to write.", show_default=False)
    ],
    pg_dump: Annotated[
        bool, typer.Option("--pg-dump", help="Also write a pg_dump -Fc archive of its schema.")
    ] = False,
) -> None:
    """Export one tenant's data: JSON Lines per table + manifest.json (see docs/export.md)."""
    from .progress import table_progress

    tenancy = tenancy_of(ctx)
    with table_progress(err, "exporting") as progress:
        manifest = tenancy.export_tenant(tenant, dest, pg_dump=pg_dump, progress=progress)
    rows = sum(t.rows for t in manifest.tables)
    extra = " and a pg_dump archive" if manifest.pg_dump else ""
    out.print(f"tenant {tenant}: {len(manifest.tables)} tables, {rows} rows{extra} "
              f"written to {dest}", highlight=False)


@app.command("import")
@handle_errors
def import_(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="Directory written by export.", show_default=False)],
    as_name: Annotated[
        str, typer.Option("--as", help="Name of the new tenant.", show_default=False)
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop an existing tenant of that name first.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm --replace: the existing data is destroyed.")
    ] = False,
) -> None:
    """Create a tenant from an export (refuses an existing name without --replace --yes)."""
    from .errors import ConfirmationRequired
    from .progress import table_progress

    if replace and not yes:
        raise ConfirmationRequired(
            f"--replace drops tenant {as_name!r} and its data if it exists: add --yes"
        )
    tenancy = tenancy_of(ctx)
    with table_progress(err, "importing") as progress:
        info = tenancy.import_tenant(src, as_name, replace=replace, progress=progress)
    out.print(f"tenant {info.name}: imported from {src} into {info.schema} "
              f"(revision {info.revision or '-'})", highlight=False)


# -- database per tenant (issue 3) --


def database_options(strategy: str, servers: list[str]) -> dict[str, Any]:
    """Tenancy keyword arguments for ``--strategy`` and ``--server name=URL`` options."""
    options: dict[str, Any] = {} if strategy == "schema" else {"strategy": strategy}
    parsed: dict[str, str] = {}
    for spec in servers:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url:
            raise ConfigurationError(f"--server wants name=URL, not {spec.split('=')[0]!r}=...")
        parsed[name] = admin_url(url).render_as_string(hide_password=False)
    if parsed:
        options["servers"] = parsed
    return options


@app.command()
@handle_errors
def query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(
        help="A read-only SELECT; name tenant tables as __tenant__.table.", show_default=False)],
    all_tenants: Annotated[bool, typer.Option("--all-tenants", help="Every tenant.")] = False,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Only these tenants (repeatable).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Batches run concurrently.", min=1)] = 1,
    chunk: Annotated[int, typer.Option(help="Tenants per round trip.", min=1)] = DEFAULT_CHUNK,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
) -> None:
    """Run a read-only SQL query in many tenants; each row is tagged with its tenant."""
    from .across import across

    if all_tenants == bool(tenant):
        raise ConfigurationError("pass either --all-tenants or --tenant NAME (repeatable)")
    tenancy = tenancy_of(ctx)
    names = None if all_tenants else tenant
    total = len(tenancy.list_tenants()) if names is None else len(set(names))
    with _progress(total) as advance:
        rows = across(tenancy, sa.text(sql), names, jobs=jobs, chunk=chunk, progress=advance)
        if as_json:
            for r in rows:
                print(json.dumps({"tenant": r.tenant, **r.mapping()}, default=str), flush=True)
            return
        table: Table | None = None
        for r in rows:
            if table is None:
                table = Table("tenant", *r.columns)
            table.add_row(r.tenant, *("" if v is None else str(v) for v in r.row))
    out.print(table if table is not None else "no rows")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal; a no-op callback otherwise."""
    if not err.is_terminal:
        yield lambda n: None
        return
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("tenants", total=total)
        yield lambda n: bar.advance(task, n)


OnlineOpt = Annotated[
    bool | None,
    typer.Option(
        "--online/--offline",
        help="Online: logical replication, writes wait only for the switch (needs "
        "wal_level=logical). Offline: writes wait for the whole copy. Default: online when "
        "the source server allows it.",
        show_default=False,
    ),
]


@app.command()
@handle_errors
def move(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant name.", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="Target server name.", show_default=False)],
    online: OnlineOpt = None,
) -> None:
    """Move a database tenant to another server (copy, switch, drop the source)."""
    info = tenancy_of(ctx).move_tenant(name, to=to, online=online)
    out.print(f"tenant {info.name}: now on server {info.location.server}", highlight=False)


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


# -- hybrid placement (issue 5) --


@app.command()
@handle_errors
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant name.", show_default=False)],
    to_server: Annotated[
        str | None,
        typer.Option("--to-server", help="Server of the new database (default: the placement "
                     "policy's choice).", show_default=False),
    ] = None,
    drop_foreign_keys: Annotated[
        bool, typer.Option("--drop-foreign-keys",
                           help="Promote without foreign keys to tables outside the tenant.")
    ] = False,
    online: OnlineOpt = None,
) -> None:
    """Move a schema tenant into its own database (--strategy hybrid)."""
    info = tenancy_of(ctx).promote_tenant(
        name, to_server=to_server, drop_foreign_keys=drop_foreign_keys, online=online
    )
    out.print(f"tenant {info.name}: database {info.location.database} on server "
              f"{info.location.server}", highlight=False)


@app.command()
@handle_errors
def demote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant name.", show_default=False)],
    online: OnlineOpt = None,
) -> None:
    """Move a database tenant back into a schema of the main database (--strategy hybrid)."""
    info = tenancy_of(ctx).demote_tenant(name, online=online)
    out.print(f"tenant {info.name}: schema {info.schema} of the main database", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()

"""The Typer application: the global options and every command, in help order."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..names import DEFAULT_PREFIX
from . import (
    adopting,
    demo,
    devserver,
    doctor,
    domains,
    history,
    init,
    migrating,
    query,
    relocation,
    revision,
    running,
    suspension,
    tenants,
    transfer,
    webconsole,
)
from .options import (
    AlembicIniOpt,
    SharedSectionOpt,
    SharedVersionTableOpt,
    TenantSectionOpt,
    TenantVersionTableOpt,
    UrlOpt,
    VersionTableOpt,
)
from .settings import Settings

app = typer.Typer(
    name="tenantry",
    help="Multi-tenancy for SQLAlchemy + Alembic on PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def options(
    ctx: typer.Context,
    url: UrlOpt = None,
    app_spec: Annotated[
        str | None,
        typer.Option("--app", envvar="TENANTRY_APP",
                     help="module:attribute of your Tenancy (overrides the options below; "
                          "default: alembic.ini's [tenantry] app, unless --url is given)."),
    ] = None,
    prefix: Annotated[
        str, typer.Option(envvar="TENANTRY_PREFIX", help="Schema/database name prefix.")
    ] = DEFAULT_PREFIX,
    tenant_migrations: Annotated[
        Path | None,
        typer.Option(envvar="TENANTRY_TENANT_MIGRATIONS",
                     help="Tenant stream: a folder holding versions/, or an alembic.ini."),
    ] = None,
    shared_migrations: Annotated[
        Path | None,
        typer.Option(envvar="TENANTRY_SHARED_MIGRATIONS",
                     help="Shared stream: a folder holding versions/, or an alembic.ini."),
    ] = None,
    alembic_ini: AlembicIniOpt = None,
    tenant_section: TenantSectionOpt = None,
    shared_section: SharedSectionOpt = None,
    version_table: VersionTableOpt = None,
    tenant_version_table: TenantVersionTableOpt = None,
    shared_version_table: SharedVersionTableOpt = None,
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
    url_source = getattr(ctx.get_parameter_source("url"), "name", None)  # typer's click or click
    if app_spec is None and url_source != "COMMANDLINE":
        app_spec = revision.project_app()  # alembic.ini's [tenantry] app, as `tenantry init` writes
    ctx.obj = Settings(url, app_spec, prefix, tenant_migrations, shared_migrations,
                       strategy=strategy, servers=list(server or []), alembic_ini=alembic_ini,
                       tenant_section=tenant_section, shared_section=shared_section,
                       version_table=version_table, tenant_version_table=tenant_version_table,
                       shared_version_table=shared_version_table)


app.command()(init.init)
app.command()(revision.revision)
app.command()(tenants.create)
app.command()(tenants.update)
app.command()(tenants.drop)
app.command()(tenants.rename)
app.command()(suspension.suspend)
app.command()(suspension.resume)
app.command()(history.history)
app.command()(adopting.adopt)
app.command("list")(tenants.list_)
app.command()(migrating.migrate)
app.command()(migrating.status)
app.command()(migrating.downgrade)
app.command()(demo.demo)
app.command()(devserver.dev)
app.command("export")(transfer.export_)
app.command("import")(transfer.import_)
app.command()(query.query)
app.command()(relocation.move)
app.command()(doctor.doctor)
app.command()(relocation.promote)
app.command()(relocation.demote)
app.add_typer(domains.app)
app.command()(webconsole.console)
app.command("run")(running.run)


def main() -> None:
    """Console-script entry point."""
    app()

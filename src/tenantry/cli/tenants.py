"""Commands on tenants themselves: create, drop, rename, list."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from .console import out
from .exits import handle_errors
from .options import JsonOpt
from .settings import tenancy_of


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


@handle_errors
def rename(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(show_default=False)],
    new: Annotated[str, typer.Argument(show_default=False)],
) -> None:
    """Rename a tenant (and its storage)."""
    info = tenancy_of(ctx).rename_tenant(old, new)
    out.print(f"tenant {old} is now {info.name} ({info.schema})", highlight=False)


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

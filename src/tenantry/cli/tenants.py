"""Commands on tenants themselves: create, update, drop, rename, list."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from .console import out
from .exits import handle_errors
from .options import JsonOpt
from .records import SetOpt, WhereOpt, cells, fields, jsonable, values_of, where_of
from .settings import tenancy_of


@handle_errors
def create(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Tenant names.", show_default=False)],
    set_: SetOpt = None,
) -> None:
    """Create tenants (idempotent: an existing one is left as it is), with --set record fields."""
    tenancy = tenancy_of(ctx)
    record = values_of(set_)
    for name in names:
        info = tenancy.create_tenant(name, record=record)
        out.print(f"tenant {info.name}: {info.state} in {info.schema} "
                  f"(revision {info.revision or '-'})", highlight=False)


@handle_errors
def update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant name.", show_default=False)],
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set fields of a tenant's record (--set FIELD=VALUE, repeatable)."""
    values = values_of(set_)
    if not values:
        raise typer.BadParameter("give at least one --set FIELD=VALUE")
    info = tenancy_of(ctx).update_tenant(name, **values)
    if as_json:
        out.print_json(json.dumps({"name": info.name, "record": jsonable(info.record)}))
        return
    shown = ", ".join(f"{k}={v}" for k, v in zip(info.record, cells(list(info.record),
                                                                     info.record), strict=True))
    out.print(f"tenant {info.name}: {shown}", highlight=False, markup=False)


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
def list_(ctx: typer.Context, as_json: JsonOpt = False, where: WhereOpt = None) -> None:
    """List tenants (with their records; --where filters on them)."""
    tenancy = tenancy_of(ctx)
    tenants = tenancy.list_tenants(where=where_of(where))
    extra = fields(tenancy)
    if as_json:
        out.print_json(json.dumps([
            {"name": t.name, "strategy": t.strategy, "schema": t.schema,
             "database": t.location.database, "server": t.location.server,
             "state": t.state.value, "reason": t.reason, "revision": t.revision,
             **({"record": jsonable(t.record)} if extra else {})}
            for t in tenants
        ]))
        return
    table = Table("tenant", "strategy", "location", "state", "revision", *extra)
    for t in tenants:
        place = t.schema if t.location.database is None else f"{t.location.database}/{t.schema}"
        state = f"{t.state.value} ({t.reason})" if t.reason else t.state.value
        table.add_row(t.name, t.strategy, place, state, t.revision or "-",
                      *cells(extra, t.record))
    out.print(table)
    out.print(f"{len(tenants)} tenant(s)")

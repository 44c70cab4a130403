"""`tenantry history`: the lifecycle events of a tenant, or of the fleet."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ..core.history import plain
from .console import out
from .exits import handle_errors
from .options import JsonOpt
from .settings import tenancy_of


@handle_errors
def history(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A tenant (default: all).",
                                               show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many events, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show lifecycle events (created, migrated, suspended...), newest first."""
    entries = tenancy_of(ctx).history(name, limit=limit)
    if as_json:
        out.print_json(json.dumps([
            {"tenant": e.tenant, "event": e.event, "at": e.at.isoformat(),
             "details": plain(e.details)} for e in entries
        ]))
        return
    table = Table("at", "tenant", "event", "details")
    for e in entries:
        details = ", ".join(f"{k}={v}" for k, v in e.details.items() if v is not None)
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.tenant or "(fleet)", e.event, details)
    out.print(table)

"""Commands that move a tenant's storage: move, promote, demote."""

from __future__ import annotations

from typing import Annotated

import typer

from .console import out
from .exits import handle_errors
from .options import OnlineOpt
from .settings import tenancy_of


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


@handle_errors
def demote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant name.", show_default=False)],
    online: OnlineOpt = None,
) -> None:
    """Move a database tenant back into a schema of the main database (--strategy hybrid)."""
    info = tenancy_of(ctx).demote_tenant(name, online=online)
    out.print(f"tenant {info.name}: schema {info.schema} of the main database", highlight=False)

"""Suspending and resuming tenants from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from .console import out
from .exits import handle_errors
from .settings import tenancy_of


@handle_errors
def suspend(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Tenant names.", show_default=False)],
    reason: Annotated[str | None, typer.Option(help="Why (shown in errors and status).")] = None,
) -> None:
    """Suspend tenants: their data is kept and migrated, their sessions and requests refused."""
    tenancy = tenancy_of(ctx)
    for name in names:
        info = tenancy.suspend_tenant(name, reason=reason)
        out.print(f"tenant {info.name}: {info.state}" + (f" ({reason})" if reason else ""),
                  highlight=False)


@handle_errors
def resume(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Tenant names.", show_default=False)],
) -> None:
    """Resume suspended tenants."""
    tenancy = tenancy_of(ctx)
    for name in names:
        out.print(f"tenant {name}: {tenancy.resume_tenant(name).state}", highlight=False)

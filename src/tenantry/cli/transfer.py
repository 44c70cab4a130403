"""Commands that copy one tenant's data out and in: export, import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfirmationRequired
from ..transfer import Manifest
from .console import err, out
from .exits import handle_errors
from .progress import table_progress
from .settings import tenancy_of


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
    tenancy = tenancy_of(ctx)
    with table_progress(err, "exporting") as progress:
        manifest = tenancy.export_tenant(tenant, dest, pg_dump=pg_dump, progress=progress)
    rows = sum(t.rows for t in manifest.tables)
    extra = " and a pg_dump archive" if manifest.pg_dump else ""
    out.print(f"tenant {tenant}: {len(manifest.tables)} tables, {rows} rows{extra} "
              f"written to {dest}", highlight=False)


@handle_errors
def import_(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="Directory written by export.", show_default=False)],
    as_name: Annotated[
        str | None,
        typer.Option("--as", help="Name of the new tenant (default: the exported tenant's).",
                     show_default=False),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop an existing tenant of that name first.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm --replace: the existing data is destroyed.")
    ] = False,
) -> None:
    """Create a tenant from an export (refuses an existing name without --replace --yes)."""
    if as_name is None:
        as_name = Manifest.read(src).tenant
    if replace and not yes:
        raise ConfirmationRequired(
            f"--replace drops tenant {as_name!r} and its data if it exists: add --yes"
        )
    tenancy = tenancy_of(ctx)
    with table_progress(err, "importing") as progress:
        info = tenancy.import_tenant(src, as_name, replace=replace, progress=progress)
    out.print(f"tenant {info.name}: imported from {src} into {info.schema} "
              f"(revision {info.revision or '-'})", highlight=False)

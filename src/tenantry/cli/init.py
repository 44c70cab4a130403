"""The ``init`` command: an application's two streams, models and settings, written once."""

from __future__ import annotations

import keyword
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigurationError
from .console import out
from .exits import handle_errors
from .init_files import Layout


class ProjectFileExists(ConfigurationError):
    """``tenantry init`` would overwrite files (pass ``--force`` to replace them)."""


def write_project(folder: Path, layout: Layout, *, force: bool = False) -> list[Path]:
    """Write ``layout``'s files under ``folder``; refuse to overwrite any unless ``force``."""
    if not layout.package.isidentifier() or keyword.iskeyword(layout.package):
        raise ConfigurationError(f"--package must be a Python module name, not "
                                 f"{layout.package!r}")
    files = {folder / name: text for name, text in layout.files().items()}
    existing = sorted(str(path.relative_to(folder)) for path in files if path.exists())
    if existing and not force:
        raise ProjectFileExists(
            f"refused: {len(existing)} file(s) exist in {str(folder)!r} "
            f"({', '.join(existing)}); nothing was written (--force replaces them)"
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(files)


@handle_errors
def init(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Argument(help="Project folder (created if needed).", show_default=True)
    ] = Path("."),
    use_async: Annotated[
        bool, typer.Option("--async", help="An AsyncTenancy (asyncio sessions).")
    ] = False,
    fastapi: Annotated[
        bool, typer.Option("--fastapi", help="A FastAPI app using tenantry.web (implies --async).")
    ] = False,
    package: Annotated[
        str, typer.Option("--package", help="Name of the application package.")
    ] = "app",
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Write the tenant and shared streams (autogenerate-ready env.py), models and settings."""
    layout = Layout(package=package, use_async=use_async, fastapi=fastapi)
    written = write_project(folder, layout, force=force)
    for path in written:
        out.print(f"wrote {path}", highlight=False)
    steps = Table("next", "what it does", title=f"From {folder}:", title_justify="left")
    for command, what in layout.next_steps():
        steps.add_row(command, what)
    out.print(steps)

"""The project's alembic.ini: the ``revision`` command, and the ``[tenantry]`` section's app."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Annotated

import typer
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

from ..errors import ConfigurationError, MigrationError
from .console import out
from .exits import handle_errors

#: The configuration file ``tenantry init`` writes, read from the working directory.
ALEMBIC_INI = Path("alembic.ini")


def project_app(path: Path = ALEMBIC_INI) -> str | None:
    """The ``app`` of ``path``'s ``[tenantry]`` section (``module:attribute``), if any (none
    when the file does not parse: Alembic reports that when it reads it)."""
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return None
    return parser.get("tenantry", "app", fallback=None) or None


def stream_config(path: Path, stream: str) -> Config:
    """Alembic's configuration of ``stream`` (the ``[tenant]`` or ``[shared]`` section)."""
    if not path.is_file():
        raise ConfigurationError(f"no {str(path)!r} here: run `tenantry init` first (or -c FILE)")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    if not parser.has_section(stream):
        raise ConfigurationError(f"{str(path)!r} has no [{stream}] section")
    return Config(file_=str(path), ini_section=stream)


@handle_errors
def revision(
    ctx: typer.Context,
    message: Annotated[str | None, typer.Option("--message", "-m", help="The message.")] = None,
    autogenerate: Annotated[
        bool, typer.Option("--autogenerate", help="Compare the models with the stream's head.")
    ] = False,
    shared: Annotated[
        bool, typer.Option("--shared", help="The shared stream (default: the tenant stream).")
    ] = False,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Alembic configuration file.")
    ] = ALEMBIC_INI,
) -> None:
    """Write a revision of the tenant (or --shared) stream with Alembic, from alembic.ini."""
    stream = "shared" if shared else "tenant"
    cfg = stream_config(config, stream)
    try:
        scripts = command.revision(cfg, message=message, autogenerate=autogenerate)
    except MigrationError:
        raise
    except CommandError as exc:
        raise MigrationError(f"{stream} revision: {exc}") from exc
    for script in scripts if isinstance(scripts, list) else [scripts]:
        if script is not None:
            out.print(f"wrote {script.path}", highlight=False)

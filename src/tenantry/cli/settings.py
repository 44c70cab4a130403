"""The global options and the Tenancy they describe (``--url``, ``--app``, ``--server``, the
migration streams and their version tables)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import typer

from .. import urls
from ..aio import AsyncTenancy
from ..errors import ConfigurationError
from ..loading import import_spec
from ..migrations.streamconfig import Stream
from ..tenancy import Tenancy


@dataclass
class Settings:
    """What the global options say; the Tenancy is built on first use."""

    url: str | None
    app: str | None
    prefix: str
    tenant_migrations: Path | None
    shared_migrations: Path | None
    _tenancy: Tenancy | None = field(default=None, repr=False)
    strategy: str = "schema"  # schema, database or hybrid
    servers: list[str] = field(default_factory=list)
    alembic_ini: Path | None = None  # the ini file that the sections below are read from
    tenant_section: str | None = None
    shared_section: str | None = None
    version_table: str | None = None  # both streams' unless one names its own
    tenant_version_table: str | None = None
    shared_version_table: str | None = None

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
            **self.stream_options(),
            **database_options(self.strategy, self.servers),
        )

    def stream_options(self) -> dict[str, Any]:
        """Tenancy keyword arguments for the options naming the streams and version tables."""
        if self.alembic_ini is not None and not (self.tenant_section or self.shared_section):
            raise ConfigurationError(
                "--alembic-ini (TENANTRY_ALEMBIC_INI) needs --tenant-section or --shared-section"
            )
        options: dict[str, Any] = {
            "tenant_migrations": stream_of("tenant", self.tenant_migrations, self.alembic_ini,
                                           self.tenant_section, self.tenant_version_table),
            "shared_migrations": stream_of("shared", self.shared_migrations, self.alembic_ini,
                                           self.shared_section, self.shared_version_table),
        }
        if self.version_table is not None:
            options["version_table"] = self.version_table
        return options

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
    """Import ``module:attribute`` naming a Tenancy or an AsyncTenancy (or a callable returning
    one), from the current directory as ``uvicorn``, ``flask`` and ``alembic`` do."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    target = import_spec(spec, "--app")
    if callable(target) and not isinstance(target, Tenancy | AsyncTenancy):
        target = target()
    if isinstance(target, AsyncTenancy):
        target = target.admin  # the CLI's work is admin work: the sync Tenancy it wraps
    if not isinstance(target, Tenancy):
        raise ConfigurationError(
            f"--app {spec!r} is a {type(target).__name__}, not a Tenancy or an AsyncTenancy"
        )
    return target


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


def stream_of(
    kind: str, path: Path | None, ini: Path | None, section: str | None, version_table: str | None
) -> Stream | None:
    """The ``kind`` stream that ``--{kind}-migrations``, ``--{kind}-section`` (of ``path`` if it
    is an ini file, else of ``--alembic-ini``) and ``--{kind}-version-table`` describe."""
    if section is not None:
        if path is not None and path.is_dir():
            raise ConfigurationError(
                f"--{kind}-section names a section of an alembic.ini, but --{kind}-migrations "
                f"{str(path)!r} is a folder"
            )
        return Stream(ini=path or ini or Path("alembic.ini"), section=section,
                      version_table=version_table)
    if path is None:
        if version_table is not None:
            raise ConfigurationError(
                f"--{kind}-version-table without a {kind} stream (--{kind}-migrations or "
                f"--{kind}-section)"
            )
        return None
    if path.is_file() or path.suffix == ".ini":
        return Stream(ini=path, version_table=version_table)
    return Stream(script_location=path, version_table=version_table)


def tenancy_of(ctx: typer.Context) -> Tenancy:
    """The Tenancy of this invocation, built from the global options on first use."""
    return ctx.ensure_object(Settings).tenancy()

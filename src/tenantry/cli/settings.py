"""The global options and the Tenancy they describe (``--url``, ``--app``, ``--server``)."""

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
            tenant_migrations=self.tenant_migrations,
            shared_migrations=self.shared_migrations,
            **database_options(self.strategy, self.servers),
        )

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


def tenancy_of(ctx: typer.Context) -> Tenancy:
    """The Tenancy of this invocation, built from the global options on first use."""
    return ctx.ensure_object(Settings).tenancy()

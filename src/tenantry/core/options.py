"""What a Tenancy's options may be: the strategies, the provisioning modes, the main engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from ..errors import ConfigurationError
from ..strategies import SchemaStrategy, Strategy
from ..strategies.database import DatabaseStrategy
from ..strategies.hybrid import HybridStrategy
from ..urls import sync_engine_url

STRATEGIES: dict[str, type[Strategy]] = {
    SchemaStrategy.kind: SchemaStrategy,
    DatabaseStrategy.kind: DatabaseStrategy,
    HybridStrategy.kind: HybridStrategy,
}
#: Options of the tenant engine registry (also the login pools of schema tenants).
pool_options = ("max_engines", "max_parked", "max_connections", "pool_size", "budget_timeout")
PROVISIONING = ("auto", "template", "migrations")


def make_engine(url: str | URL, **options: Any) -> Engine:
    """An engine for ``url``; a bare ``postgresql://`` URL gets the psycopg 3 driver.

    A bad URL, an asyncio or missing driver: :class:`ConfigurationError` (see :mod:`.urls`).
    """
    return sa.create_engine(sync_engine_url(url), **options)


def one_of(option: str, value: object, allowed: Sequence[object]) -> None:
    """:class:`ConfigurationError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigurationError(
            f"{option} must be one of {', '.join(map(repr, allowed))}, not {value!r}"
        )

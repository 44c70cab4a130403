"""Async engines for tenantry: driver selection and URL conversion between sync and async."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import ConfigurationError
from ..hooks import instrumentation
from ..urls import ASYNCPG_ONLY, sync_url

__all__ = ["DRIVERS", "Driver", "async_url", "make_async_engine", "sync_url"]

Driver = Literal["psycopg", "asyncpg"]

#: Async drivers tenantry supports, by the name users pass as ``driver=``.
DRIVERS: dict[str, str] = {"psycopg": "postgresql+psycopg", "asyncpg": "postgresql+asyncpg"}


def async_url(url: str | URL, driver: Driver | None = None) -> URL:
    """``url`` with an async PostgreSQL driver (default: keep asyncpg if named, else psycopg)."""
    parsed = sa.make_url(url)
    backend, _, current = parsed.drivername.partition("+")
    if backend not in ("postgresql", "postgres"):
        raise ConfigurationError(f"tenantry needs PostgreSQL, not {parsed.drivername!r}")
    if driver is None:
        driver = "asyncpg" if current == "asyncpg" else "psycopg"
    if driver not in DRIVERS:
        raise ConfigurationError(
            f"unknown async driver {driver!r}; choose one of {sorted(DRIVERS)}"
        )
    if driver != "asyncpg":
        parsed = parsed.difference_update_query(ASYNCPG_ONLY)
    return parsed.set(drivername=DRIVERS[driver])


def make_async_engine(url: str | URL, driver: Driver | None = None, **options: Any) -> AsyncEngine:
    """An :class:`~sqlalchemy.ext.asyncio.AsyncEngine` on ``url``, instrumented for tenantry.

    ``driver`` is ``"psycopg"`` (psycopg 3 async, the default) or ``"asyncpg"``.
    """
    engine = create_async_engine(async_url(url, driver), **options)
    instrumentation.instrument(engine)
    return engine

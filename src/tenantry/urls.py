"""Database URLs checked before an engine is made; errors never echo the URL (its password)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .errors import ConfigurationError

#: What a database URL looks like, for error messages.
EXAMPLE = "postgresql://user:password@host:port/database"


def parse(url: str | URL) -> URL:
    """``url`` parsed; :class:`ConfigurationError` if it cannot be (a port that is not a number,
    an IPv6 host with an unbalanced bracket, no scheme...)."""
    if isinstance(url, URL):
        return url
    try:
        return sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: the port; never echo the URL
        raise ConfigurationError(
            f"cannot parse the database URL (is the port a number, an IPv6 host bracketed?); "
            f"expected {EXAMPLE}"
        ) from None


#: Query-string options that only the asyncpg dialect understands (psycopg rejects them).
ASYNCPG_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")


def sync_url(url: str | URL) -> URL:
    """The psycopg 3 (sync) twin of a URL of any PostgreSQL driver (admin work, probes)."""
    parsed = parse(url).difference_update_query(ASYNCPG_ONLY)
    return parsed.set(drivername="postgresql+psycopg")


def is_async(url: URL) -> bool:
    """Whether ``url`` names an asyncio driver (asyncpg, psycopg_async)."""
    return bool(_dialect(url).is_async)


def sync_engine_url(url: str | URL) -> URL:
    """``url`` ready for a sync engine: a bare ``postgresql://`` gets psycopg 3.

    :class:`ConfigurationError` for an unparseable URL, another database, an asyncio driver or
    a driver whose package is not installed.
    """
    parsed = parse(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise ConfigurationError(f"tenantry needs PostgreSQL, not {parsed.drivername!r}")
    dialect = _dialect(parsed)
    if dialect.is_async:
        raise ConfigurationError(
            f"{parsed.drivername} is an asyncio driver; Tenancy needs a sync one "
            f"(postgresql+psycopg://...): for asyncio use AsyncTenancy(url, driver=...)"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigurationError(
            f"the driver of {parsed.drivername} is not installed ({exc}): install it, or use "
            "postgresql+psycopg:// (psycopg 3, tenantry's default)"
        ) from None
    return parsed


def _dialect(url: URL) -> type[sa.engine.Dialect]:
    try:
        return url.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise ConfigurationError(f"unknown database driver {url.drivername!r}") from None

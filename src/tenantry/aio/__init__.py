"""asyncio support: :class:`AsyncTenancy` on SQLAlchemy's asyncio extension.

Named ``tenantry.aio`` so that it never shadows the standard library's :mod:`asyncio`.
psycopg 3 async is the default driver; asyncpg is an option (``driver="asyncpg"``).
"""

from .engine import DRIVERS, async_url, make_async_engine, sync_url
from .tenancy import SYNC_ONLY, AsyncTenancy, SessionOpener

__all__ = [
    "DRIVERS",
    "SYNC_ONLY",
    "AsyncTenancy",
    "SessionOpener",
    "async_url",
    "make_async_engine",
    "sync_url",
]

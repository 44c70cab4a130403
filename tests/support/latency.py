"""Timing errors with the pool exhausted: what "fast" means, and the timers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from tenantry import make_engine
from tenantry.models import TENANT_SCHEMA

#: What "in milliseconds" means here; the pool would make it POOL_TIMEOUT.
FAST = 0.05


POOL_TIMEOUT = 2


#: The first error on a database that needs the probe opens it: one connection set-up (about
#: 10 ms on an idle machine, up to ~80 ms on the loaded test machine), still no pool wait.
COLD = POOL_TIMEOUT / 4


#: Warm errors are timed this many times: the best is within FAST (a loaded machine may stall
#: any one of them), and none comes near a pool wait.
TRIES = 3


DRIVERS = ["psycopg", "asyncpg"]


# A tenant table that does not exist: the ORM routes it to the tenant's schema, so PostgreSQL
# names the tenant's schema in its error, as it would if the schema had vanished.
TYPO = sa.Table("custmers", sa.MetaData(), sa.Column("id", sa.Integer), schema=TENANT_SCHEMA)


def timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    start = time.perf_counter()
    try:
        call()
    except Exception as error:
        return error, time.perf_counter() - start
    raise AssertionError("no error")


def drop_schema(url: str, schema: str) -> None:
    """Drop a tenant's schema behind tenantry's back (outside its pool)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        engine.dispose()


def quick(times: list[float]) -> None:
    """Best of the warm attempts within FAST; none near a pool wait."""
    assert len(times) == TRIES and min(times) <= FAST and max(times) < COLD, times


async def ahold(session: AsyncSession) -> None:
    await session.execute(sa.text("SELECT 1"))
    pool = (await session.connection()).engine.sync_engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.checkedout() == pool.size() + pool.overflow() >= 1


async def atimed(call: Callable[[], Any]) -> tuple[BaseException, float]:
    start = time.perf_counter()
    try:
        await call()
    except Exception as error:
        return error, time.perf_counter() - start
    raise AssertionError("no error")

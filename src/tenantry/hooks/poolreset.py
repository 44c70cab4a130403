"""Reset a connection that ran as a tenant role before the pool hands it out again.

A checkout that switched to a tenant's role (:mod:`tenantry.hooks.settings` marks it) can leave
session state behind: a session-level ``SET ROLE``, other settings, ``WITH HOLD`` cursors, temp
tables, ``LISTEN`` registrations, advisory locks. The pool's ``reset`` event (on tenantry's
engines only) clears it when the connection goes back, with what ``DISCARD ALL`` does except
``DEALLOCATE ALL`` (:data:`RESET`, one round trip, outside a transaction block: psycopg's
connection is switched to autocommit for it).

Prepared statements are kept: ``EXECUTE`` checks the privileges of whoever runs it, so they
carry no data from one checkout to the next, and the drivers' own statement caches (asyncpg's,
psycopg's automatic preparation) stay valid; psycopg does not reliably notice a
``DISCARD ALL``, so deallocating them under it would break its cache.

Checkouts that never switched role or path are left alone, and the hook is only added to a
pool once a checkout needs it, so outside strict mode and ``routing="search_path"`` the reset
costs nothing (a pool ``reset`` listener alone costs SQLAlchemy some work at every check-in).
A reset that fails invalidates the connection (SQLAlchemy closes it instead of pooling it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState
from sqlalchemy.util import await_only

#: Key in the pool record's ``info``: session state of this checkout (present: it ran as a
#: tenant role), forgotten when the connection is reset.
SESSION_STATE = "tenantry_session"

#: ``DISCARD ALL`` without ``DEALLOCATE ALL`` (role, settings, cursors, listeners, advisory
#: locks, plans, temp tables, sequence state).
RESET = (
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES"
)


def mark(conn: Connection) -> dict[str, Any]:
    """Have ``conn``'s DBAPI connection reset when it goes back to the pool; returns the dict
    where the checkout's session state is kept until then. The reset hook is added to the
    engine's pool on first need, so pools that never run as a tenant role pay nothing."""
    install(conn.engine)
    state: dict[str, Any] = conn.connection.info.setdefault(SESSION_STATE, {})
    return state


def install(engine: Engine) -> None:
    """Reset ``engine``'s marked connections at check-in (idempotent)."""
    hook = _hook_for(engine)
    if hook not in engine.pool.dispatch.reset:
        event.listen(engine, "reset", hook)


def installed(engine: Engine) -> bool:
    return _hook_for(engine) in engine.pool.dispatch.reset


def _hook_for(engine: Engine) -> Any:
    if engine.dialect.driver == "asyncpg":
        return reset_asyncpg
    return reset_psycopg_async if engine.dialect.is_async else reset_psycopg


def _due(record: ConnectionPoolEntry, state: PoolResetState) -> bool:
    """Whether to reset now: the checkout ran as a tenant and the connection stays pooled."""
    used = record.info.pop(SESSION_STATE, None) is not None
    return used and state.asyncio_safe and not state.terminate_only


def reset_psycopg(
    dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """The ``reset`` hook of sync psycopg engines."""
    if _due(record, state):
        _in_autocommit(dbapi_connection, lambda: dbapi_connection.execute(RESET))


def reset_psycopg_async(
    dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """The ``reset`` hook of async psycopg engines (runs in SQLAlchemy's greenlet)."""
    if _due(record, state):
        driver = dbapi_connection.driver_connection
        _in_autocommit(dbapi_connection, lambda: await_only(driver.execute(RESET)))


def _in_autocommit(dbapi_connection: Any, run: Callable[[], object]) -> None:
    """End the transaction, then ``run`` outside one (``DISCARD``-like statements refuse
    transaction blocks)."""
    dbapi_connection.rollback()
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        run()
    finally:
        dbapi_connection.autocommit = autocommit


def reset_asyncpg(
    dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """The ``reset`` hook of asyncpg engines: outside a transaction, one simple query."""
    if not _due(record, state):
        return
    dbapi_connection.rollback()
    await_only(dbapi_connection.driver_connection.execute(RESET))

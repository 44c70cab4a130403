"""Strict mode: the tenant's role in force on every door of a connection.

Routing gives a strict tenant's connections the ``tenantry_role`` execution option. These
engine hooks act on it (and do nothing for connections without it):

* ``begin``: ``SET LOCAL ROLE`` as each transaction starts (ORM sessions, Core connections).
* ``begin_twophase`` (``begin_twophase()``, ``Session(twophase=True)``): the driver must start
  the two-phase transaction itself, so ``SET LOCAL ROLE`` precedes its first statement.
* ``before_cursor_execute``: an AUTOCOMMIT connection has no transaction for ``SET LOCAL``, so
  its first statement is preceded by a session-level ``SET ROLE``, issued once per checkout and
  remembered in the pool record's ``info``. A transaction ended behind SQLAlchemy's back
  (``COMMIT`` sent as SQL) is noticed from the driver's transaction status, and the role is
  set again before the next statement. An admin connection
  (:meth:`~tenantry.Tenancy.admin_connection`) runs each statement that names a tenant as that
  tenant's role (``SET ROLE`` before it) and, after one such statement, every other statement
  as the application (``RESET ROLE`` before it).

Every switch marks the checkout, so :mod:`tenantry.hooks.poolreset` resets the connection when it
goes back to the pool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..names import quote
from ..strict.rolenames import ROLE_OPTION
from . import poolreset
from .statements import StatementSchemas

_ROLE = "role"  # session state: the role SET at session level in this checkout
_ADMIN = "admin"  # session state: an admin connection switched role in this checkout
_TWO_PHASE = "two_phase"  # session state: a two-phase transaction began, role not yet set
_IDLE = 0  # libpq PQTRANS_IDLE: no transaction block
_SWITCHING = "tenantry_switching_role"  # execution option of the begin hook's own statement


def install(engine: Engine) -> None:
    """Add the role hooks to ``engine`` (idempotent)."""
    if not installed(engine):
        event.listen(engine, "begin", _begin)
        event.listen(engine, "begin_twophase", _begin_twophase)
        event.listen(engine, "before_cursor_execute", _before_cursor_execute, retval=True)


def installed(engine: Engine) -> bool:
    dispatch = engine.dispatch
    return (
        _begin in dispatch.begin
        and _begin_twophase in dispatch.begin_twophase
        and _before_cursor_execute in dispatch.before_cursor_execute
    )


def _begin(conn: Connection) -> None:
    role = conn.get_execution_options().get(ROLE_OPTION)
    if role and not conn.connection.dbapi_connection.autocommit:  # type: ignore[union-attr]
        poolreset.mark(conn.connection)
        sql = f"SET LOCAL ROLE {quote(role)}"
        # never a server-side cursor, whatever the connection streams (a DECLARE cannot SET)
        conn.exec_driver_sql(sql, execution_options={
            _SWITCHING: True, "stream_results": False, "yield_per": None,
        })


def _begin_twophase(conn: Connection, xid: Any) -> None:
    if conn.get_execution_options().get(ROLE_OPTION):
        poolreset.mark(conn.connection)[_TWO_PHASE] = True


def _before_cursor_execute(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> tuple[str, Any]:
    options = context.execution_options if context is not None else conn.get_execution_options()
    schemas = options.get("schema_translate_map")
    if isinstance(schemas, StatementSchemas):
        _per_statement(conn, schemas.role)
    elif options.get(ROLE_OPTION) and not options.get(_SWITCHING):
        _role_beyond_begin(conn, options[ROLE_OPTION])
    return statement, parameters


def _role_beyond_begin(conn: Connection, role: str) -> None:
    """The role where ``begin`` could not set it: the first statement of a two-phase
    transaction; outside a transaction block (AUTOCOMMIT: ``SET ROLE`` once per checkout);
    after a transaction ended behind SQLAlchemy's back (``COMMIT`` sent as SQL)."""
    pooled = conn.connection
    state = pooled.info.get(poolreset.SESSION_STATE)
    if state is not None and state.pop(_TWO_PHASE, False):
        _run(conn, f"SET LOCAL ROLE {quote(role)}")
        return
    raw = pooled.driver_connection
    if not _outside_transaction(raw):
        return  # the transaction's SET LOCAL ROLE is in force
    state = poolreset.mark(pooled)
    if not pooled.dbapi_connection.autocommit and not _is_asyncpg(raw):  # type: ignore[union-attr]
        _run(conn, f"SET LOCAL ROLE {quote(role)}")  # psycopg opens the next transaction
        return
    if state.get(_ROLE) != role:
        _run(conn, f"SET ROLE {quote(role)}")
        state[_ROLE] = role


def _is_asyncpg(raw: Any) -> bool:
    return hasattr(raw, "is_in_transaction")


def _outside_transaction(raw: Any) -> bool:
    """Whether the server is outside a transaction block (asyncpg or psycopg connection)."""
    if _is_asyncpg(raw):
        return not raw.is_in_transaction()
    return bool(raw.info.transaction_status == _IDLE)


def _per_statement(conn: Connection, role: str | None) -> None:
    """An admin connection: the statement runs as its tenant's role, or as the application."""
    pooled = conn.connection
    if role is not None:
        poolreset.mark(pooled)[_ADMIN] = True
        _run(conn, f"SET ROLE {quote(role)}")
    elif pooled.info.get(poolreset.SESSION_STATE, {}).get(_ADMIN):
        _run(conn, "RESET ROLE")


def _run(conn: Connection, sql: str) -> None:
    """Run ``sql`` on ``conn``'s DBAPI connection (in its transaction, if one is open)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()

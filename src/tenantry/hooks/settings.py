"""Per-transaction settings: strict mode's tenant role, and the ``search_path`` of
``routing="search_path"``, in force on every door of a connection.

Routing gives a tenant's connections the ``tenantry_role`` (strict mode) and
``tenantry_search_path`` (search_path routing) execution options. :func:`before_statement`,
called by :mod:`tenantry.hooks.guard`'s dialect hook just before the driver runs a statement,
acts on them (and does nothing for connections without them):

* in a transaction (ORM sessions, Core connections, two-phase transactions, savepoints): the
  first statement of each transaction is preceded by ``SET LOCAL ROLE`` and/or
  ``SET LOCAL search_path`` (one round trip). The transaction is known by SQLAlchemy's
  transaction object and the driver's transaction status, so a transaction ended behind
  SQLAlchemy's back (``COMMIT`` sent as SQL) gets them again before its next statement.
  ``SET LOCAL`` lasts as long as the transaction: correct behind PgBouncer's transaction
  pooling;
* AUTOCOMMIT: there is no transaction for ``SET LOCAL``, so the first statement is preceded by
  session-level ``SET``s, issued once per checkout (not for PgBouncer transaction pooling);
* an admin connection (:meth:`~tenantry.Tenancy.admin_connection`) runs each statement that
  names a tenant as that tenant's role (``SET ROLE`` before it) and, after one such statement,
  every other statement as the application (``RESET ROLE`` before it).

The settings run on the DBAPI connection, before the statement. Every one marks the checkout,
so :mod:`tenantry.hooks.poolreset` resets the connection when it goes back to the pool. A role
that no longer exists (the tenant was dropped) is :class:`~tenantry.UnknownTenant`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from ..errors import UnknownTenant
from ..models import SHARED_SCHEMA
from ..names import quote
from ..strategies.base import SEARCH_PATH_OPTION
from ..strict.rolenames import ROLE_OPTION
from . import poolreset
from .statements import BOUND_OPTION, StatementSchemas

_SESSION = "session"  # session state: the settings SET at session level in this checkout
_ADMIN = "admin"  # session state: an admin connection switched role in this checkout
_TRANSACTION = "transaction"  # session state: the transaction whose SET LOCALs are in force
_IDLE = 0  # libpq PQTRANS_IDLE: no transaction block
_NO_SUCH_ROLE = "22023"  # invalid_parameter_value: SET ROLE to a dropped role


def before_statement(context: Any) -> None:
    """Put the settings of the statement's connection in force before the statement runs."""
    options = context.execution_options
    schemas = options.get("schema_translate_map")
    if isinstance(schemas, StatementSchemas):
        _per_statement(context.root_connection, schemas.role)
        return
    role, path = options.get(ROLE_OPTION), options.get(SEARCH_PATH_OPTION)
    if role or path:
        _in_force(context.root_connection, role, path, options.get(BOUND_OPTION))


def _settings(role: str | None, path: str | None, scope: str) -> list[str]:
    sql = [f"SET {scope}ROLE {quote(role)}"] if role else []
    if path:
        sql.append(f"SET {scope}search_path TO {quote(path)}, {SHARED_SCHEMA}")
    return sql


def _in_force(conn: Connection, role: str | None, path: str | None, tenant: str | None) -> None:
    pooled = conn.connection
    raw = pooled.driver_connection
    if not pooled.dbapi_connection.autocommit:  # type: ignore[union-attr]
        transaction = conn.get_transaction()
        state = pooled.info.get(poolreset.SESSION_STATE)
        known = state is not None and state.get(_TRANSACTION) is transaction
        if known and not _outside_transaction(raw):
            return  # this transaction's SET LOCALs are in force
        if not (known and _is_asyncpg(raw)):
            state = poolreset.mark(conn)
            state[_TRANSACTION] = None
            # psycopg opens the transaction for them; SQLAlchemy's asyncpg adapter too
            _run(conn, _settings(role, path, "LOCAL "), tenant, role)
            state[_TRANSACTION] = transaction
            return
        # asyncpg after a COMMIT sent as SQL: the adapter opens no new transaction
    state = poolreset.mark(conn)
    if state.get(_SESSION) != (role, path) and _outside_transaction(raw):
        _run(conn, _settings(role, path, ""), tenant, role)
        state[_SESSION] = (role, path)


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
        poolreset.mark(conn)[_ADMIN] = True
        _run(conn, [f"SET ROLE {quote(role)}"], None, role)
    elif pooled.info.get(poolreset.SESSION_STATE, {}).get(_ADMIN):
        _run(conn, ["RESET ROLE"], None, None)


def _run(conn: Connection, sql: list[str], tenant: str | None, role: str | None) -> None:
    """Run ``sql`` on ``conn``'s DBAPI connection (in its transaction, if one is open): one
    round trip on psycopg (simple query protocol), one per statement on asyncpg."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        if _is_asyncpg(conn.connection.driver_connection):
            for one in sql:
                cursor.execute(one)
        else:
            cursor.execute("; ".join(sql))
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == _NO_SUCH_ROLE and tenant is not None:
            raise UnknownTenant(tenant, f"its role {role!r} no longer exists (dropped?)") from exc
        raise
    finally:
        cursor.close()

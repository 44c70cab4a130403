"""Raw SQL scripts on a connection's transaction, and renaming a schema with its functions."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..names import quote


def execute_script(conn: Connection, sql: str) -> None:
    """Run a multi-statement script in one round trip on ``conn``'s transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def query_script(conn: Connection, sql: str) -> list[tuple[object, ...]]:
    """Run a multi-statement script in one round trip; the rows of its last statement."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        while cursor.nextset():
            pass
        return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


def rename_schema(conn: Connection, old: str, new: str) -> None:
    """``ALTER SCHEMA old RENAME TO new``, then repoint the functions that named ``old``."""
    conn.exec_driver_sql(f"ALTER SCHEMA {quote(old)} RENAME TO {quote(new)}")
    repoint_functions(conn, new, old)


def repoint_functions(conn: Connection, schema: str, old: str) -> int:
    """Make the functions of ``schema`` that name schema ``old`` in their text name ``schema``.

    ``ALTER SCHEMA old RENAME TO schema`` moves everything that refers to objects by OID
    (views, defaults, triggers), but function bodies and ``SET search_path`` settings are text:
    they keep naming ``old``. Each such function is redefined with every mention of ``old`` (as
    a whole word) replaced, as the schema template does. Returns how many were redefined.
    """
    mention = re.compile(rf"(?<![\w$]){re.escape(old)}(?![\w$])")
    rows = conn.execute(
        sa.text(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
            "WHERE p.pronamespace = to_regnamespace(:schema) AND p.prokind IN ('f', 'p') "
            "AND (p.prosrc ~ :pattern OR array_to_string(p.proconfig, ' ') ~ :pattern)"
        ),
        {"schema": quote(schema), "pattern": rf"\m{re.escape(old)}\M"},
    ).scalars().all()
    name = conn.dialect.identifier_preparer.quote(schema)
    for definition in rows:
        execute_script(conn, mention.sub(lambda _m: name, definition))
    return len(rows)

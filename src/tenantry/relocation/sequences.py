"""The positions of a schema's sequences: read them, set them (copies, moves, imports)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from ..names import quote


def positions(conn: Connection, schema: str) -> list[tuple[str, int, bool]]:
    """``(name, last_value, is_called)`` of every sequence of ``schema``, by name."""
    names = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'S' ORDER BY c.relname",
        (schema,),
    ).scalars().all()
    found = []
    for name in names:
        last_value, is_called = conn.exec_driver_sql(
            f"SELECT last_value, is_called FROM {quote(schema)}.{quote(name)}"  # noqa: S608
        ).one()
        found.append((name, int(last_value), bool(is_called)))
    return found


def set_position(
    conn: Connection, schema: str, name: str, last_value: int, is_called: bool
) -> None:
    """``setval`` sequence ``schema.name`` to ``last_value`` / ``is_called``."""
    conn.exec_driver_sql(
        "SELECT setval(%s::regclass, %s, %s)",
        (_regclass(schema, name), last_value, is_called),
    )


def _regclass(schema: str, name: str) -> str:
    """``"schema"."name"`` as a bound value (``quote`` doubles ``%`` for SQL text; not here)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))

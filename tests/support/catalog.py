"""A schema's catalog as plain data, normalised for the schema's name (for identity tests)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tenantry.names import quote

QUERIES = {
    "schema": """
        SELECT nspacl::text, obj_description(oid, 'pg_namespace') FROM pg_namespace
        WHERE nspname = :s""",
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text, c.relacl::text,
               obj_description(c.oid, 'pg_class'), c.relhasindex, c.relhastriggers
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :s ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attname,
               row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
               col_description(c.oid, a.attnum), a.attacl::text, a.attcollation::regcollation::text,
               pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                                      a.attname)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = :s AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
        ORDER BY 1, 3""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid),
               obj_description(k.oid, 'pg_constraint')
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = k.connamespace
        WHERE n.nspname = :s ORDER BY 1, 2""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :s "
               "ORDER BY 1, 2",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by,
               cycle, cache_size, last_value
        FROM pg_sequences WHERE schemaname = :s ORDER BY 1""",
    "sequence_state": None,  # filled per sequence below (is_called)
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = :s GROUP BY 1 ORDER BY 1""",
    "types": """
        SELECT t.typname, t.typtype, t.typacl::text, obj_description(t.oid, 'pg_type')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = :s ORDER BY 1""",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = :s ORDER BY 1",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
               p.proacl::text, obj_description(p.oid, 'pg_proc'), p.proconfig::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = :s ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :s AND NOT t.tgisinternal ORDER BY 1, 2""",
    "default_privileges": """
        SELECT d.defaclobjtype, d.defaclacl::text FROM pg_default_acl d
        JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = :s ORDER BY 1""",
}


def snapshot(conn: sa.Connection, schema: str) -> dict[str, Any]:
    """Everything about ``schema`` that a tenant made from a template must reproduce."""
    conn.exec_driver_sql("SET LOCAL search_path TO public")  # every name printed qualified
    result: dict[str, Any] = {}
    for key, query in QUERIES.items():
        if query is None:
            continue
        rows = conn.execute(sa.text(query), {"s": schema}).all()
        result[key] = [tuple(r) for r in rows]
    result["sequence_state"] = [
        (seq, *conn.exec_driver_sql(
            f"SELECT last_value, is_called FROM {quote(schema)}.{quote(seq)}"  # noqa: S608
        ).one())
        for seq, *_ in result["sequences"]
    ]
    tables = [r[0] for r in result["relations"] if r[1] == "r"]
    result["data"] = {
        t: sorted(
            str(v) for v in conn.exec_driver_sql(
                f"SELECT to_jsonb(x)::text FROM {quote(schema)}.{quote(t)} x"  # noqa: S608
            ).scalars()
        )
        for t in tables
    }
    return normalise(result, schema)


def normalise(value: Any, schema: str) -> Any:
    if isinstance(value, str):
        return value.replace(f'"{schema}"', "<S>").replace(schema, "<S>")
    if isinstance(value, dict):
        return {k: normalise(v, schema) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v, schema) for v in value]
    return value

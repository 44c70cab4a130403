"""Proof that storage may be destroyed: it holds no rows, or the same rows as a registered copy.

A *fingerprint* is each table's row count and an md5 over its rows (each row's md5, sorted),
keyed ``schema.table``. tenantry's own move marker tables are left out: they are not the
tenant's data. ``doctor`` and :mod:`tenantry.doctor.leftovers` drop storage only on such proof;
otherwise they report it for a person to decide.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..names import quote
from .replication import PREFIX as MARKER_PREFIX

#: ``schema.table`` -> (row count, checksum of its rows)
Fingerprint = dict[str, tuple[int, str]]

_TABLES = sa.text(
    "SELECT n.nspname, c.relname FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
    "AND c.relname NOT LIKE :marker AND (n.nspname = :s OR (:whole AND n.nspname "
    "NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')) "
    "ORDER BY 1, 2"
)


def fingerprint(conn: Connection, schema: str, *, whole_database: bool = False) -> Fingerprint:
    """Row count and checksum of every table of ``schema`` (``whole_database``: of every
    schema of the connection's database)."""
    marker = MARKER_PREFIX.replace("_", "\\_") + "%"
    tables = conn.execute(_TABLES, {"marker": marker, "s": schema, "whole": whole_database})
    found: Fingerprint = {}
    for table_schema, table in tables.all():
        name = f"{quote(table_schema)}.{quote(table)}"
        count, digest = conn.exec_driver_sql(
            "SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' "  # noqa: S608
            f"ORDER BY md5(t::text)), '')) FROM {name} t"
        ).one()
        found[f"{table_schema}.{table}"] = (int(count), str(digest))
    return found


def rows(print_: Fingerprint, *, ignore: frozenset[str] = frozenset()) -> int:
    """How many rows the fingerprinted tables hold (``ignore``: ``schema.table`` names, e.g.
    the version table)."""
    return sum(count for table, (count, _) in print_.items() if table not in ignore)


def differing(one: Fingerprint, other: Fingerprint) -> list[str]:
    """The tables whose count or checksum differ between two fingerprints (or that only one
    has), sorted; empty: the same rows."""
    return sorted(t for t in one.keys() | other.keys() if one.get(t) != other.get(t))

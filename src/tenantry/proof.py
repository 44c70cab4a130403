"""Proof that storage may be destroyed: it holds no rows, or the same rows as a registered copy.

A schema's *fingerprint* is each table's row count and (for tables up to
:data:`CHECKSUM_ROWS` rows) an md5 of its rows' text in a stable order. ``doctor`` drops
storage only on such proof; otherwise it reports the storage for a person to decide.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .names import quote

#: Tables with more rows than this are compared by count only (a checksum reads every row).
CHECKSUM_ROWS = 100_000

#: table -> (row count, checksum or None when the table is too big to checksum cheaply)
Fingerprint = dict[str, tuple[int, str | None]]


def fingerprint(conn: Connection, schema: str) -> Fingerprint:
    """Row count and checksum of every table of ``schema``."""
    tables = conn.scalars(
        sa.text(
            "SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace(:s) "
            "AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY relname"
        ),
        {"s": schema},
    ).all()
    found: Fingerprint = {}
    for table in tables:
        name = f"{quote(schema)}.{quote(table)}"
        count = int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())  # noqa: S608
        digest = None
        if count <= CHECKSUM_ROWS:
            rows_md5 = "md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), ''))"
            digest = conn.exec_driver_sql(f"SELECT {rows_md5} FROM {name} r").scalar_one()  # noqa: S608
        found[table] = (count, digest)
    return found


def rows(print_: Fingerprint, *, ignore: frozenset[str] = frozenset()) -> int:
    """How many rows the fingerprinted tables hold (``ignore``: e.g. the version table)."""
    return sum(count for table, (count, _) in print_.items() if table not in ignore)


def describe(print_: Fingerprint) -> str:
    return f"{rows(print_)} rows in {len(print_)} tables"

"""Tables a tenant lacks: tenants at one revision of one stream hold the same tables.

A tenant without a table that every other tenant at its revision has lost it (a ``DROP TABLE``
by hand, a partial restore); :func:`missing` finds it. Comparing with the other tenants, rather
than with the models, needs no metadata and is not fooled by models the migrations do not make.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .replication import PREFIX


def tables_in(conn: Connection, schema: str) -> set[str] | None:
    """The tables of ``schema`` (partitions and move marker tables left out); ``None`` when
    the schema does not exist."""
    query = sa.text(
        "SELECT c.relname FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid "
        "AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT LIKE :marker "
        "WHERE n.nspname = :s"
    )
    marker = PREFIX.replace("_", "\\_") + "%"
    rows = conn.execute(query, {"s": schema, "marker": marker}).scalars().all()
    return {name for name in rows if name is not None} if rows else None


def missing(
    tables: Mapping[str, set[str]], revisions: Mapping[str, str | None]
) -> dict[str, tuple[list[str], int]]:
    """Tenant -> (the tables it lacks that every other tenant at its revision has, how many
    such tenants there are); only tenants that lack some."""
    groups: dict[str | None, list[str]] = {}
    for tenant in tables:
        groups.setdefault(revisions[tenant], []).append(tenant)
    found = {}
    for members in groups.values():
        for tenant in members:
            others = [tables[o] for o in members if o != tenant]
            if not others:
                continue
            lacking = sorted(set.intersection(*others) - tables[tenant])
            if lacking:
                found[tenant] = (lacking, len(others))
    return found

"""The tables of a tenant schema and the order that satisfies their foreign keys."""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from ..core import Core
from ..errors import (
    TransferError,
)
from ..names import quote
from ..relocation import sequences
from .manifest import (
    SequenceEntry,
)

Edge = tuple[int, int]


@dataclass
class Table:
    oid: int
    name: str
    columns: list[str]
    generated: list[str]
    primary_key: list[str]
    types: list[str] = field(default_factory=list)
    partitioned: bool = False  # else read with ONLY: inheritance children export their own rows


# -- export ------------------------------------------------------------------------------------



def table_list(conn: Connection, schema: str, *, exclude: str) -> tuple[list[Table], list[Edge]]:
    """Ordinary and partitioned tables of ``schema`` (partitions come with their parent), and
    their foreign keys as (referencing oid, referenced oid) pairs."""
    rows = conn.exec_driver_sql(
        "SELECT c.oid, c.relname, c.relkind = 'p' FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND c.relname <> %s ORDER BY c.relname",
        (schema, exclude),
    ).all()
    tables = {
        oid: Table(oid, relname, [], [], [], partitioned=bool(parted))
        for oid, relname, parted in rows
    }
    if not tables:
        return [], []
    oids = list(tables)
    attnames: dict[tuple[int, int], str] = {}
    for relid, attnum, attname, generated, type_name in conn.exec_driver_sql(
        "SELECT attrelid::int8, attnum, attname, attgenerated <> '', "
        "format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = ANY(%s::oid[]) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attrelid, attnum",
        (oids,),
    ):
        tables[relid].columns.append(attname)
        tables[relid].types.append(type_name)
        attnames[relid, attnum] = attname
        if generated:
            tables[relid].generated.append(attname)
    for relid, conkey in conn.exec_driver_sql(
        "SELECT conrelid::int8, conkey FROM pg_constraint "
        "WHERE contype = 'p' AND conrelid = ANY(%s::oid[])",
        (oids,),
    ):
        tables[relid].primary_key = [attnames[relid, n] for n in conkey]
    deps = conn.exec_driver_sql(
        "SELECT conrelid::int8, confrelid::int8 FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%s::oid[])",
        (oids,),
    ).all()
    return list(tables.values()), [(int(a), int(b)) for a, b in deps]


def load_order(tables: list[Table], edges: list[Edge]) -> list[Table]:
    """``tables`` sorted so that a table comes after the tables its foreign keys reference,
    as far as cycles allow: one edge of each cycle is ignored (import re-adds such keys after
    the load, see ``_late_foreign_keys``)."""
    by_oid = {t.oid: t for t in tables}
    remaining = {(c, p) for c, p in edges if c in by_oid and p in by_oid and c != p}
    while True:
        sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
        for t in sorted(tables, key=lambda t: t.name):
            sorter.add(t.oid)
        for child, parent in sorted(remaining):
            sorter.add(child, parent)
        try:
            return [by_oid[oid] for oid in sorter.static_order()]
        except graphlib.CycleError as exc:
            cycle = exc.args[1]  # each node precedes (is referenced by) the next
            edge = (cycle[1], cycle[0])
            if edge not in remaining:  # cannot happen; never loop forever
                raise TransferError(f"cannot order tables {cycle}") from exc
            remaining.discard(edge)


def sequence_entries(conn: Connection, schema: str) -> list[SequenceEntry]:
    return [SequenceEntry(*position) for position in sequences.positions(conn, schema)]


def qualified(schema: str, name: str) -> str:
    """``"schema"."name"``, safe for exec_driver_sql (``quote`` doubles ``%`` for the driver)."""
    return f"{quote(schema)}.{quote(name)}"


def version_table_of(core: Core) -> str:
    """The name of the version table in tenant schemas (left out of exports)."""
    stream = core.tenant_stream
    return stream.version_table if stream is not None else "alembic_version"

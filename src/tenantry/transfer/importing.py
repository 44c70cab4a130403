"""Importing one tenant from an export, in the creating transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ..core import Core, HasCore, core_of
from ..core.intents import Intent, Operation
from ..core.records import check_fields
from ..core.registry import Location, TenantInfo
from ..errors import (
    TenantExists,
    TransferError,
    UnfinishedOperation,
    UnknownTenant,
)
from ..names import quote, validate_name
from ..provisioning import lifecycle
from ..relocation import recovery, sequences
from ..strategies.base import routed
from ..strategies.database import DatabaseStrategy
from .manifest import (
    Manifest,
    Progress,
    TableEntry,
    verify_checksums,
)
from .tables import Table, qualified, table_list, version_table_of

log = logging.getLogger("tenantry")


def import_tenant(
    tenancy: Core | HasCore,
    src: str | Path,
    as_name: str,
    *,
    replace: bool = False,
    upgrade: bool = True,
    progress: Progress | None = None,
    batch_rows: int = 2000,
) -> TenantInfo:
    """Create tenant ``as_name`` from the export in ``src``; returns its registry row.

    The tenant is created at the export's revision, its rows are loaded in foreign-key order
    (foreign keys in cycles are dropped for the load and re-added: every row is re-checked),
    its sequences set, row counts checked, and (``upgrade=True``) it is migrated to the head,
    all in the creating transaction: a failure leaves no tenant behind. An existing
    ``as_name`` is an error unless ``replace=True``, which drops it first (its data is lost:
    ``replace=True`` is the confirmation).
    """
    core = core_of(tenancy)
    directory = Path(src)
    manifest = Manifest.read(directory)
    validate_name(as_name, core.prefix)
    verify_checksums(directory, manifest)
    stream = core.tenant_stream
    if manifest.revision is not None:
        if stream is None:
            raise TransferError(
                f"export of {manifest.tenant!r} is at revision {manifest.revision!r} but this "
                "Tenancy has no tenant_migrations"
            )
        if not _known_revision(core, manifest.revision):
            raise TransferError(
                f"export of {manifest.tenant!r} is at revision {manifest.revision!r}, unknown "
                "to this application's tenant migrations"
            )
    record = _record(core, manifest)
    roles = core.strict_roles
    if roles is not None:
        roles.ensure_group()  # before the tenant lock, as create_tenant does
    if replace:  # DROP DATABASE cannot roll back with the import: a database tenant goes first
        try:
            old = core.tenant(as_name)
        except UnknownTenant:
            old = None
        if old is not None and old.location.database is not None:
            lifecycle.drop(core, as_name, confirm=True)
    def fill(conn: Connection, location: Location) -> str | None:
        if manifest.revision is not None and stream is not None:
            revision = stream.upgrade(conn, location.schema, manifest.revision).after
        else:
            revision = core.build_tenant_tables(conn, location.schema)
        _load(conn, location.schema, directory, manifest, as_name, progress, batch_rows,
              version_table_of(core))
        if upgrade and stream is not None:
            revision = stream.upgrade(conn, location.schema).after
        if roles is not None:  # strict mode: the new tenant's role owns what was loaded
            roles.provision(conn, as_name, location)
        core.events.inside("imported", as_name, routed(conn, as_name, location),
                           source=manifest.tenant, revision=revision)
        return revision

    with core.store.work([as_name], Operation.IMPORT) as work:
        existing = work.row(as_name)
        if existing is None:
            pending = work.unfinished()
            if pending is not None:
                resumed = _resume(core, work.main, as_name, pending)
                if resumed is not None:
                    return resumed
        elif not replace:
            raise TenantExists(
                f"tenant {as_name!r} exists: pass replace=True (CLI: --replace --yes) to "
                "drop it and import over it"
            )
        else:
            core.events.inside("dropped", as_name,
                               routed(work.main, as_name, existing.location))
            lifecycle.remove(core, work, existing)
        location = core.locate_new(as_name, work.main, None)
        info = lifecycle.provision(core, work, as_name, location, fill, record)
    if existing is not None:
        core.events.after("dropped", as_name, location=existing.location)
    core.events.after("imported", as_name, source=manifest.tenant, revision=info.revision)
    return info


def _record(core: Core, manifest: Manifest) -> dict[str, str | None] | None:
    """The export's record for the new tenant (checked against this Tenancy's fields)."""
    if manifest.record is None:
        return None
    if core.records is None:
        log.warning("the export of %s has a record (%s) and this Tenancy declares no record "
                    "columns: not imported", manifest.tenant, ", ".join(manifest.record))
        return None
    check_fields(core.records, manifest.record)
    return manifest.record


def _resume(core: Core, main: Connection, name: str, pending: Intent) -> TenantInfo | None:
    """An import of ``name`` killed part-way: its tenant if the load had committed, else
    ``None`` (what it made is dropped: the import starts again)."""
    strategy = core.strategy
    if not isinstance(strategy, DatabaseStrategy):
        raise UnfinishedOperation(
            f"tenant {name!r} has an unfinished {pending.describe()}: finish it first "
            f"({pending.command()}, or tenantry doctor --fix)"
        )
    assert pending.dest is not None
    return recovery.resume_create(strategy, core.tenant_stream, core.engine, main, name,
                                  pending.dest)


def _known_revision(core: Core, revision: str) -> bool:
    stream = core.tenant_stream
    assert stream is not None
    try:
        return stream.script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for unknown/ambiguous ids
        return False


def _load(
    conn: Connection,
    schema: str,
    directory: Path,
    manifest: Manifest,
    tenant: str,
    progress: Progress | None,
    batch_rows: int,
    version_table: str,
) -> None:
    present, _ = table_list(conn, schema, exclude=version_table)
    types = {t.name: dict(zip(t.columns, t.types, strict=True)) for t in present}
    only = {t.name: "" if t.partitioned else "ONLY " for t in present}
    if present:  # rows seeded by migrations: the export is the truth
        names = ", ".join(qualified(schema, t.name) for t in present)
        conn.exec_driver_sql(f"TRUNCATE {names}")
    for entry in manifest.tables:
        if entry.name not in types:
            raise TransferError(
                f"table {entry.name!r} of the export does not exist in new tenant {tenant!r}"
            )
        missing = [c for c in entry.insertable if c not in types[entry.name]]
        if missing:
            raise TransferError(
                f"table {entry.name!r} of tenant {tenant!r} lacks columns {missing} of the export"
            )
    late = _late_foreign_keys(conn, present, [t.name for t in manifest.tables])
    for key in late:
        conn.exec_driver_sql(
            f"ALTER TABLE {qualified(schema, key.table)} DROP CONSTRAINT {quote(key.name)}"
        )
    for entry in manifest.tables:
        column_types = {c: types[entry.name][c] for c in entry.insertable}
        loaded = _load_table(
            conn, schema, entry, column_types, directory, progress, batch_rows,
            manifest.version,
        )
        counted = conn.exec_driver_sql(
            f"SELECT count(*) FROM {only[entry.name]}{qualified(schema, entry.name)}"  # noqa: S608
        ).scalar_one()
        if loaded != entry.rows or counted != entry.rows:
            raise TransferError(
                f"table {entry.name!r}: manifest says {entry.rows} rows, file had {loaded}, "
                f"tenant {tenant!r} has {counted}"
            )
    _restore_foreign_keys(conn, schema, late, tenant)
    for seq in manifest.sequences:
        sequences.set_position(conn, schema, seq.name, seq.last_value, seq.is_called)


@dataclass
class _ForeignKey:
    table: str
    name: str
    definition: str
    comment: str | None


def _late_foreign_keys(
    conn: Connection, present: list[Table], order: list[str]
) -> list[_ForeignKey]:
    """Foreign keys whose referenced table is loaded at the same time as or after the
    referencing one (cycles, self-references): rows cannot satisfy them table by table or
    batch by batch, so they are dropped for the load and re-added (re-checked) after it."""
    position = {name: i for i, name in enumerate(order)}
    names = {t.oid: t.name for t in present}
    late = []
    for child, parent, name, definition, comment in conn.exec_driver_sql(
        "SELECT conrelid::int8, confrelid::int8, conname, pg_get_constraintdef(oid), "
        "obj_description(oid, 'pg_constraint') FROM pg_constraint "
        "WHERE contype = 'f' AND conparentid = 0 AND conrelid = ANY(%s::oid[]) "
        "ORDER BY conrelid, conname",
        (list(names),),
    ):
        table, referenced = names.get(child), names.get(parent)
        if (
            table in position
            and referenced in position
            and position[referenced] >= position[table]
        ):
            late.append(_ForeignKey(table, name, definition, comment))
    return late


def _restore_foreign_keys(
    conn: Connection, schema: str, keys: list[_ForeignKey], tenant: str
) -> None:
    """Re-add the foreign keys ``_late_foreign_keys`` dropped; PostgreSQL checks every row."""
    if not keys:
        return
    conn.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks before ALTER
    for key in keys:
        table = qualified(schema, key.table)
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(
                    f"ALTER TABLE {table} ADD CONSTRAINT {quote(key.name)} "
                    + key.definition.replace("%", "%%")
                )
        except DBAPIError as exc:
            raise TransferError(
                f"tenant {tenant!r}: foreign key {key.name!r} of table {key.table!r} does not "
                f"hold for the imported rows: {(str(exc.orig).splitlines() or [''])[0]}"
            ) from exc
        if key.comment is not None:
            statement = conn.exec_driver_sql(
                "SELECT format('COMMENT ON CONSTRAINT %%I ON %%I.%%I IS %%L', "
                "%s::text, %s::text, %s::text, %s::text)",
                (key.name, schema, key.table, key.comment),
            ).scalar_one()
            conn.exec_driver_sql(statement.replace("%", "%%"))


def _load_table(
    conn: Connection,
    schema: str,
    entry: TableEntry,
    types: dict[str, str],
    directory: Path,
    progress: Progress | None,
    batch_rows: int,
    version: int,
) -> int:
    target = qualified(schema, entry.name)
    cols = ", ".join(quote(c) for c in types)
    # every identifier is quoted; type names are PostgreSQL's own format_type
    if not types:
        sql = f"INSERT INTO {target} SELECT FROM json_array_elements(%s::json)"
    elif version == 1:  # row_to_json values: the record type converts them
        sql = (
            f"INSERT INTO {target} ({cols}) OVERRIDING SYSTEM VALUE "  # noqa: S608
            f"SELECT {cols} FROM json_populate_recordset(NULL::{target}, %s::json)"
        )
    else:  # text forms: each cast to the column's type (its input function, its typmod)
        casts = ", ".join(
            f"CAST(r.{quote(c)} AS {t.replace('%', '%%')})" for c, t in types.items()
        )
        texts = ", ".join(f"{quote(c)} text" for c in types)
        sql = (
            f"INSERT INTO {target} ({cols}) OVERRIDING SYSTEM VALUE "  # noqa: S608
            f"SELECT {casts} FROM json_to_recordset(%s::json) AS r({texts})"
        )
    rows = 0
    for batch in _batches(directory / entry.file, batch_rows):
        conn.exec_driver_sql(sql, ("[" + ",".join(batch) + "]",))
        rows += len(batch)
        if progress is not None:
            progress(entry.name, rows, entry.rows)
    if progress is not None and rows == 0:
        progress(entry.name, 0, 0)
    return rows


def _batches(path: Path, size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    with path.open("r", encoding="utf-8", newline="\n") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                batch.append(line)
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


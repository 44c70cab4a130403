"""One tenant's data out and in: JSON Lines per table plus a manifest, optionally ``pg_dump``.

Encoding (format version 2): each line of ``tables/<table>.jsonl`` is one row as a JSON object
mapping each column to PostgreSQL's own text form of its value (``value::text``, what ``COPY``
and ``pg_dump`` write) or JSON ``null`` for SQL ``NULL``. Import casts each text back to the new
tenant's column type, so the database (not Python) converts every value with the type's own
input and output functions: no value is lost, JSON ``null`` in a ``jsonb`` column (the string
``"null"``) stays distinct from SQL ``NULL``. Version 1 exports (``row_to_json``) still import.
Foreign keys that form cycles (self-references included) are dropped for the load and re-added
after it, which re-checks every row. See docs/export.md.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from . import lifecycle, recovery, sequences
from .core import Core, HasCore, core_of
from .errors import (
    ClientProgramNotFound,
    TenantExists,
    TransferError,
    UnfinishedOperation,
    UnknownTenant,
)
from .intents import Intent, Operation
from .names import quote, validate_name
from .pgtools import find_program, libpq_env
from .registry import Location, TenantInfo
from .strategies.database import DatabaseStrategy

FORMAT = "tenantry-export"
FORMAT_VERSION = 2
#: Versions import understands: 1 = ``row_to_json`` rows (json/jsonb ``null`` read back as SQL
#: ``NULL``), 2 = every column as its PostgreSQL text form.
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
DUMP_FILE = "tenant.dump"

#: ``progress(table, rows_done, rows_expected)``; ``rows_expected`` may be an estimate.
Progress = Callable[[str, int, int | None], None]

_SESSION_SETTINGS = (  # fixed output formats, whatever the server's defaults
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'iso_8601'",
    "SET LOCAL bytea_output = 'hex'",
    "SET LOCAL extra_float_digits = 3",  # shortest exact floats (12+), all 17 digits before
)


@dataclass
class TableEntry:
    """One exported table: its file, row count and checksum, columns in table order."""

    name: str
    file: str
    rows: int
    sha256: str
    columns: list[str]
    generated: list[str] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)  # format_type of each column (version 2)

    @property
    def insertable(self) -> list[str]:
        """The columns an import writes (generated columns are computed by the server)."""
        return [c for c in self.columns if c not in set(self.generated)]


@dataclass
class SequenceEntry:
    """A sequence's state (``setval(name, last_value, is_called)`` restores it)."""

    name: str
    last_value: int
    is_called: bool


@dataclass
class Manifest:
    """What ``manifest.json`` says. ``tables`` are in load (foreign-key) order."""

    tenant: str
    strategy: str
    schema: str
    revision: str | None
    exported_at: str
    server_version: str
    tables: list[TableEntry]
    sequences: list[SequenceEntry]
    pg_dump: dict[str, str] | None = None
    version_table: str = "alembic_version"
    format: str = FORMAT
    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise TransferError(
                f"{str(directory)!r} is not a tenant export: no {MANIFEST}"
            ) from exc
        except json.JSONDecodeError as exc:
            raise TransferError(f"{str(path)!r} is not valid JSON: {exc}") from exc
        if data.get("format") != FORMAT or data.get("version") not in READABLE_VERSIONS:
            raise TransferError(
                f"{str(path)!r}: unsupported format {data.get('format')!r} "
                f"version {data.get('version')!r} (expected {FORMAT!r} version "
                f"{' or '.join(map(str, READABLE_VERSIONS))})"
            )
        try:
            data["tables"] = [TableEntry(**t) for t in data["tables"]]
            data["sequences"] = [SequenceEntry(**s) for s in data["sequences"]]
            return cls(**data)
        except (KeyError, TypeError) as exc:
            raise TransferError(f"{str(path)!r} is malformed: {exc}") from exc


@dataclass
class _Table:
    oid: int
    name: str
    columns: list[str]
    generated: list[str]
    primary_key: list[str]
    types: list[str] = field(default_factory=list)
    partitioned: bool = False  # else read with ONLY: inheritance children export their own rows


# -- export ------------------------------------------------------------------------------------


def export_tenant(
    tenancy: Core | HasCore,
    name: str,
    dest: str | Path,
    *,
    pg_dump: bool = False,
    progress: Progress | None = None,
    batch_rows: int = 2000,
) -> Manifest:
    """Write tenant ``name``'s rows to the new or empty directory ``dest``; returns the manifest.

    Everything is read in one REPEATABLE READ transaction (a consistent snapshot; ``pg_dump``
    shares it), through a server-side cursor, so memory does not grow with the table size.
    """
    core = core_of(tenancy)
    info = core.tenant(name)
    directory = _empty_directory(Path(dest))
    try:
        manifest = _export(core, info, directory, pg_dump, progress, batch_rows)
    except BaseException:
        for child in directory.iterdir():  # it was empty: leave no half-written export
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        raise
    (directory / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")  # last: marks done
    return manifest


def _export(
    core: Core,
    info: TenantInfo,
    directory: Path,
    pg_dump: bool,
    progress: Progress | None,
    batch_rows: int,
) -> Manifest:
    engine = core.route(info.name)
    version_table = _version_table(core)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            for setting in _SESSION_SETTINGS:
                conn.exec_driver_sql(setting)
            stream = core.tenant_stream
            revision = (
                stream.current(conn, info.schema) if stream is not None else info.revision
            )
            tables = _load_order(*_tables(conn, info.schema, exclude=version_table))
            sequence_entries = _sequences(conn, info.schema)
            dump = None
            if pg_dump:
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                dump = _run_pg_dump(conn, engine, info.schema, snapshot, directory / DUMP_FILE)
            (directory / "tables").mkdir()
            files = _file_names([t.name for t in tables])
            entries = [
                _export_table(conn, info.schema, t, directory / files[t.name], progress,
                              batch_rows)
                for t in tables
            ]
            server_version = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
    return Manifest(
        tenant=info.name,
        strategy=info.strategy,
        schema=info.schema,
        revision=revision,
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        server_version=server_version,
        tables=entries,
        sequences=sequence_entries,
        pg_dump=dump,
        version_table=version_table,
    )


def _file_names(tables: list[str]) -> dict[str, str]:
    """``tables/<name>.jsonl`` per table, made safe as a file name and unique."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for table in tables:
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", table)[:100] or "table"
        candidate, n = stem, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{stem}_{n}"
        used.add(candidate.lower())
        names[table] = f"tables/{candidate}.jsonl"
    return names


def _empty_directory(path: Path) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise TransferError(
            f"export destination {str(path)!r} exists and is not an empty directory"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _version_table(core: Core) -> str:
    stream = core.tenant_stream
    return stream.version_table if stream is not None else "alembic_version"


Edge = tuple[int, int]


def _tables(conn: Connection, schema: str, *, exclude: str) -> tuple[list[_Table], list[Edge]]:
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
        oid: _Table(oid, relname, [], [], [], partitioned=bool(parted))
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


def _load_order(tables: list[_Table], edges: list[Edge]) -> list[_Table]:
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


def _sequences(conn: Connection, schema: str) -> list[SequenceEntry]:
    return [SequenceEntry(*position) for position in sequences.positions(conn, schema)]


def _qualified(schema: str, name: str) -> str:
    """``"schema"."name"``, safe for exec_driver_sql (``quote`` doubles ``%`` for the driver)."""
    return f"{quote(schema)}.{quote(name)}"


def _export_table(
    conn: Connection,
    schema: str,
    table: _Table,
    path: Path,
    progress: Progress | None,
    batch_rows: int,
) -> TableEntry:
    order = ", ".join(f"t.{quote(c)}" for c in table.primary_key)
    texts = ", ".join(f"t.{quote(c)}::text AS {quote(c)}" for c in table.columns)
    # every identifier is quoted
    sql = (
        "SELECT row_to_json(x)::text "  # noqa: S608
        f"FROM {'' if table.partitioned else 'ONLY '}{_qualified(schema, table.name)} AS t "
        f"CROSS JOIN LATERAL (SELECT {texts}) AS x"
    )
    if order:
        sql += f" ORDER BY {order}"
    estimate = _estimate(conn, table.oid)
    digest = hashlib.sha256()
    rows = 0
    with path.open("wb") as out:
        result = conn.exec_driver_sql(
            sql, execution_options={"stream_results": True, "max_row_buffer": batch_rows}
        )
        for chunk in result.partitions(batch_rows):
            lines = [line for (line,) in chunk]  # values are JSON strings: one line each
            data = ("\n".join(lines) + "\n").encode("utf-8")
            out.write(data)
            digest.update(data)
            rows += len(lines)
            if progress is not None:
                progress(table.name, rows, estimate)
    if progress is not None:
        progress(table.name, rows, rows)
    return TableEntry(
        name=table.name,
        file=f"{path.parent.name}/{path.name}",
        rows=rows,
        sha256=digest.hexdigest(),
        columns=table.columns,
        generated=table.generated,
        primary_key=table.primary_key,
        types=table.types,
    )


def _estimate(conn: Connection, oid: int) -> int | None:
    value = conn.exec_driver_sql(
        "SELECT reltuples::int8 FROM pg_class WHERE oid = %s", (oid,)
    ).scalar_one()
    return int(value) if value is not None and value >= 0 else None


# -- pg_dump -----------------------------------------------------------------------------------


def _run_pg_dump(
    conn: Connection, engine: Engine, schema: str, snapshot: str, path: Path
) -> dict[str, str]:
    info = conn.dialect.server_version_info or (0,)
    try:
        binary = find_program("pg_dump", int(info[0]))
    except ClientProgramNotFound as exc:
        raise TransferError(str(exc)) from exc
    command = [
        binary, "--format=custom", f'--schema="{schema}"', f"--snapshot={snapshot}",
        f"--file={path}", "--no-password",
    ]
    try:
        done = subprocess.run(command, env=libpq_env(engine.url), capture_output=True,
                              text=True, check=False)
    except OSError as exc:
        raise TransferError(f"cannot run pg_dump {binary!r}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TransferError(f"pg_dump of schema {schema!r} failed: {detail}")
    return {"file": path.name, "sha256": _file_sha256(path), "format": "custom"}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- import ------------------------------------------------------------------------------------


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
    _verify_checksums(directory, manifest)
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
              _version_table(core))
        if upgrade and stream is not None:
            revision = stream.upgrade(conn, location.schema).after
        if roles is not None:  # strict mode: the new tenant's role owns what was loaded
            roles.provision(conn, as_name, location)
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
            lifecycle.remove(core, work, existing)
        location = core.locate_new(as_name, work.main, None)
        return lifecycle.provision(core, work, as_name, location, fill)


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


def _verify_checksums(directory: Path, manifest: Manifest) -> None:
    files = [(t.file, t.sha256) for t in manifest.tables]
    if manifest.pg_dump:
        files.append((manifest.pg_dump["file"], manifest.pg_dump["sha256"]))
    for name, expected in files:
        path = directory / name
        if path.resolve().parent not in (directory.resolve(), (directory / "tables").resolve()):
            raise TransferError(f"manifest names a file outside the export: {name!r}")
        if not path.is_file():
            raise TransferError(f"export is incomplete: {name!r} is missing")
        if _file_sha256(path) != expected:
            raise TransferError(f"checksum mismatch for {name!r}: the export is damaged")


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
    present, _ = _tables(conn, schema, exclude=version_table)
    types = {t.name: dict(zip(t.columns, t.types, strict=True)) for t in present}
    only = {t.name: "" if t.partitioned else "ONLY " for t in present}
    if present:  # rows seeded by migrations: the export is the truth
        names = ", ".join(_qualified(schema, t.name) for t in present)
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
            f"ALTER TABLE {_qualified(schema, key.table)} DROP CONSTRAINT {quote(key.name)}"
        )
    for entry in manifest.tables:
        column_types = {c: types[entry.name][c] for c in entry.insertable}
        loaded = _load_table(
            conn, schema, entry, column_types, directory, progress, batch_rows,
            manifest.version,
        )
        counted = conn.exec_driver_sql(
            f"SELECT count(*) FROM {only[entry.name]}{_qualified(schema, entry.name)}"  # noqa: S608
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
    conn: Connection, present: list[_Table], order: list[str]
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
        table = _qualified(schema, key.table)
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
    target = _qualified(schema, entry.name)
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

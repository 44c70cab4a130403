"""Exporting one tenant: JSON Lines per table, a manifest, optionally a pg_dump archive."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from ..core import Core, HasCore, core_of
from ..core.registry import TenantInfo
from ..errors import (
    ClientProgramNotFound,
    TransferError,
)
from ..names import quote
from ..pgtools import find_program, libpq_env
from .manifest import (
    DUMP_FILE,
    MANIFEST,
    Manifest,
    Progress,
    TableEntry,
    file_sha256,
)
from .tables import Table, load_order, qualified, sequence_entries, table_list, version_table_of

_SESSION_SETTINGS = (  # fixed output formats, whatever the server's defaults
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'iso_8601'",
    "SET LOCAL bytea_output = 'hex'",
    "SET LOCAL extra_float_digits = 3",  # shortest exact floats (12+), all 17 digits before
)



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
        if core.records is not None:  # in the main database, whichever the tenant's
            with core.store.begin() as main:
                manifest.record = core.records.text_record(main, name) or {}
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
    version_table = version_table_of(core)
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
            tables = load_order(*table_list(conn, info.schema, exclude=version_table))
            sequences = sequence_entries(conn, info.schema)
            dump = None
            if pg_dump:
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                dump = _run_pg_dump(conn, engine, info.schema, snapshot, directory / DUMP_FILE)
            (directory / "tables").mkdir()
            files = file_names([t.name for t in tables])
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
        sequences=sequences,
        pg_dump=dump,
        version_table=version_table,
    )


def file_names(tables: list[str]) -> dict[str, str]:
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




def _export_table(
    conn: Connection,
    schema: str,
    table: Table,
    path: Path,
    progress: Progress | None,
    batch_rows: int,
) -> TableEntry:
    order = ", ".join(f"t.{quote(c)}" for c in table.primary_key)
    texts = ", ".join(f"t.{quote(c)}::text AS {quote(c)}" for c in table.columns)
    # every identifier is quoted
    sql = (
        "SELECT row_to_json(x)::text "  # noqa: S608
        f"FROM {'' if table.partitioned else 'ONLY '}{qualified(schema, table.name)} AS t "
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
    return {"file": path.name, "sha256": file_sha256(path), "format": "custom"}



"""The export's manifest: format, tables, sequences and checksums."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    TransferError,
)

FORMAT = "tenantry-export"
FORMAT_VERSION = 2
#: Versions import understands: 1 = ``row_to_json`` rows (json/jsonb ``null`` read back as SQL
#: ``NULL``), 2 = every column as its PostgreSQL text form.
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
DUMP_FILE = "tenant.dump"

#: ``progress(table, rows_done, rows_expected)``; ``rows_expected`` may be an estimate.
Progress = Callable[[str, int, int | None], None]

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
    #: The tenant's record (``Tenancy(tenant_columns=...)``), each value in its PostgreSQL
    #: text form; ``None``: the exporting Tenancy had none (then not written).
    record: dict[str, str | None] | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        if data["record"] is None:  # readable by tenantry versions before records
            del data["record"]
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

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



def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- import ------------------------------------------------------------------------------------


def verify_checksums(directory: Path, manifest: Manifest) -> None:
    files = [(t.file, t.sha256) for t in manifest.tables]
    if manifest.pg_dump:
        files.append((manifest.pg_dump["file"], manifest.pg_dump["sha256"]))
    for name, expected in files:
        path = directory / name
        if path.resolve().parent not in (directory.resolve(), (directory / "tables").resolve()):
            raise TransferError(f"manifest names a file outside the export: {name!r}")
        if not path.is_file():
            raise TransferError(f"export is incomplete: {name!r} is missing")
        if file_sha256(path) != expected:
            raise TransferError(f"checksum mismatch for {name!r}: the export is damaged")



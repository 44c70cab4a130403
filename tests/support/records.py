"""Tenancies with tenant records: the columns the record tests declare, on a metadata of
their own (the test models' metadata stays without a record table)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tenantry import Tenancy

from .databases import TENANT_DB


def record_columns() -> list[sa.Column[Any]]:
    """``plan`` (required, default ``free``), ``owner_email``, ``paid_until``, ``seats``."""
    return [
        sa.Column("plan", sa.Text, nullable=False, server_default="free"),
        sa.Column("owner_email", sa.Text),
        sa.Column("paid_until", sa.Date),
        sa.Column("seats", sa.Integer, sa.CheckConstraint("seats > 0")),
    ]


def record_tenancy(url: str, **options: Any) -> Tenancy:
    """A Tenancy with :func:`record_columns` (no shared stream: tenantry makes the table)."""
    options.setdefault("metadata", sa.MetaData())
    options.setdefault("tenant_migrations", TENANT_DB)
    options.setdefault("tenant_columns", record_columns())
    return Tenancy(url, **options)


def record_rows(tenancy: Tenancy) -> dict[str, dict[str, Any]]:
    """The record table's rows by tenant, read directly."""
    with tenancy.engine.connect() as conn:
        rows = conn.execute(sa.select(tenancy.records)).all()
    return {r.name: {k: v for k, v in r._asdict().items() if k != "name"} for r in rows}


#: The ``tenantry`` command of this checkout's source (the console script may be another's).
CLI = "import sys; from tenantry.cli.application import main; sys.argv[0] = 'tenantry'; main()"


def run_cli(folder: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``tenantry args`` in ``folder`` (its app found from alembic.ini), on this source."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TENANTRY_URL", "TENANTRY_APP", "DATABASE_URL")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    env["TENANTRY_URL"] = database_url
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=180, check=False)

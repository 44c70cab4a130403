"""Tenancies with tenant records: the columns the record tests declare, on a metadata of
their own (the test models' metadata stays without a record table)."""

from __future__ import annotations

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

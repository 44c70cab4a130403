"""The domain table: each domain of each tenant, in the main database next to the registry.

A domain (in :func:`~tenantry.domains.names.normalise_domain` form) belongs to one tenant;
a tenant has any number, one of them primary. Rows follow their tenant's row: a rename
carries them along (``ON UPDATE CASCADE``), a drop removes them (``ON DELETE CASCADE``).
The functions here run on a connection of the caller's transaction, under its locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from ..core.registry import metadata, tenants
from ..models import SHARED_SCHEMA
from .names import display

domains = sa.Table(
    "tenantry_domains",
    metadata,  # the registry's: TenantStore.begin() creates it with the registry
    sa.Column("domain", sa.Text, primary_key=True),
    sa.Column(
        "tenant",
        sa.Text,
        sa.ForeignKey(tenants.c.name, onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    schema=SHARED_SCHEMA,
)
sa.Index("tenantry_domains_tenant_idx", domains.c.tenant)  # cascades and listings
sa.Index("tenantry_domains_one_primary", domains.c.tenant, unique=True,
         postgresql_where=domains.c.is_primary)

#: Listing order: by tenant, its primary domain first, then oldest first.
_ORDER = (domains.c.tenant, domains.c.is_primary.desc(), domains.c.created_at, domains.c.domain)


@dataclass(frozen=True)
class Domain:
    """One domain of a tenant; ``domain`` is the stored (ASCII) form."""

    domain: str
    tenant: str
    primary: bool
    created_at: datetime

    @property
    def unicode(self) -> str:
        """The domain as people read it (``xn--bcher-kva.example`` -> ``bücher.example``)."""
        return display(self.domain)

    @classmethod
    def from_row(cls, row: Any) -> Domain:
        return cls(row.domain, row.tenant, row.is_primary, row.created_at)


def owner(conn: Connection, domain: str) -> str | None:
    """The tenant ``domain`` belongs to, or ``None``."""
    return conn.execute(sa.select(domains.c.tenant).where(domains.c.domain == domain)).scalar()


def get(conn: Connection, domain: str) -> Domain | None:
    row = conn.execute(sa.select(domains).where(domains.c.domain == domain)).first()
    return Domain.from_row(row) if row is not None else None


def listed(conn: Connection, tenant: str | None = None) -> list[Domain]:
    """Every domain (of ``tenant``), in listing order."""
    query = sa.select(domains).order_by(*_ORDER)
    if tenant is not None:
        query = query.where(domains.c.tenant == tenant)
    return [Domain.from_row(r) for r in conn.execute(query)]


def primary(conn: Connection, tenant: str) -> str | None:
    """``tenant``'s primary domain, or ``None``."""
    query = sa.select(domains.c.domain).where(domains.c.tenant == tenant, domains.c.is_primary)
    return conn.execute(query).scalar()


def insert_new(conn: Connection, tenant: str, domain: str) -> bool:
    """Give ``domain`` to ``tenant`` unless any tenant has it; whether it was added."""
    added = conn.execute(
        insert(domains)
        .values(domain=domain, tenant=tenant, is_primary=False)
        .on_conflict_do_nothing(index_elements=["domain"])
        .returning(domains.c.domain)
    ).first()
    return added is not None


def make_primary(conn: Connection, tenant: str, domain: str) -> None:
    """Make ``domain`` (one of ``tenant``'s) its primary, the previous one no longer."""
    conn.execute(domains.update()  # first: the unique index allows one primary per tenant
                 .where(domains.c.tenant == tenant, domains.c.is_primary,
                        domains.c.domain != domain)
                 .values(is_primary=False))
    conn.execute(domains.update().where(domains.c.domain == domain).values(is_primary=True))


def delete(conn: Connection, domain: str) -> Domain | None:
    """Remove ``domain``; the row it had, or ``None``."""
    row = conn.execute(domains.delete().where(domains.c.domain == domain)
                       .returning(*domains.c)).first()
    return Domain.from_row(row) if row is not None else None


def promote_oldest(conn: Connection, tenant: str) -> str | None:
    """Make ``tenant``'s oldest domain its primary; which one (``None``: it has none)."""
    oldest = conn.execute(
        sa.select(domains.c.domain).where(domains.c.tenant == tenant)
        .order_by(domains.c.created_at, domains.c.domain).limit(1)
    ).scalar()
    if oldest is not None:
        make_primary(conn, tenant, oldest)
    return oldest


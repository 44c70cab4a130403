"""The examples' models, declared on tenantry's bases as an application declares its own
(``tenantry init`` writes the same shape): ``TenantBase`` for tables with one copy per tenant,
``SharedBase`` for tables in ``public`` (the examples have none)."""

from __future__ import annotations

from sqlalchemy.orm import Mapped, mapped_column

from tenantry import TenantBase


class Note(TenantBase):
    """A tenant's note: table ``notes`` in each tenant's schema."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]

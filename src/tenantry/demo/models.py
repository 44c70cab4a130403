"""The demo's models: a shared plan list and a per-tenant project list."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenantry import SharedBase, TenantBase


class Plan(SharedBase):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)


class Project(TenantBase):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.Text)
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("public.plans.id"))
    done: Mapped[bool] = mapped_column(server_default=sa.false())
    plan: Mapped[Plan | None] = relationship()

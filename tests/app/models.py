"""The models of the test application: one shared table, three tenant tables."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenantry import SharedBase, TenantBase


class User(SharedBase):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)


class Setting(TenantBase):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class Customer(TenantBase):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Order(TenantBase):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("public.users.id"))
    total: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    customer: Mapped[Customer] = relationship(back_populates="orders")
    user: Mapped[User | None] = relationship()

"""Declarative bases for shared tables (``public``) and tenant tables (one copy per tenant).

Both bases share one :class:`~sqlalchemy.MetaData` and one registry, so a tenant model may hold a
foreign key or a relationship to a shared model (``ForeignKey("public.users.id")``).
Tenant tables carry the placeholder schema :data:`TENANT_SCHEMA`, which tenantry translates to the
tenant's schema at execution time (``schema_translate_map``); nothing pins a tenant at import.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

#: Placeholder schema of every tenant table. Never a real schema: a statement that reaches the
#: database with it still in place is stopped by the guard (:class:`~tenantry.NoTenantSelected`).
TENANT_SCHEMA = "__tenant__"
#: Schema of shared tables.
SHARED_SCHEMA = "public"


def is_tenant_table(table: Table) -> bool:
    """True when ``table`` is a tenant table (its schema is the placeholder)."""
    return table.schema == TENANT_SCHEMA


def tenant_tables(metadata: MetaData, unqualified: bool = False) -> list[Table]:
    """The tenant tables of ``metadata``, in dependency order; with ``unqualified``
    (``routing="search_path"``), tables without a schema are tenant tables too."""
    return [t for t in metadata.sorted_tables
            if is_tenant_table(t) or (unqualified and t.schema is None)]


def shared_tables(metadata: MetaData, unqualified: bool = False) -> list[Table]:
    """The tables of ``metadata`` that are not tenant tables, in dependency order."""
    tenant = set(tenant_tables(metadata, unqualified))
    return [t for t in metadata.sorted_tables if t not in tenant]


class TenantBase(DeclarativeBase):
    """Base of models with one table per tenant (placeholder schema :data:`TENANT_SCHEMA`)."""

    metadata = MetaData(schema=TENANT_SCHEMA)


class SharedBase(DeclarativeBase):
    """Base of models shared by all tenants, in the ``public`` schema."""

    metadata = TenantBase.metadata
    registry = TenantBase.registry

    def __init_subclass__(cls, **kw: Any) -> None:
        _default_schema(cls, SHARED_SCHEMA)
        super().__init_subclass__(**kw)


def _default_schema(cls: type, schema: str) -> None:
    """Give a mapped class's table ``schema`` unless its ``__table_args__`` names one."""
    if "__tablename__" not in cls.__dict__:
        return
    args = cls.__dict__.get("__table_args__", getattr(cls, "__table_args__", None))
    if args is None:
        cls.__table_args__ = {"schema": schema}  # type: ignore[attr-defined]
    elif isinstance(args, dict):
        cls.__table_args__ = {"schema": schema, **args}  # type: ignore[attr-defined]
    elif isinstance(args, tuple):
        if args and isinstance(args[-1], dict):
            cls.__table_args__ = (*args[:-1], {"schema": schema, **args[-1]})  # type: ignore[attr-defined]
        else:
            cls.__table_args__ = (*args, {"schema": schema})  # type: ignore[attr-defined]

"""Whether a statement touches tenant tables is decided once per statement shape (cache key),
and the decision is the same as walking the statement."""

from __future__ import annotations

import sqlalchemy as sa

from tenantry.hooks import statements
from tenantry.hooks.statements import cache_key_of, touches_tenant_tables
from tenantry.models import TENANT_SCHEMA

meta = sa.MetaData()
orders = sa.Table("orders", meta, sa.Column("id", sa.Integer), sa.Column("plan", sa.Integer),
                  schema=TENANT_SCHEMA)
plans = sa.Table("plans", meta, sa.Column("id", sa.Integer), schema="public")


def test_same_shape_is_decided_once_and_values_do_not_matter() -> None:
    statements._SHAPES.clear()
    first = sa.select(orders).where(orders.c.id == 1)
    assert touches_tenant_tables(first)
    assert {cache_key_of(first): True} == statements._SHAPES
    second = sa.select(orders).where(orders.c.id == 2)  # same shape, another value
    assert touches_tenant_tables(second) and len(statements._SHAPES) == 1


def test_every_kind_of_statement_matches_the_walk() -> None:
    cases = {
        sa.select(plans): False,
        sa.select(plans.c.id).where(plans.c.id.in_(sa.select(orders.c.plan))): True,
        sa.select(plans).join(orders, orders.c.plan == plans.c.id): True,
        sa.insert(orders).values(id=1): True,
        sa.update(plans).values(id=2): False,
        sa.delete(orders).where(orders.c.id == 3): True,
        sa.select(sa.literal(1)): False,
        sa.text("SELECT 1"): False,
    }
    statements._SHAPES.clear()
    for _ in range(2):  # decided, then remembered
        for statement, touches in cases.items():
            assert touches_tenant_tables(statement) is touches, statement


def test_the_memory_is_bounded() -> None:
    statements._SHAPES.clear()
    kept = statements.SHAPES_KEPT
    try:
        statements.SHAPES_KEPT = 3
        for n in range(10):
            touches_tenant_tables(sa.select(orders).limit(1).offset(n).where(orders.c.id == n)
                                  .add_columns(sa.literal_column(str(n))))
            assert len(statements._SHAPES) <= 3
    finally:
        statements.SHAPES_KEPT = kept

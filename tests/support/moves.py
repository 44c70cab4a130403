"""Moves, promotions and demotions: a tenant with rows to move, what it holds afterwards, and
what an interrupted online move leaves behind."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import Tenancy, make_engine
from tenantry.relocation.moving import Move
from tenantry.relocation.replication import Replication
from tenantry.strategies.database import DatabaseStrategy
from tests.app.models import Customer, Order, Setting


def snapshot(tenancy: Tenancy, name: str) -> dict[str, object]:
    with tenancy.session(name) as s:
        return {
            "customers": [(c.id, c.name, c.email) for c in s.scalars(
                sa.select(Customer).order_by(Customer.id))],
            "orders": [(o.id, o.customer_id, o.total) for o in s.scalars(
                sa.select(Order).order_by(Order.id))],
            "settings": sorted((x.key, x.value) for x in s.scalars(sa.select(Setting))),
        }


def count_while_writes_wait(conn: sa.Connection, lock_timeout: str) -> int:
    """On a connection to a tenant whose writes are blocked: a read answers (the customers
    counted) while a write gives up on its lock after ``lock_timeout``."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_timeout}'")
    reads = conn.scalar(sa.select(sa.func.count()).select_from(Customer))
    with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
        conn.execute(sa.insert(Setting).values(key="k", value="v"))
    return int(reads or 0)


def sequences(tenancy: Tenancy, name: str) -> dict[str, int]:
    with tenancy.connection(name) as conn:
        rows = conn.execute(sa.text(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = :s"
        ), {"s": tenancy.get_tenant(name).schema})
        return {n: v for n, v in rows}


def prepare(make_tenancy: Callable[..., Tenancy], kind: str) -> tuple[Tenancy, Callable[[], Any]]:
    """A tenant ``acme`` with rows (and a table without primary key), and the operation."""
    if kind == "move":
        tenancy = make_tenancy(placement=lambda tenant, load: "main")
        tenancy.create_tenant("acme")
        op = functools.partial(tenancy.move_tenant, "acme", to="second", online=True)
    else:
        tenancy = make_tenancy(strategy="hybrid")
        tenancy.create_tenant("acme")
        if kind == "demote":
            tenancy.promote_tenant("acme", to_server="second", online=False)
            op = functools.partial(tenancy.demote_tenant, "acme", online=True)
        else:
            op = functools.partial(tenancy.promote_tenant, "acme", online=True)
    with tenancy.session("acme") as s:
        s.add_all([Customer(name=f"c{i}", email=f"{i}@x") for i in range(20)])
        s.add(Setting(key="plan", value="free"))
        s.commit()
    with tenancy.connection("acme") as conn:
        conn.exec_driver_sql(f"CREATE TABLE {notes_of(tenancy)} (body text)")  # no primary key
        conn.execute(notes_table(tenancy).insert(), [{"body": b} for b in ("one", "two", "three")])
        conn.execute(sa.select(sa.func.setval(f"{schema_of(tenancy)}.customers_id_seq", 500)))
        conn.commit()
    return tenancy, op


def schema_of(tenancy: Tenancy) -> str:
    return tenancy.get_tenant("acme").schema


def notes_of(tenancy: Tenancy) -> str:
    """The tenant's table without a primary key (raw SQL is not routed: qualified)."""
    return f"{schema_of(tenancy)}.notes"


def notes_table(tenancy: Tenancy) -> sa.TableClause:
    return sa.table("notes", sa.column("body", sa.Text), schema=schema_of(tenancy))


def assert_no_replication(tenancy: Tenancy) -> None:
    """No subscription, publication or slot is left on any server."""
    strategy = tenancy.strategy
    for url in {tenancy.engine.url, *getattr(strategy, "servers", {}).values()}:
        engine = make_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            assert not conn.exec_driver_sql("SELECT count(*) FROM pg_subscription").scalar()
            assert not conn.exec_driver_sql(
                "SELECT count(*) FROM pg_replication_slots").scalar()
        engine.dispose()
    with tenancy.engine.connect() as conn:
        assert not conn.exec_driver_sql("SELECT count(*) FROM pg_publication").scalar()


def leave_an_interrupted_move(tenancy: Tenancy, to: str) -> None:
    """What a move killed (``kill -9``) while replicating leaves: the target database,
    subscription, slot, publication and marker tables, still running."""
    info = tenancy.get_tenant("acme")
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    move = Move(strategy, "acme", info.location, replace(info.location, server=to))
    move._make_target()
    move._dump_restore(schema_only=True)
    replication = Replication("acme", info.schema, move._url(move.source), move._url(move.target))
    replication.start()
    replication.wait_synced()  # then abandoned, never stopped

"""move_tenant: dump/restore to another server, registry switch, every row and sequence kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tenantry import ConfigurationError, MoveError, Tenancy, UnknownTenant
from tenantry.pgtools import libpq_env
from tenantry.relocation.moving import Move
from tenantry.strategies.database import DatabaseStrategy
from tests.app.models import Customer, Order, Setting
from tests.support.databases import database_names
from tests.support.moves import sequences, snapshot


@pytest.mark.parametrize("online", [None, False], ids=["online", "offline"])
def test_move_preserves_every_row_and_sequence(
    dbt: Tenancy, pg_url: str, second_url: str, online: bool | None
) -> None:
    info = dbt.create_tenant("acme")
    assert info.location.server == "main"
    with dbt.session("acme") as s:
        customers = [Customer(name=f"c{i}", email=f"c{i}@x") for i in range(50)]
        s.add_all(customers)
        s.flush()
        s.add_all(Order(customer_id=c.id, total=Decimal(i) + Decimal("0.25"))
                  for i, c in enumerate(customers[:40]))
        s.flush()
        s.execute(sa.delete(Customer).where(Customer.name == "c49"))
        s.commit()
    with dbt.connection("acme") as conn:  # a gap: the sequence is ahead of max(id)
        conn.execute(sa.select(sa.func.setval(
            f"{info.schema}.customers_id_seq", 1000)))
        conn.commit()
    before, seq_before = snapshot(dbt, "acme"), sequences(dbt, "acme")

    moved = dbt.move_tenant("acme", to="second", online=online)

    assert moved.location.server == "second" and moved.location.database == info.schema
    assert dbt.get_tenant("acme").location.server == "second"
    assert info.schema not in database_names(pg_url)
    assert info.schema in database_names(second_url)
    assert snapshot(dbt, "acme") == before
    assert sequences(dbt, "acme") == seq_before
    with dbt.session("acme") as s:
        c = Customer(name="after")
        s.add(c)
        s.commit()
        assert c.id == 1001
    assert dbt.move_tenant("acme", to="second").location.server == "second"  # idempotent


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
def test_after_the_copy_reads_go_on_and_writes_wait(
    dbt: Tenancy, pg_url: str, online: bool
) -> None:
    info = dbt.create_tenant("acme")
    with dbt.session("acme") as s:
        s.add(Customer(name="before"))
        s.commit()
    strategy = dbt.strategy
    assert isinstance(strategy, DatabaseStrategy)
    target = replace(info.location, server="second")
    move = Move(strategy, "acme", info.location, target, online=online)
    move.copy()  # the source's tables are now locked against writes until finish/abort
    try:
        with dbt.session("acme") as s:
            assert s.scalars(sa.select(Customer.name)).all() == ["before"]  # reads go on
        with dbt.session("acme") as s:
            s.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
            s.add(Customer(name="during"))
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                s.flush()  # the write waits for the lock (here: gives up after 50 ms)
    finally:
        move.abort()
    assert info.schema not in database_names(second_url_of(strategy))
    with dbt.session("acme") as s:  # after an abort the tenant is writable again, in place
        s.add(Customer(name="after"))
        s.commit()
        assert s.scalars(sa.select(Customer.name).order_by(Customer.id)).all() == [
            "before", "after"]


def second_url_of(strategy: DatabaseStrategy) -> str:
    return strategy.servers["second"].render_as_string(hide_password=False)


def test_move_errors(dbt: Tenancy, second_url: str) -> None:
    with pytest.raises(UnknownTenant):
        dbt.move_tenant("nobody", to="second")
    info = dbt.create_tenant("acme")
    with pytest.raises(ConfigurationError, match="mars"):
        dbt.move_tenant("acme", to="mars")
    # the target database exists already: the move fails, the tenant stays and still works
    from tenantry import make_engine

    admin = make_engine(second_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{info.schema}"')
    try:
        with pytest.raises(MoveError, match="already exists"):
            dbt.move_tenant("acme", to="second")
        assert dbt.get_tenant("acme").location.server == "main"
        with dbt.session("acme") as s:
            assert s.get(Setting, "currency") is not None
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{info.schema}"')
        admin.dispose()


def test_passwords_go_to_the_environment_not_the_command_line() -> None:
    url = sa.make_url("postgresql+psycopg://bob:s3cret@db.example:5433/app?sslmode=require")
    env = libpq_env(url)
    assert env["PGPASSWORD"] == "s3cret" and env["PGHOST"] == "db.example"
    assert env["PGPORT"] == "5433" and env["PGUSER"] == "bob" and env["PGSSLMODE"] == "require"
    socket = sa.make_url("postgresql+psycopg://postgres@/postgres?host=/tmp/x")
    assert libpq_env(socket)["PGHOST"] == "/tmp/x" and "PGPASSWORD" not in libpq_env(socket)


def test_other_processes_follow_a_move_and_a_rename(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    first = make_tenancy()
    other = make_tenancy(prefix=first.prefix)  # another process's Tenancy: its own cache
    first.create_tenant("acme")
    with first.session("acme") as s:
        s.add(Customer(name="kept"))
        s.commit()

    def names(name: str) -> list[str]:
        with other.session(name) as s:
            return list(s.scalars(sa.select(Customer.name)))

    # Until the other process re-reads the registry's generation (once a second), a statement
    # on a stale route fails once and the route is forgotten.
    other.core.store.freshness.interval = 3600.0
    assert names("acme") == ["kept"]  # caches acme's route on server main
    first.move_tenant("acme", to="second")
    with pytest.raises((UnknownTenant, sa.exc.OperationalError)):
        names("acme")  # the old database is gone under the cached route...
    assert names("acme") == ["kept"]  # ...which was forgotten: found on its new server
    first.rename_tenant("acme", "acme2")
    with pytest.raises((UnknownTenant, sa.exc.OperationalError)):
        names("acme")
    with pytest.raises(UnknownTenant):
        names("acme")  # no longer registered
    assert names("acme2") == ["kept"]
    # Once it re-reads the generation, it follows without a failed statement.
    other.core.store.freshness.interval = 0.0
    first.move_tenant("acme2", to="main")
    assert names("acme2") == ["kept"]
    first.rename_tenant("acme2", "acme3")
    with pytest.raises(UnknownTenant):
        names("acme2")
    assert names("acme3") == ["kept"]

"""Hybrid placement: schema and database tenants in one Tenancy; promote and demote."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import (
    ConfigurationError,
    ForeignKeyAcrossDatabases,
    HybridStrategy,
    NoTenantSelected,
    Tenancy,
    UnknownTenant,
    use,
)
from tenantry.aio import AsyncTenancy
from tenantry.cli import app
from tenantry.relocation.promotion import Promotion
from tests.app.models import Customer, Order, Setting, User
from tests.support.databases import MIGRATIONS, TENANT_DB, database_names
from tests.support.moves import count_while_writes_wait, sequences, snapshot


@pytest.fixture
def make_hybrid(make_tenancy: Callable[..., Tenancy]) -> Callable[..., Tenancy]:
    return functools.partial(make_tenancy, strategy="hybrid")


@pytest.fixture
def hybrid(make_hybrid: Callable[..., Tenancy]) -> Tenancy:
    return make_hybrid()


def schemas(tenancy: Tenancy) -> set[str]:
    with tenancy.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars())


def fill(tenancy: Tenancy, name: str, n: int = 30) -> None:
    with tenancy.session(name) as s:
        customers = [Customer(name=f"{name}-{n}-{i}", email=f"{i}@{name}") for i in range(n)]
        s.add_all(customers)
        s.flush()
        s.add_all(Order(customer_id=c.id, total=Decimal(i) + Decimal("0.5"))
                  for i, c in enumerate(customers[: n // 2]))
        s.add(Setting(key=f"plan{n}", value=name))
        s.flush()
        s.execute(sa.delete(Customer).where(Customer.name == f"{name}-{n}-{n - 1}"))
        s.commit()
    schema = tenancy.get_tenant(name).schema
    with tenancy.connection(name) as conn:  # sequence ahead of max(id)
        conn.execute(sa.select(sa.func.setval(f"{schema}.customers_id_seq", 500)))
        conn.commit()


def test_schema_and_database_tenants_behind_one_api(hybrid: Tenancy, pg_url: str) -> None:
    small = hybrid.create_tenant("small")
    big = hybrid.create_tenant("big", strategy="database")
    assert (small.strategy, small.location.database) == ("schema", None)
    assert big.strategy == "database" and big.location.database == big.schema
    assert big.schema in database_names(pg_url) and small.schema in schemas(hybrid)
    assert isinstance(hybrid.strategy, HybridStrategy)

    for name in ("small", "big"):
        with hybrid.session(name) as s:
            s.add(Customer(name=f"only-{name}"))
            s.commit()
    for name in ("small", "big"):
        with hybrid.session(name) as s:
            assert s.scalars(sa.select(Customer.name)).all() == [f"only-{name}"]
        with use(name), hybrid.session() as s:
            assert s.scalars(sa.select(Customer.name)).all() == [f"only-{name}"]
        with hybrid.use(name), hybrid.connection() as conn:
            assert conn.execute(sa.select(Customer.name)).scalars().all() == [f"only-{name}"]

    with hybrid.session() as s, pytest.raises(NoTenantSelected):
        s.execute(sa.select(Customer))
    with hybrid.session() as s:  # shared tables need no tenant
        s.add(User(name="u"))
        s.commit()
    with pytest.raises(UnknownTenant):
        hybrid.session("nobody")
    with pytest.raises(UnknownTenant), hybrid.use("nobody"):
        pass

    moved = hybrid.move_tenant("big", to="second")  # database tenants move between servers
    assert moved.location.server == "second" and moved.strategy == "database"
    with pytest.raises(ConfigurationError, match="not a database tenant"):
        hybrid.move_tenant("small", to="second")

    rows = {(r.tenant, r.row[0]) for r in hybrid.across(sa.select(Customer.name))}
    assert rows == {("small", "only-small"), ("big", "only-big")}
    with hybrid.admin_session() as s:
        for name in ("small", "big"):
            stmt = sa.select(Customer.name).execution_options(tenant=name)
            assert s.scalars(stmt).all() == [f"only-{name}"]


def test_provisioning_and_migrations_dispatch_per_tenant(hybrid: Tenancy, pg_url: str) -> None:
    hybrid.create_tenant("a")
    hybrid.create_tenant("b", strategy="database")
    with pytest.raises(ConfigurationError, match="unknown strategy"):
        hybrid.create_tenant("c", strategy="cloud")

    report = hybrid.migrate_all("t001", confirm=True)
    assert {o.tenant: (o.before, o.after) for o in report.tenants} == {
        "a": ("t002", "t001"), "b": ("t002", "t001")}
    report = hybrid.migrate_all()
    assert all(o.ok and o.after == "t002" for o in report.tenants)
    assert {s.tenant: s.revision for s in hybrid.status()} == {"a": "t002", "b": "t002"}

    renamed = hybrid.rename_tenant("b", "b2")
    assert renamed.strategy == "database" and renamed.location.database == renamed.schema
    assert renamed.schema in database_names(pg_url)
    hybrid.rename_tenant("a", "a2")
    assert hybrid.get_tenant("a2").schema in schemas(hybrid)
    with hybrid.session("b2") as s, hybrid.session("a2") as t:
        assert s.scalars(sa.select(Customer)).all() == t.scalars(sa.select(Customer)).all() == []

    with pytest.raises(Exception, match="confirm"):
        hybrid.drop_tenant("a2")
    assert hybrid.drop_tenant("a2", confirm=True) and hybrid.drop_tenant("b2", confirm=True)
    assert renamed.schema not in database_names(pg_url)
    assert not {s for s in schemas(hybrid) if s.startswith(hybrid.prefix)}


@pytest.mark.parametrize("online", [None, False], ids=["online", "offline"])
def test_promote_and_demote_keep_every_row_and_sequence(
    hybrid: Tenancy, pg_url: str, second_url: str, online: bool | None
) -> None:
    info = hybrid.create_tenant("acme")
    hybrid.create_tenant("other")
    fill(hybrid, "acme")
    before, seq_before = snapshot(hybrid, "acme"), sequences(hybrid, "acme")
    with hybrid.session("acme"):  # route cached as a schema tenant
        pass

    promoted = hybrid.promote_tenant("acme", to_server="second", online=online)
    assert promoted.strategy == "database"
    assert (promoted.location.server, promoted.location.database) == ("second", info.schema)
    assert promoted.schema == info.schema and promoted.revision == info.revision
    assert info.schema not in schemas(hybrid)  # old schema dropped
    assert info.schema in database_names(second_url)
    assert snapshot(hybrid, "acme") == before and sequences(hybrid, "acme") == seq_before
    assert hybrid.promote_tenant("acme") == promoted  # idempotent
    with hybrid.session("acme") as s:  # sequences continue where they were
        s.add(Customer(name="after"))
        s.flush()
        assert s.scalars(sa.select(Customer.id).where(Customer.name == "after")).one() == 501
        s.rollback()
    assert hybrid.migrate_tenant("acme", "t001").after == "t001"
    assert hybrid.migrate_tenant("acme").after == "t002"
    fill(hybrid, "acme", 4)
    before, seq_before = snapshot(hybrid, "acme"), sequences(hybrid, "acme")

    demoted = hybrid.demote_tenant("acme", online=online)
    assert (demoted.strategy, demoted.location.database, demoted.location.server) == (
        "schema", None, None)
    assert info.schema in schemas(hybrid)
    assert info.schema not in database_names(second_url)
    assert snapshot(hybrid, "acme") == before and sequences(hybrid, "acme") == seq_before
    assert hybrid.demote_tenant("acme") == demoted
    with hybrid.session("other") as s:  # the neighbour never moved
        assert s.scalars(sa.select(Customer)).all() == []


def test_promotion_blocks_writes_not_reads_during_the_copy(
    hybrid: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    hybrid.create_tenant("acme")
    fill(hybrid, "acme", 4)
    schema = hybrid.get_tenant("acme").schema
    seen: dict[str, Any] = {}
    verify = Promotion._verify

    def probe(self: Promotion) -> None:
        routed = hybrid.engine.execution_options(schema_translate_map={"__tenant__": schema})
        with routed.connect() as conn:
            seen["reads"] = count_while_writes_wait(conn, "200ms")
        verify(self)

    monkeypatch.setattr(Promotion, "_verify", probe)
    hybrid.promote_tenant("acme")
    assert seen["reads"] == 3
    with hybrid.session("acme") as s:
        assert s.get(Setting, "k") is None


def test_failed_promotion_leaves_the_tenant_where_it_was(
    hybrid: Tenancy, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = hybrid.create_tenant("acme")
    fill(hybrid, "acme", 4)
    before = snapshot(hybrid, "acme")

    def broken(self: Promotion) -> None:
        raise RuntimeError("copy differs")

    monkeypatch.setattr(Promotion, "_verify", broken)
    with pytest.raises(RuntimeError):
        hybrid.promote_tenant("acme")
    assert hybrid.get_tenant("acme") == info
    assert info.schema not in database_names(pg_url)
    assert snapshot(hybrid, "acme") == before
    with hybrid.session("acme") as s:  # writes go on
        s.add(Setting(key="k", value="v"))
        s.commit()


def test_foreign_key_to_a_shared_table_refuses_promotion_unless_dropped(
    make_hybrid: Callable[..., Tenancy], pg_url: str
) -> None:
    tenancy = make_hybrid(tenant_migrations=MIGRATIONS / "tenant")  # orders.user_id -> users
    info = tenancy.create_tenant("acme")
    with tenancy.session() as s:
        s.add(User(id=7, name="u"))
        s.commit()
    fill(tenancy, "acme", 6)
    with tenancy.session("acme") as s:
        s.add(Order(customer_id=s.scalars(sa.select(Customer.id)).first(), user_id=7,
                    total=Decimal(1)))
        s.commit()
    before = snapshot(tenancy, "acme")

    with pytest.raises(ForeignKeyAcrossDatabases) as raised:
        tenancy.promote_tenant("acme")
    assert raised.value.keys == [("orders", "orders_user_id_fkey", "public.users")]
    assert "acme" in str(raised.value) and "orders.orders_user_id_fkey" in str(raised.value)
    assert tenancy.get_tenant("acme") == info and info.schema not in database_names(pg_url)

    promoted = tenancy.promote_tenant("acme", drop_foreign_keys=True)
    assert promoted.strategy == "database"
    assert snapshot(tenancy, "acme") == before
    with tenancy.connection("acme") as conn:
        keys = conn.execute(sa.text(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1")).scalars().all()
    assert keys == ["orders_customer_id_fkey"]  # the in-tenant key is kept


def test_other_processes_follow_a_promotion(
    make_hybrid: Callable[..., Tenancy], database_url: str, second_url: str
) -> None:
    first = make_hybrid()
    first.create_tenant("acme")
    fill(first, "acme", 4)
    other = Tenancy(database_url, strategy="hybrid", prefix=first.prefix,
                    servers={"second": second_url}, tenant_migrations=TENANT_DB)
    try:
        # Before the other process re-reads the registry's generation (once a second), a
        # statement on a stale route fails once, and the route is forgotten.
        other.core.store.freshness.interval = 3600.0
        with other.session("acme") as s:  # caches the schema route
            assert len(s.scalars(sa.select(Customer)).all()) == 3
        first.promote_tenant("acme")
        with other.session("acme") as s, pytest.raises(UnknownTenant):
            s.scalars(sa.select(Customer)).all()
        with other.session("acme") as s:  # the stale route was forgotten
            assert len(s.scalars(sa.select(Customer)).all()) == 3
        first.demote_tenant("acme")
        # its pooled connection to the dropped database was cut: the server says it is gone
        with other.session("acme") as s, pytest.raises(UnknownTenant):
            s.scalars(sa.select(Customer)).all()
        with other.session("acme") as s:
            assert len(s.scalars(sa.select(Customer)).all()) == 3
        # Once it re-reads the generation, it follows without a failed statement.
        other.core.store.freshness.interval = 0.0
        first.promote_tenant("acme")
        with other.session("acme") as s:
            assert len(s.scalars(sa.select(Customer)).all()) == 3
        first.demote_tenant("acme")
        with other.session("acme") as s:
            assert len(s.scalars(sa.select(Customer)).all()) == 3
    finally:
        other.dispose()


def test_promote_needs_a_hybrid_tenancy(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    with pytest.raises(ConfigurationError, match="hybrid"):
        tenancy.promote_tenant("acme")
    with pytest.raises(ConfigurationError, match="hybrid"):
        tenancy.create_tenant("b", strategy="database")


def test_cli_promote_and_demote(hybrid: Tenancy, database_url: str, second_url: str,
                                tmp_path: Path) -> None:
    hybrid.create_tenant("acme")
    fill(hybrid, "acme", 4)
    base = [
        "--url", database_url, "--strategy", "hybrid", "--prefix", hybrid.prefix,
        "--server", f"second={second_url}", "--tenant-migrations", str(TENANT_DB),
    ]
    runner = CliRunner()
    result = runner.invoke(app, [*base, "promote", "acme", "--to-server", "second", "--online"])
    assert result.exit_code == 0, result.output
    assert "on server second" in result.output
    assert hybrid.get_tenant("acme").location.server == "second"
    result = runner.invoke(app, [*base, "promote", "acme", "--to-server", "nowhere"])
    assert result.exit_code == 1 and "unknown server 'nowhere'" in result.output
    result = runner.invoke(app, [*base, "demote", "acme", "--offline"])
    assert result.exit_code == 0, result.output
    assert hybrid.get_tenant("acme").strategy == "schema"
    assert len(snapshot(hybrid, "acme")["customers"]) == 3


def test_a_writer_waiting_during_promotion_fails_instead_of_writing_to_the_old_copy(
    hybrid: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    hybrid.create_tenant("acme")
    outcome: dict[str, BaseException | None] = {}
    with hybrid.connection("acme"):  # route it as a schema tenant before the promotion
        pass

    def writer() -> None:
        try:
            with hybrid.connection("acme") as conn:
                conn.execute(sa.insert(Setting).values(key="late", value="v"))
                conn.commit()
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    verify = Promotion._verify
    thread = threading.Thread(target=writer)

    def start_writer(self: Promotion) -> None:
        thread.start()
        with hybrid.engine.connect() as conn:  # wait until the INSERT waits on our lock
            for _ in range(500):
                waiting = conn.scalar(sa.text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation IS NOT NULL"))
                if waiting:
                    break
                time.sleep(0.02)
                conn.rollback()
        verify(self)

    monkeypatch.setattr(Promotion, "_verify", start_writer)
    hybrid.promote_tenant("acme")
    thread.join()
    assert isinstance(outcome["error"], UnknownTenant), outcome["error"]
    with hybrid.session("acme") as s:
        assert s.get(Setting, "late") is None


def test_async_sessions_reach_both_kinds(hybrid: Tenancy) -> None:
    hybrid.create_tenant("small")
    hybrid.create_tenant("big", strategy="database")
    for name in ("small", "big"):
        with hybrid.session(name) as s:
            s.add(Customer(name=f"only-{name}"))
            s.commit()

    async def main() -> None:
        async with AsyncTenancy(hybrid) as at:
            for name in ("small", "big"):
                async with at.session(name) as s:
                    names = (await s.scalars(sa.select(Customer.name))).all()
                    assert list(names) == [f"only-{name}"]
            async with at.session() as s:
                with pytest.raises(NoTenantSelected):
                    await s.execute(sa.select(Customer))

    asyncio.run(main())


def test_import_into_a_hybrid_tenancy_records_a_schema_tenant(
    hybrid: Tenancy, tmp_path: Path
) -> None:
    hybrid.create_tenant("big", strategy="database")
    fill(hybrid, "big", 4)
    hybrid.export_tenant("big", tmp_path / "export")
    copy = hybrid.import_tenant(tmp_path / "export", "copy")
    assert (copy.strategy, copy.location.database) == ("schema", None)
    assert snapshot(hybrid, "copy") == snapshot(hybrid, "big")

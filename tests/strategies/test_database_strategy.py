"""Database per tenant: provisioning, routing, isolation, placement, rename, drop, migrations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import (
    ConfigurationError,
    ConfirmationRequired,
    NoTenantSelected,
    Tenancy,
    UnknownTenant,
    use,
)
from tenantry.strategies.database import DatabaseStrategy
from tests.app.models import Customer, Setting
from tests.support.databases import database_names

NOTES = sa.Table("notes", sa.MetaData(), sa.Column("id", sa.Integer), schema="__tenant__")


def strategy_of(tenancy: Tenancy) -> DatabaseStrategy:
    assert isinstance(tenancy.strategy, DatabaseStrategy)
    return tenancy.strategy


def test_create_makes_a_database_per_tenant_on_the_placed_server(
    dbt: Tenancy, pg_url: str, second_url: str
) -> None:
    acme, globex = dbt.create_tenant("acme"), dbt.create_tenant("globex")
    p = dbt.prefix
    assert acme.location.database == acme.schema == f"{p}acme"
    assert acme.location.server == "main" and globex.location.server == "second"
    assert f"{p}acme" in database_names(pg_url) and f"{p}acme" not in database_names(second_url)
    assert f"{p}globex" in database_names(second_url)
    assert acme.revision == "t002" and acme.strategy == "database"
    assert dbt.create_tenant("acme") == acme  # idempotent


def test_tenant_databases_are_isolated(dbt: Tenancy) -> None:
    dbt.create_tenant("acme")
    dbt.create_tenant("globex")
    with dbt.session("acme") as s:
        s.add(Customer(name="Wile E."))
        s.commit()
    with use("globex"), dbt.session() as s:
        assert s.scalars(sa.select(Customer)).all() == []
        s.add(Customer(name="Hank"))
        s.commit()
    with dbt.session("acme") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["Wile E."]
        # the seed row written by the first migration is there (template copied it)
        assert s.get(Setting, "currency") is not None


def test_no_tenant_selected_and_unknown_tenant(dbt: Tenancy) -> None:
    dbt.create_tenant("acme")
    with dbt.session() as s, pytest.raises(NoTenantSelected):
        s.scalars(sa.select(Customer)).all()
    with pytest.raises(UnknownTenant):
        dbt.session("nobody")
    with use("nobody"), pytest.raises(UnknownTenant):
        dbt.session()
    with pytest.raises(UnknownTenant), dbt.use("nobody"):
        pass


def test_drop_requires_confirm_then_drops_the_database(dbt: Tenancy, pg_url: str) -> None:
    info = dbt.create_tenant("acme")
    with dbt.session("acme") as s:  # an open pooled connection: drop must end it
        s.add(Customer(name="x"))
        s.commit()
    with pytest.raises(ConfirmationRequired):
        dbt.drop_tenant("acme")
    assert info.location.database in database_names(pg_url)
    assert dbt.drop_tenant("acme", confirm=True)
    assert info.location.database not in database_names(pg_url)
    assert not dbt.tenant_exists("acme")
    with pytest.raises(UnknownTenant):
        dbt.session("acme")
    assert dbt.drop_tenant("acme", confirm=True) is False


def test_concurrent_create_of_the_same_tenant(dbt: Tenancy, pg_url: str) -> None:
    results: list[object] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            results.append(dbt.create_tenant("acme"))
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 4 and len({r.created_at for r in results}) == 1  # type: ignore[attr-defined]
    assert [t.name for t in dbt.list_tenants()] == ["acme"]


def test_concurrent_create_of_different_tenants(dbt: Tenancy) -> None:
    names = [f"c{i}" for i in range(6)]
    threads = [threading.Thread(target=dbt.create_tenant, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [t.name for t in dbt.list_tenants()] == names
    for name in names:
        with dbt.session(name) as s:
            assert s.get(Setting, "currency") is not None


@pytest.mark.parametrize("template", [True, False])
def test_failed_create_leaves_no_database_and_no_row(
    make_tenancy: Callable[..., Tenancy], migrations_dir: Path, pg_url: str, template: bool
) -> None:
    stream = migrations_dir / "tenant_db"
    (stream / "versions" / "t003_broken.py").write_text(
        'revision = "t003"\ndown_revision = "t002"\n'
        "from alembic import op\n\n"
        "def upgrade() -> None:\n    op.execute('SELECT * FROM no_such_table')\n"
    )
    tenancy = make_tenancy(tenant_migrations=stream, template=template)
    # (the core guard may report the missing table as UnknownTenant: the probe it runs cannot
    # see the uncommitted schema; either way the migration error stops the create)
    with pytest.raises((sa.exc.ProgrammingError, UnknownTenant)):
        tenancy.create_tenant("acme")
    assert f"{tenancy.prefix}acme" not in database_names(pg_url)
    assert tenancy.list_tenants() == []


def test_placement_default_is_fewest_tenants(dbt: Tenancy) -> None:
    servers = [dbt.create_tenant(f"p{i}").location.server for i in range(4)]
    assert sorted(servers) == ["main", "main", "second", "second"]
    assert strategy_of(dbt).load(dbt.engine.connect()) == {"main": 2, "second": 2}


def test_placement_policy_is_pluggable(make_tenancy: Callable[..., Tenancy]) -> None:
    seen: list[dict[str, int]] = []

    def eu_first(tenant: str, load: Mapping[str, int]) -> str:
        seen.append(dict(load))
        return "second" if tenant.startswith("eu") else "main"

    tenancy = make_tenancy(placement=eu_first)
    assert tenancy.create_tenant("eu_shop").location.server == "second"
    assert tenancy.create_tenant("us_shop").location.server == "main"
    assert seen == [{"main": 0, "second": 0}, {"main": 0, "second": 1}]

    bad = make_tenancy(placement=lambda tenant, load: "mars")
    with pytest.raises(ConfigurationError, match="mars"):
        bad.create_tenant("x")


def test_template_is_rebuilt_when_the_head_changes(
    make_tenancy: Callable[..., Tenancy], migrations_dir: Path
) -> None:
    stream = migrations_dir / "tenant_db"
    tenancy = make_tenancy(tenant_migrations=stream)
    tenancy.create_tenant("before")
    (stream / "versions" / "t003_notes.py").write_text(
        'revision = "t003"\ndown_revision = "t002"\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        "def upgrade() -> None:\n"
        "    op.create_table('notes', sa.Column('id', sa.Integer, primary_key=True))\n"
        "    op.execute('INSERT INTO notes (id) VALUES (42)')\n"
    )
    newer = make_tenancy(tenant_migrations=stream, prefix=tenancy.prefix)
    after = newer.create_tenant("after")
    assert after.revision == "t003"
    with newer.connection("after") as conn:
        assert conn.execute(sa.select(NOTES.c.id)).scalar_one() == 42
    # existing database tenants are brought up by migrate_all, through the same strategy
    report = newer.migrate_all()
    assert report.ok
    results = {t.tenant: t.result for t in report.tenants}
    assert results == {"after": "current", "before": "upgraded"}
    with newer.connection("before") as conn:
        assert conn.execute(sa.select(NOTES.c.id)).scalar_one() == 42
    assert {s.tenant: s.revision for s in newer.status()} == {"after": "t003", "before": "t003"}


def test_rename_moves_database_and_schema(dbt: Tenancy, pg_url: str) -> None:
    dbt.create_tenant("acme")
    with dbt.session("acme") as s:
        s.add(Customer(name="x"))
        s.commit()
    info = dbt.rename_tenant("acme", "acme2")
    p = dbt.prefix
    assert info.location.database == info.schema == f"{p}acme2"
    names = database_names(pg_url)
    assert f"{p}acme2" in names and f"{p}acme" not in names
    with dbt.session("acme2") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["x"]
    with pytest.raises(UnknownTenant):
        dbt.session("acme")


def test_database_options_need_the_database_strategy(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="strategy='database'"):
        Tenancy(database_url, max_engines=3)


def test_database_dropped_behind_our_back_is_an_unknown_tenant(dbt: Tenancy) -> None:
    info = dbt.create_tenant("acme")
    with dbt.session("acme") as s:
        s.scalars(sa.select(Customer)).all()
    strategy = strategy_of(dbt)
    strategy.engines.discard("main", info.schema)  # as in a process that did not drop it...
    with strategy.admin("main").connect() as conn:  # ...while another one did
        conn.exec_driver_sql(f'DROP DATABASE "{info.schema}" WITH (FORCE)')
    with dbt.session("acme") as s, pytest.raises(UnknownTenant, match="no longer exists"):
        s.scalars(sa.select(Customer)).all()
    with dbt.engine.begin() as conn:  # unregister it for the cleanup
        conn.execute(sa.text("DELETE FROM tenantry_tenants WHERE name = 'acme'"))

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import (
    ConfirmationRequired,
    InvalidTenantName,
    State,
    Tenancy,
    TenantBase,
    TenantExists,
    UnknownTenant,
)
from tenantry.models import shared_tables, tenant_tables
from tests.support.databases import MIGRATIONS, tenant_schemas


def test_create_registers_and_migrates(tenancy: Tenancy) -> None:
    info = tenancy.create_tenant("acme")
    assert (info.name, info.schema, info.state, info.revision) == (
        "acme",
        "tenant_acme",
        State.READY,
        "t002",
    )
    assert tenant_schemas(tenancy) == {"tenant_acme"}
    assert tenancy.tenant_exists("acme") and not tenancy.tenant_exists("globex")
    assert [t.name for t in tenancy.list_tenants()] == ["acme"]


def test_create_is_idempotent(tenancy: Tenancy) -> None:
    first = tenancy.create_tenant("acme")
    again = tenancy.create_tenant("acme")
    assert again == first
    assert len(tenancy.list_tenants()) == 1


def test_concurrent_create_of_one_tenant(database_url: str) -> None:
    """Eight independent Tenancy objects (eight pools, as eight processes would have) race."""
    racers = [Tenancy(database_url, tenant_migrations=MIGRATIONS / "tenant") for _ in range(8)]
    racers[0].migrate_shared()
    barrier = threading.Barrier(len(racers))
    results: list[object] = []

    def race(t: Tenancy) -> None:
        barrier.wait()
        try:
            results.append(t.create_tenant("acme"))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=race, args=(t,)) for t in racers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert not [r for r in results if isinstance(r, Exception)], results
        assert len({r.created_at for r in results}) == 1  # type: ignore[attr-defined]
        assert tenant_schemas(racers[0]) == {"tenant_acme"}
        assert len(racers[0].list_tenants()) == 1
    finally:
        for t in racers:
            t.dispose()


def test_failure_half_way_leaves_nothing(database_url: str, migrations_dir: Path) -> None:
    (migrations_dir / "tenant" / "versions" / "t003_broken.py").write_text(
        'revision = "t003"\ndown_revision = "t002"\nfrom alembic import op\n'
        "def upgrade():\n"
        '    op.execute("CREATE TABLE half_made (id int)")\n'
        '    op.execute("SELECT no_such_function()")\n'
        "def downgrade():\n    pass\n"
    )
    t = Tenancy(database_url, tenant_migrations=migrations_dir / "tenant")
    t.migrate_shared()
    try:
        with pytest.raises(sa.exc.ProgrammingError, match="no_such_function"):
            t.create_tenant("acme")
        assert tenant_schemas(t) == set()
        assert t.list_tenants() == []
    finally:
        t.dispose()


def test_orphan_schema_is_not_adopted(tenancy: Tenancy) -> None:
    with tenancy.engine.begin() as c:
        c.exec_driver_sql('CREATE SCHEMA "tenant_ghost"')
    with pytest.raises(TenantExists, match="not registered"):
        tenancy.create_tenant("ghost")


def test_drop_requires_confirmation(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    with pytest.raises(ConfirmationRequired):
        tenancy.drop_tenant("acme")
    assert tenancy.tenant_exists("acme")
    assert tenancy.drop_tenant("acme", confirm=True) is True
    assert tenant_schemas(tenancy) == set() and tenancy.list_tenants() == []
    assert tenancy.drop_tenant("acme", confirm=True) is False


def test_rename(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    with tenancy.session("acme") as s:
        s.execute(sa.text("SELECT 1"))
    info = tenancy.rename_tenant("acme", "acme_corp")
    assert (info.name, info.schema) == ("acme_corp", "tenant_acme_corp")
    assert tenant_schemas(tenancy) == {"tenant_acme_corp"}
    assert tenancy.rename_tenant("acme", "acme_corp") == info  # idempotent
    with pytest.raises(UnknownTenant):
        tenancy.session("acme")
    with pytest.raises(UnknownTenant):
        tenancy.rename_tenant("nobody", "somebody")
    tenancy.create_tenant("globex")
    with pytest.raises(TenantExists):
        tenancy.rename_tenant("globex", "acme_corp")


@pytest.mark.parametrize("bad", ["Acme", "a-b", 'x"; DROP SCHEMA public; --', "", "x" * 60])
def test_bad_names_rejected_everywhere(tenancy: Tenancy, bad: str) -> None:
    for call in (
        lambda: tenancy.create_tenant(bad),
        lambda: tenancy.drop_tenant(bad, confirm=True),
        lambda: tenancy.rename_tenant("acme", bad),
        lambda: tenancy.session(bad),
        lambda: tenancy.get_tenant(bad),
    ):
        with pytest.raises(InvalidTenantName):
            call()
    assert tenant_schemas(tenancy) == set()


def test_metadata_mode_and_custom_prefix(database_url: str) -> None:
    """Without migration streams, tables come from the models' metadata."""
    with Tenancy(database_url, prefix="co_") as t:
        assert t.migrate_shared() is None
        info = t.create_tenant("acme")
        assert (info.schema, info.revision) == ("co_acme", None)
        with t.engine.connect() as c:
            tables = set(
                c.scalars(
                    sa.text(
                        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                        "WHERE table_schema IN ('co_acme', 'public')"
                    )
                )
            )
        # Other test modules may add models to the same declarative base (examples/models.py):
        # every tenant table of the metadata is created, nothing else.
        metadata = TenantBase.metadata
        expected = {f"co_acme.{table.name}" for table in tenant_tables(metadata)}
        expected |= {f"public.{table.name}" for table in shared_tables(metadata)}
        assert {"co_acme.customers", "co_acme.orders", "co_acme.settings"} <= expected
        assert tables == expected | {"public.tenantry_tenants", "public.tenantry_intents",
                                     "public.tenantry_generation", "public.tenantry_history",
                                     "public.tenantry_domains"}

from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import MigrationError, State, Tenancy, UnknownTenant
from tests.app.models import Customer

T003 = '''"""tenant: customers.email unique"""
from alembic import op

revision = "t003"
down_revision = "t002"


def upgrade():
    op.execute("UPDATE settings SET value = 'v3' WHERE key = 'currency'")
    op.create_unique_constraint("customers_email_key", "customers", ["email"])


def downgrade():
    op.drop_constraint("customers_email_key", "customers")
'''


def columns(t: Tenancy, schema: str, table: str) -> dict[str, str]:
    with t.engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t"
            ),
            {"s": schema, "t": table},
        )
        return {name: kind for name, kind in rows}


def test_alembic_operations_land_in_the_tenant_schema(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    cols = columns(tenancy, "tenant_acme", "customers")
    assert cols == {"id": "integer", "name": "text", "email": "text"}  # add_column, alter_column
    with tenancy.engine.connect() as c:
        assert c.execute(sa.text("SELECT * FROM tenant_acme.settings")).all() == [
            ("currency", "EUR")  # op.execute
        ]
        assert c.scalar(sa.text("SELECT version_num FROM tenant_acme.alembic_version")) == "t002"
        public = set(
            c.scalars(
                sa.text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            )
        )
    assert public == {"users", "alembic_version", "tenantry_tenants", "tenantry_templates",
                      "tenantry_intents", "tenantry_generation",
                      "tenantry_history", "tenantry_domains"}
    assert columns(tenancy, "public", "customers") == {}


def test_shared_stream_is_versioned_in_public(tenancy: Tenancy) -> None:
    with tenancy.engine.connect() as c:
        assert c.scalar(sa.text("SELECT version_num FROM public.alembic_version")) == "s001"
    step = tenancy.migrate_shared()
    assert step is not None and not step.changed


def add_t003(migrations_dir: Path, database_url: str) -> Tenancy:
    (migrations_dir / "tenant" / "versions" / "t003_unique_email.py").write_text(T003)
    return Tenancy(
        database_url,
        tenant_migrations=migrations_dir / "tenant",
        shared_migrations=migrations_dir / "shared",
    )


def test_migrate_all_one_failure_does_not_stop_the_others(
    tenancy: Tenancy, migrations_dir: Path, database_url: str
) -> None:
    for name in ("acme", "bad", "globex"):
        tenancy.create_tenant(name)
    with tenancy.session("bad") as s, s.begin():  # duplicate emails: t003 fails here only
        s.add_all([Customer(name="a", email="x@y"), Customer(name="b", email="x@y")])

    with add_t003(migrations_dir, database_url) as v3:
        assert [(s.tenant, s.revision, s.current) for s in v3.status()] == [
            ("acme", "t002", False),
            ("bad", "t002", False),
            ("globex", "t002", False),
        ]
        report = v3.migrate_all()
        results = {t.tenant: (t.result, t.before, t.after) for t in report.tenants}
        assert results == {
            "acme": ("upgraded", "t002", "t003"),
            "bad": ("failed", "t002", "t002"),
            "globex": ("upgraded", "t002", "t003"),
        }
        assert not report.ok and [f.tenant for f in report.failed] == ["bad"]
        assert "customers_email_key" in (report.failed[0].error or "")

        # the failed tenant is wholly at its old revision: its data change rolled back too
        with v3.engine.connect() as c:
            assert c.scalar(sa.text("SELECT value FROM tenant_bad.settings")) == "EUR"
            assert c.scalar(sa.text("SELECT version_num FROM tenant_bad.alembic_version")) == "t002"
            assert c.scalar(sa.text("SELECT value FROM tenant_acme.settings")) == "v3"
        status = {s.tenant: s for s in v3.status()}
        assert status["bad"].state == State.FAILED and not status["bad"].current
        assert status["acme"].state == State.READY and status["acme"].current

        # fix the data, re-run: only the failed tenant is touched
        with v3.session("bad") as s, s.begin():
            s.execute(sa.update(Customer).where(Customer.name == "b").values(email="z@y"))
        again = v3.migrate_all()
        assert {t.tenant: t.result for t in again.tenants} == {
            "acme": "current",
            "bad": "upgraded",
            "globex": "current",
        }
        assert all(s.current and s.state == State.READY for s in v3.status())

        # new tenants are created at the new head
        assert v3.create_tenant("initech").revision == "t003"


def test_migrate_tenant_and_downgrade(
    tenancy: Tenancy, migrations_dir: Path, database_url: str
) -> None:
    tenancy.create_tenant("acme")
    with add_t003(migrations_dir, database_url) as v3:
        out = v3.migrate_tenant("acme")
        assert (out.result, out.before, out.after) == ("upgraded", "t002", "t003")
        assert v3.migrate_tenant("acme").result == "current"
        with pytest.raises(UnknownTenant):
            v3.migrate_tenant("nobody")
        with pytest.raises(UnknownTenant):
            v3.migrate_all(tenants=["acme", "nobody"])
        down = v3.migrate_tenant("acme", target="t001")
        assert (down.before, down.after) == ("t003", "t001")
        assert columns(v3, "tenant_acme", "customers") == {
            "id": "integer",
            "name": "character varying",
        }
        assert v3.get_tenant("acme").revision == "t001"


def test_failing_single_tenant_migration_raises(
    tenancy: Tenancy, migrations_dir: Path, database_url: str
) -> None:
    tenancy.create_tenant("acme")
    with tenancy.session("acme") as s, s.begin():
        s.add_all([Customer(name="a", email="x@y"), Customer(name="b", email="x@y")])
    with add_t003(migrations_dir, database_url) as v3:
        with pytest.raises(MigrationError, match="acme"):
            v3.migrate_tenant("acme")
        assert v3.get_tenant("acme").state == State.FAILED


def test_offline_sql_targets_the_tenant_schema(tenancy: Tenancy) -> None:
    assert tenancy.tenant_stream is not None
    sql = tenancy.tenant_stream.sql("tenant_acme")
    assert "CREATE TABLE customers" in sql and "tenant_acme.alembic_version" in sql


def test_bad_migration_directory(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        Tenancy(database_url, tenant_migrations=tmp_path / "nope")


def test_no_tenant_stream(database_url: str) -> None:
    with Tenancy(database_url) as t, pytest.raises(MigrationError, match="tenant_migrations"):
        t.migrate_all()

"""Template provisioning: a templated tenant is identical to one built by replaying migrations."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import Tenancy
from tenantry.provisioning.template import TEMPLATE_SCHEMA, split_dump, templates
from tests.support.catalog import snapshot

MakeTenancy = Callable[..., Tenancy]


def _snap(t: Tenancy, name: str) -> dict[str, object]:
    with t.engine.begin() as conn:
        return snapshot(conn, t.locate(name).schema)


def test_template_tenant_identical_to_migrated(make_fleet_tenancy: MakeTenancy) -> None:
    templated = make_fleet_tenancy(provisioning="template")
    migrated = make_fleet_tenancy(provisioning="migrations")
    migrated.create_tenant("by_migrations")
    templated.create_tenant("warm")  # builds the template
    templated.create_tenant("by_template")
    with templated.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(templates)).scalar() == 1
    expected, got = _snap(migrated, "by_migrations"), _snap(templated, "by_template")
    assert expected["enums"] and expected["triggers"] and expected["views"]
    assert expected["data"]["customers"]  # seed rows exist
    for key in expected:
        assert got[key] == expected[key], key
    assert templated.get_tenant("by_template").revision == "f003"


def test_name_dependent_objects_point_at_the_new_schema(make_fleet_tenancy: MakeTenancy) -> None:
    t = make_fleet_tenancy(provisioning="template")
    for name in ("one", "two"):
        t.create_tenant(name)
    with t.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO tenant_one.customers (name) VALUES ('extra')")
        conn.exec_driver_sql("INSERT INTO tenant_one.invoices (customer_id, amount) VALUES (1, 1)")
        counts = conn.exec_driver_sql(
            "SELECT tenant_one.customer_count(), tenant_two.customer_count()"
        ).one()
        assert tuple(counts) == (5, 4)  # each function counts its own schema's rows
        numbers = conn.exec_driver_sql(
            "SELECT (SELECT max(number) FROM tenant_one.invoices), "
            "(SELECT last_value FROM tenant_two.invoice_no), "
            "(SELECT last_value FROM tenant_one.invoice_no)"
        ).one()
        assert numbers[1] == 1010 and numbers[2] == 1015 == numbers[0]
        conn.exec_driver_sql("UPDATE tenant_two.invoices SET amount = 2")  # trigger of two
        touched = conn.exec_driver_sql("SELECT DISTINCT touched FROM tenant_two.invoices")
        assert touched.scalars().all() == [1]
        leaked = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_depend d JOIN pg_namespace n ON n.oid = d.refobjid "  # noqa: S608
            f"WHERE n.nspname = '{TEMPLATE_SCHEMA}' AND d.refclassid = 'pg_namespace'::regclass "
            "AND d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM pg_class "
            "WHERE relnamespace = 'tenant_one'::regnamespace)"
        ).scalar()
        assert leaked == 0


def test_template_rebuilt_when_the_head_changes(
    make_fleet_tenancy: MakeTenancy, fleet_migrations: Path
) -> None:
    make_fleet_tenancy(provisioning="template").create_tenant("old")
    (fleet_migrations / "versions" / "f004_new.py").write_text(
        'from alembic import op\nrevision = "f004"\ndown_revision = "f003"\n'
        "def upgrade():\n    op.execute(\"CREATE TABLE notes (body text DEFAULT 'hi')\")\n"
        "    op.execute(\"INSERT INTO notes VALUES ('first')\")\n"
        "def downgrade():\n    op.execute('DROP TABLE notes')\n"
    )
    t = make_fleet_tenancy(provisioning="template")
    info = t.create_tenant("new")
    assert info.revision == "f004"
    with t.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT body FROM tenant_new.notes").scalars().all() == [
            "first"
        ]
        heads = conn.execute(sa.select(templates.c.head).order_by(templates.c.head)).scalars()
        assert heads.all() == ["f003", "f004"]
        assert conn.exec_driver_sql(
            f"SELECT version_num FROM {TEMPLATE_SCHEMA}.alembic_version"  # noqa: S608
        ).scalar() == "f004"


def test_concurrent_creates_build_one_template(make_fleet_tenancy: MakeTenancy) -> None:
    tenancies = [make_fleet_tenancy(provisioning="template") for _ in range(4)]
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            tenancies[i].create_tenant(f"c{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert {i.name for i in tenancies[0].list_tenants()} == {"c0", "c1", "c2", "c3"}
    with tenancies[0].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(templates)).scalar() == 1


def test_failed_create_leaves_nothing(make_fleet_tenancy: MakeTenancy) -> None:
    t = make_fleet_tenancy(provisioning="template")
    t.create_tenant("first")
    with t.engine.begin() as conn:  # a clashing object makes the template replay fail
        conn.exec_driver_sql("CREATE SCHEMA tenant_clash")
    with pytest.raises(Exception, match="clash"):
        t.create_tenant("clash")
    assert not t.tenant_exists("clash")


def test_split_dump_rewrites_ddl_not_row_values() -> None:
    dump = (
        "SET statement_timeout = 0;\n"
        f"CREATE SCHEMA {TEMPLATE_SCHEMA};\n"
        "--\n-- Name: t; Type: TABLE; Schema: x; Owner: -\n--\n"
        f"CREATE TABLE {TEMPLATE_SCHEMA}.t (a text DEFAULT '{TEMPLATE_SCHEMA}x');\n"
        f"ALTER TABLE {TEMPLATE_SCHEMA}.t ALTER a SET DEFAULT nextval('{TEMPLATE_SCHEMA}.s');\n"
        "--\n-- Data for Name: t; Type: TABLE DATA; Schema: x; Owner: -\n--\n"
        f"INSERT INTO {TEMPLATE_SCHEMA}.t VALUES ('{TEMPLATE_SCHEMA}.t'),\n"
        f"('{TEMPLATE_SCHEMA}');\n"
        "--\n-- Name: s; Type: SEQUENCE SET; Schema: x; Owner: -\n--\n"
        f"SELECT pg_catalog.setval('{TEMPLATE_SCHEMA}.s', 3, true);\n"
    )
    sql = "S".join(split_dump(dump))
    assert "statement_timeout" not in sql and "CREATE SCHEMA" not in sql
    assert "CREATE TABLE S.t (a text DEFAULT 'tenantry_templatex')" in sql
    assert "nextval('S.s')" in sql
    rows = f"INSERT INTO S.t VALUES ('{TEMPLATE_SCHEMA}.t'),\n('{TEMPLATE_SCHEMA}');"  # noqa: S608
    assert rows in sql
    assert "setval('S.s', 3, true)" in sql

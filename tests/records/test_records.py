"""The tenant record on schema tenants: declared once, set at create and later, read with the
registry row, filtered in list/status/across/migrate_all, kept through renames and drops."""

from __future__ import annotations

import asyncio
import datetime as dt
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import (
    ConfigurationError,
    InvalidRecord,
    MigrationError,
    NotConfiguredFor,
    Tenancy,
    UnknownRecordField,
    UnknownTenant,
)
from tenantry.aio import AsyncTenancy
from tests.support.databases import MIGRATIONS, TENANT_DB, tenant_schemas
from tests.support.records import record_columns, record_rows, record_tenancy

D = dt.date(2027, 1, 31)


@pytest.fixture
def rt(database_url: str) -> Iterator[Tenancy]:
    t = record_tenancy(database_url)
    yield t
    t.dispose()


def test_create_with_a_record_and_defaults(rt: Tenancy) -> None:
    info = rt.create_tenant("acme", record={"plan": "pro", "owner_email": "a@acme.test",
                                            "paid_until": D})
    assert dict(info.record) == {"plan": "pro", "owner_email": "a@acme.test",
                                 "paid_until": D, "seats": None}
    plain = rt.create_tenant("globex")
    assert plain.record["plan"] == "free"  # the server default
    assert rt.get_tenant("acme").record["paid_until"] == D
    assert [(t.name, t.record["plan"]) for t in rt.list_tenants()] == [
        ("acme", "pro"), ("globex", "free")]
    assert record_rows(rt)["acme"]["owner_email"] == "a@acme.test"
    # create is idempotent: an existing tenant is returned as it is
    assert rt.create_tenant("acme", record={"plan": "free"}).record["plan"] == "pro"


def test_text_values_are_read_as_the_column_type(rt: Tenancy) -> None:
    info = rt.create_tenant("acme", record={"paid_until": "2027-01-31", "seats": "5"})
    assert info.record["paid_until"] == D and info.record["seats"] == 5


def test_update_tenant(rt: Tenancy) -> None:
    rt.create_tenant("acme", record={"owner_email": "a@acme.test"})
    info = rt.update_tenant("acme", plan="enterprise", paid_until=D)
    assert info.record == {"plan": "enterprise", "owner_email": "a@acme.test",
                           "paid_until": D, "seats": None}
    assert rt.update_tenant("acme", owner_email=None).record["owner_email"] is None
    with pytest.raises(UnknownRecordField, match="colour"):
        rt.update_tenant("acme", colour="red", plan="free")
    with pytest.raises(InvalidRecord, match="seats"):
        rt.update_tenant("acme", seats=0, plan="free")  # the check constraint
    with pytest.raises(InvalidRecord):
        rt.update_tenant("acme", paid_until="someday")
    with pytest.raises(InvalidRecord, match="plan"):
        rt.update_tenant("acme", plan=None)  # NOT NULL
    assert rt.get_tenant("acme").record["plan"] == "enterprise"  # nothing of those applied
    with pytest.raises(UnknownTenant):
        rt.update_tenant("nobody", plan="pro")


def test_a_refused_record_leaves_no_tenant(rt: Tenancy) -> None:
    with pytest.raises(UnknownRecordField, match="colour"):
        rt.create_tenant("acme", record={"colour": "red"})
    with pytest.raises(InvalidRecord, match="seats"):
        rt.create_tenant("acme", record={"seats": -1})
    with pytest.raises(InvalidRecord):
        rt.create_tenant("acme", record={"paid_until": "not a date"})
    assert rt.list_tenants() == []
    assert tenant_schemas(rt) == set()
    assert record_rows(rt) == {}
    assert rt.create_tenant("acme", record={"seats": 3}).record["seats"] == 3


def test_where_filters(rt: Tenancy) -> None:
    rt.create_tenant("acme", record={"plan": "pro", "paid_until": D})
    rt.create_tenant("globex", record={"plan": "enterprise", "paid_until": D.replace(year=2025)})
    rt.create_tenant("initech")

    def names(where: object) -> list[str]:
        return [t.name for t in rt.list_tenants(where=where)]  # type: ignore[arg-type]

    assert names({"plan": "pro"}) == ["acme"]
    assert names({"plan": ["pro", "enterprise"]}) == ["acme", "globex"]
    assert names({"paid_until": None}) == ["initech"]
    assert names({"paid_until": "2027-01-31"}) == ["acme"]  # text, cast to date
    assert names(rt.records.c.paid_until < dt.date(2026, 1, 1)) == ["globex"]
    assert names(sa.or_(rt.records.c.plan == "free", rt.records.c.paid_until > D)) == ["initech"]
    assert names({}) == ["acme", "globex", "initech"]
    with pytest.raises(UnknownRecordField):
        names({"colour": "red"})
    with pytest.raises(InvalidRecord, match="mapping"):
        names("plan = 'pro'")

    status = rt.status(where={"plan": "enterprise"})
    assert [(s.tenant, s.record["plan"], s.current) for s in status] == [
        ("globex", "enterprise", True)]

    counted = rt.across(sa.text("SELECT count(*) AS n FROM __tenant__.settings"),
                        where=rt.records.c.plan != "free")
    assert sorted(r.tenant for r in counted) == ["acme", "globex"]
    listed = rt.across(sa.text("SELECT 1 FROM __tenant__.settings"), ["acme", "initech"],
                       where={"plan": "pro"})
    assert [r.tenant for r in listed] == ["acme"]

    for name in ("acme", "globex", "initech"):
        rt.migrate_tenant(name, "t001")
    report = rt.migrate_all(where={"plan": "pro"})
    assert [(o.tenant, o.result) for o in report.tenants] == [("acme", "upgraded")]
    assert {s.tenant: s.revision for s in rt.status()} == {
        "acme": "t002", "globex": "t001", "initech": "t001"}


def test_rename_and_drop_carry_the_record(rt: Tenancy) -> None:
    rt.create_tenant("acme", record={"plan": "pro"})
    assert rt.rename_tenant("acme", "acme2").record["plan"] == "pro"
    assert set(record_rows(rt)) == {"acme2"}
    rt.drop_tenant("acme2", confirm=True)
    assert record_rows(rt) == {}


def test_routes_do_not_read_the_record(rt: Tenancy) -> None:
    """Routing reads the registry row only (no join): the record is for listing reads."""
    rt.create_tenant("acme", record={"plan": "pro"})
    rt.core.route("acme")
    hit = rt.core.router.cached("acme")
    assert hit is not None and hit.info.record == {}
    assert rt.get_tenant("acme").record["plan"] == "pro"


def test_a_tenant_from_before_the_records_has_an_empty_one(database_url: str) -> None:
    with record_tenancy(database_url, tenant_columns=None) as old:
        old.create_tenant("acme")
        assert old.get_tenant("acme").record == {}
        with pytest.raises(NotConfiguredFor):
            _ = old.records
        with pytest.raises(UnknownRecordField, match="declares no record"):
            old.list_tenants(where={"plan": "pro"})
        with pytest.raises(UnknownRecordField):
            old.create_tenant("globex", record={"plan": "pro"})
        assert [t.name for t in old.list_tenants(where=sa.literal_column("state") == "ready")
                ] == ["acme"]
    with record_tenancy(database_url) as rt:
        assert rt.get_tenant("acme").record == {"plan": None, "owner_email": None,
                                                 "paid_until": None, "seats": None}
        assert rt.update_tenant("acme", seats=2).record["plan"] == "free"  # the row is made


def test_columns_are_checked(database_url: str) -> None:
    for bad in ([sa.Column("name", sa.Text)],
                [sa.Column("plan", sa.Text), sa.Column("plan", sa.Text)],
                [sa.Column("id", sa.Integer, primary_key=True)],
                ["plan"]):
        with pytest.raises(ConfigurationError):
            record_tenancy(database_url, tenant_columns=bad)
    taken = sa.Table("t", sa.MetaData(), sa.Column("plan", sa.Text))
    with pytest.raises(ConfigurationError, match="not columns of a table"):
        record_tenancy(database_url, tenant_columns=[taken.c.plan])
    metadata = sa.MetaData()
    columns = record_columns()
    one = record_tenancy(database_url, metadata=metadata, tenant_columns=columns)
    two = record_tenancy(database_url, metadata=metadata, tenant_columns=columns)
    assert one.records is two.records  # the same application, rebuilt
    with pytest.raises(ConfigurationError, match="one record"):
        record_tenancy(database_url, metadata=metadata, tenant_columns=[sa.Column("x", sa.Text)])
    for t in (one, two):
        t.dispose()


RECIPE = """
import pickle, sys
config = pickle.loads(sys.stdin.buffer.read())
tenancy = config.build()
print([c.name for c in tenancy.records.c])
print({t.name: t.record["plan"] for t in tenancy.list_tenants(where={"plan": "pro"})})
"""


def test_the_recipe_keeps_the_columns(rt: Tenancy) -> None:
    """A worker process rebuilds the Tenancy from config(): the record columns come along."""
    rt.create_tenant("acme", record={"plan": "pro"})
    rt.create_tenant("globex")
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run([sys.executable, "-c", RECIPE], input=pickle.dumps(rt.config()),
                          capture_output=True, env={"PYTHONPATH": src}, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines == ["['name', 'plan', 'owner_email', 'paid_until', 'seats']", "{'acme': 'pro'}"]


def test_a_shared_stream_must_make_the_table(database_url: str) -> None:
    """With a shared stream tenantry does not make the table: until a revision does, reads
    say what to do."""
    with record_tenancy(database_url, tenant_migrations=MIGRATIONS / "tenant",
                        shared_migrations=MIGRATIONS / "shared") as t:
        t.migrate_shared()
        with pytest.raises(MigrationError, match="revision --shared --autogenerate"):
            t.list_tenants()
        with pytest.raises(MigrationError, match="tenant_records"):
            t.create_tenant("acme")
        with t.engine.begin() as conn:  # what the shared revision would do
            t.records.create(conn)
        assert t.create_tenant("acme", record={"plan": "pro"}).record["plan"] == "pro"


def test_async_tenancy(database_url: str) -> None:
    async def main() -> list[tuple[str, object]]:
        async with AsyncTenancy(database_url, metadata=sa.MetaData(),
                                tenant_migrations=TENANT_DB,
                                tenant_columns=record_columns()) as at:
            await at.create_tenant("acme", record={"plan": "pro"})
            await at.create_tenant("globex")
            info = await at.update_tenant("globex", paid_until=D)
            assert info.record["paid_until"] == D
            assert at.records is at.admin.records
            status = await at.status(where=at.records.c.paid_until.is_not(None))
            assert [s.tenant for s in status] == ["globex"]
            rows = [r.tenant async for r in at.across(
                sa.text("SELECT 1 FROM __tenant__.settings"), where={"plan": "pro"})]
            assert rows == ["acme"]
            return [(t.name, t.record["plan"]) for t in await at.list_tenants(
                where={"plan": ["pro", "free"]})]

    assert asyncio.run(main()) == [("acme", "pro"), ("globex", "free")]


def test_async_tenancy_of_a_tenancy_takes_no_columns(rt: Tenancy) -> None:
    with pytest.raises(ConfigurationError, match="to the Tenancy"):
        AsyncTenancy(rt, tenant_columns=record_columns())


def test_adopted_tenants_get_the_defaults(rt: Tenancy) -> None:
    with rt.engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA legacy_x")
    info = rt.adopt_tenant("legacy", schema="legacy_x")
    assert info.record["plan"] == "free"
    assert record_rows(rt)["legacy"]["plan"] == "free"


def test_columns_declared_later_are_added(database_url: str) -> None:
    """Without a shared stream tenantry adds the columns a later release declares."""
    with record_tenancy(database_url, tenant_columns=record_columns()[:1]) as first:
        first.create_tenant("acme", record={"plan": "pro"})
    later = [*record_columns(), sa.Column("region", sa.Enum("eu", "us", name="region"),
                                          nullable=False, server_default="eu")]
    with record_tenancy(database_url, tenant_columns=later) as second:
        assert second.get_tenant("acme").record == {
            "plan": "pro", "owner_email": None, "paid_until": None, "seats": None,
            "region": "eu"}
        assert second.update_tenant("acme", region="us", seats=2).record["region"] == "us"

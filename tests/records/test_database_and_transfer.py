"""The tenant record on database tenants (two servers), and exported and imported with the
tenant's data."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry import InvalidRecord, Tenancy, UnknownRecordField
from tests.support.databases import database_names
from tests.support.records import record_columns, record_rows, record_tenancy

D = dt.date(2027, 1, 31)


@pytest.fixture
def rdb(make_tenancy: Callable[..., Tenancy]) -> Tenancy:
    """A database-per-tenant Tenancy with records (no shared stream)."""
    return make_tenancy(metadata=sa.MetaData(), tenant_columns=record_columns(),
                        shared_migrations=None)


def test_database_tenants_have_records(rdb: Tenancy, second_url: str) -> None:
    acme = rdb.create_tenant("acme", record={"plan": "pro", "paid_until": D})
    other = rdb.create_tenant("globex", record={"owner_email": "g@globex.test"})
    assert acme.location.database is not None and other.location.database is not None
    assert acme.record["plan"] == "pro" and other.record["plan"] == "free"
    assert [t.name for t in rdb.list_tenants(where={"plan": "free"})] == ["globex"]
    assert rdb.update_tenant("globex", seats=10).record["seats"] == 10
    rows = rdb.across(sa.text("SELECT value FROM __tenant__.settings"),
                      where=rdb.records.c.paid_until == D)
    assert [(r.tenant, r.row) for r in rows] == [("acme", ("EUR",))]
    assert rdb.rename_tenant("globex", "globex2").record["seats"] == 10
    assert set(record_rows(rdb)) == {"acme", "globex2"}


def test_a_refused_record_leaves_no_database(rdb: Tenancy, database_url: str,
                                             second_url: str) -> None:
    before = database_names(database_url) | database_names(second_url)
    with pytest.raises(InvalidRecord, match="seats"):
        rdb.create_tenant("acme", record={"seats": 0})
    with pytest.raises(UnknownRecordField):
        rdb.create_tenant("acme", record={"colour": "red"})
    assert rdb.list_tenants() == []
    after = database_names(database_url) | database_names(second_url)
    assert {d for d in after - before if "acme" in d} == set()
    assert rdb.doctor().ok
    assert rdb.create_tenant("acme", record={"seats": 1}).record["seats"] == 1


@pytest.fixture
def rt(database_url: str) -> Iterator[Tenancy]:
    with record_tenancy(database_url) as t:
        yield t


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return data


def test_the_record_travels_with_the_export(rt: Tenancy, tmp_path: Path) -> None:
    rt.create_tenant("acme", record={"plan": "pro", "owner_email": "a@acme.test",
                                     "paid_until": D, "seats": 7})
    manifest = rt.export_tenant("acme", tmp_path / "acme")
    assert manifest.record == {"plan": "pro", "owner_email": "a@acme.test",
                               "paid_until": "2027-01-31", "seats": "7"}
    assert _manifest(tmp_path / "acme")["record"] == manifest.record
    copy = rt.import_tenant(tmp_path / "acme", "copy")
    assert copy.record == rt.get_tenant("acme").record
    rt.update_tenant("copy", plan="free", seats=None)
    replaced = rt.import_tenant(tmp_path / "acme", "copy", replace=True)
    assert replaced.record["plan"] == "pro" and replaced.record["seats"] == 7


def test_database_tenant_round_trip(rdb: Tenancy, tmp_path: Path) -> None:
    rdb.create_tenant("acme", record={"plan": "pro", "paid_until": D})
    rdb.export_tenant("acme", tmp_path / "acme")
    copy = rdb.import_tenant(tmp_path / "acme", "copy")
    assert copy.location.database is not None
    assert copy.record == {"plan": "pro", "owner_email": None, "paid_until": D, "seats": None}


def test_imports_check_the_record(rt: Tenancy, database_url: str, tmp_path: Path) -> None:
    rt.create_tenant("acme", record={"plan": "pro"})
    rt.export_tenant("acme", tmp_path / "acme")
    data = _manifest(tmp_path / "acme")
    data["record"]["colour"] = "red"
    (tmp_path / "acme" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UnknownRecordField, match="colour"):
        rt.import_tenant(tmp_path / "acme", "copy")
    data["record"] = {"seats": "-3"}
    (tmp_path / "acme" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(InvalidRecord, match="seats"):
        rt.import_tenant(tmp_path / "acme", "copy")
    assert [t.name for t in rt.list_tenants()] == ["acme"]


def test_an_app_without_records_imports_the_data(
    rt: Tenancy, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt.create_tenant("acme", record={"plan": "pro"})
    rt.export_tenant("acme", tmp_path / "acme")
    with record_tenancy(database_url, tenant_columns=None) as plain:
        info = plain.import_tenant(tmp_path / "acme", "copy")
        assert info.record == {}
        assert "declares no record columns" in caplog.text
        plain.export_tenant("copy", tmp_path / "copy")
    assert "record" not in _manifest(tmp_path / "copy")  # as before records existed
    assert rt.get_tenant("copy").record["plan"] is None  # no record row was written

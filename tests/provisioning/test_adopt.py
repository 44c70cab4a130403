"""Adopting existing storage: schemas named by UUIDs, databases, a whole fleet by pattern."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import (
    InvalidTenantName,
    MigrationError,
    NotConfiguredFor,
    Problem,
    State,
    StorageNotFound,
    StorageRegistered,
    Tenancy,
    TenantExists,
    TenantInfo,
    UnknownServer,
    UnversionedStorage,
    WrongTenantKind,
    adopt_all,
)
from tenantry.aio import AsyncTenancy
from tenantry.core import TenantWork
from tenantry.names import quote
from tenantry.strategies.base import prepared
from tests.app.models import Customer
from tests.support.strict import drop_roles, strict_tenancy

UUID_SCHEMA = "3f2a9c1e-7b4d-4e2a-9c1e-7b4d4e2a9c1e"


def build(t: Tenancy, conn: sa.Connection, schema: str, target: str = "heads") -> None:
    """What an existing deployment has: ``schema`` built by the tenant stream, with rows."""
    stream = t.tenant_stream
    assert stream is not None
    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
    stream.upgrade(prepared(conn, "legacy", schema), schema, target)
    customers = sa.table("customers", sa.column("name"), schema=schema)
    conn.execute(customers.insert(), [{"name": "Ada"}, {"name": "Grace"}])


def build_schema(t: Tenancy, schema: str, target: str = "heads") -> None:
    with t.engine.begin() as conn:
        build(t, conn, schema, target)


def names_in(t: Tenancy, tenant: str) -> list[str]:
    with t.session(tenant) as s:
        return list(s.scalars(sa.select(Customer.name).order_by(Customer.name)))


def version_row(t: Tenancy, schema: str) -> str | None:
    assert t.tenant_stream is not None
    with t.engine.connect() as conn:
        return t.tenant_stream.current(conn, schema)


def test_a_uuid_named_schema_is_adopted_where_it_is(tenancy: Tenancy, tmp_path: Path) -> None:
    build_schema(tenancy, UUID_SCHEMA, "t001")
    info = tenancy.adopt_tenant("acme", schema=UUID_SCHEMA)
    assert (info.name, info.schema, info.state, info.revision, info.strategy) == (
        "acme", UUID_SCHEMA, State.READY, "t001", "schema"
    )
    assert names_in(tenancy, "acme") == ["Ada", "Grace"]
    report = tenancy.migrate_all()  # reaches it: t001 -> t002 in the UUID schema
    assert [(o.tenant, o.after) for o in report.tenants] == [("acme", "t002")]
    assert tenancy.get_tenant("acme").revision == version_row(tenancy, UUID_SCHEMA) == "t002"
    with tenancy.session("acme") as s:
        s.add(Customer(name="Hedy", email="hedy@example.com"))  # email came with t002
        s.commit()
    assert names_in(tenancy, "acme") == ["Ada", "Grace", "Hedy"]
    assert tenancy.doctor().ok
    tenancy.create_tenant("globex")
    rows = tenancy.across(sa.select(Customer.name).order_by(Customer.name))
    assert [(r.tenant, r.row[0]) for r in rows] == [
        ("acme", "Ada"), ("acme", "Grace"), ("acme", "Hedy")
    ]
    tenancy.export_tenant("acme", tmp_path / "acme")
    tenancy.import_tenant(tmp_path / "acme", "acme2")
    assert names_in(tenancy, "acme2") == ["Ada", "Grace", "Hedy"]
    assert tenancy.drop_tenant("acme", confirm=True)
    assert version_row(tenancy, UUID_SCHEMA) is None and tenancy.doctor().ok


def test_adoption_is_idempotent_and_storage_belongs_to_one_tenant(tenancy: Tenancy) -> None:
    build_schema(tenancy, UUID_SCHEMA)
    first = tenancy.adopt_tenant("acme", schema=UUID_SCHEMA)
    assert tenancy.adopt_tenant("acme", schema=UUID_SCHEMA) == first
    with pytest.raises(StorageRegistered, match="as tenant 'acme'"):
        tenancy.adopt_tenant("other", schema=UUID_SCHEMA)
    tenancy.create_tenant("globex")
    with pytest.raises(StorageRegistered, match="'globex'"):
        tenancy.adopt_tenant("other", schema="tenant_globex")
    build_schema(tenancy, "legacy_two")
    with pytest.raises(TenantExists, match="registered already, in schema") as caught:
        tenancy.adopt_tenant("acme", schema="legacy_two")
    assert not isinstance(caught.value, StorageRegistered)
    assert [i.name for i in tenancy.list_tenants()] == ["acme", "globex"]


def test_what_cannot_be_adopted_is_refused_by_type(tenancy: Tenancy) -> None:
    with pytest.raises(StorageNotFound, match="does not exist"):
        tenancy.adopt_tenant("acme", schema="no-such-schema")
    for schema in ("public", "pg_catalog", "information_schema", "", "x" * 64):
        with pytest.raises(InvalidTenantName):
            tenancy.adopt_tenant("acme", schema=schema)
    build_schema(tenancy, UUID_SCHEMA)
    with pytest.raises(InvalidTenantName):  # the tenant NAME follows the name rules
        tenancy.adopt_tenant(UUID_SCHEMA, schema=UUID_SCHEMA)
    with pytest.raises(NotConfiguredFor):
        tenancy.adopt_tenant("acme", database="somewhere")
    hostile = 'x"; DROP TABLE public.users; --'
    with pytest.raises(StorageNotFound):
        tenancy.adopt_tenant("acme", schema=hostile)
    assert tenancy.list_tenants() == []


def test_a_tenant_stream_needs_a_known_revision(tenancy: Tenancy) -> None:
    with tenancy.engine.begin() as conn:
        conn.exec_driver_sql('CREATE SCHEMA "Legacy"; CREATE TABLE "Legacy".things (id int)')
    with pytest.raises(UnversionedStorage, match="things"):
        tenancy.adopt_tenant("legacy", schema="Legacy")
    with tenancy.engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE "Legacy".alembic_version (version_num varchar(32) PRIMARY KEY);'
            "INSERT INTO \"Legacy\".alembic_version VALUES ('x999')"
        )
    with pytest.raises(MigrationError, match="x999"):
        tenancy.adopt_tenant("legacy", schema="Legacy")
    assert tenancy.list_tenants() == []
    with tenancy.engine.begin() as conn:  # an empty schema: adopted at base, built by migrating
        conn.exec_driver_sql('CREATE SCHEMA "Empty"')
    assert tenancy.adopt_tenant("empty", schema="Empty").revision is None
    assert tenancy.migrate_tenant("empty").after == "t002"
    assert names_in(tenancy, "empty") == []


def test_without_a_tenant_stream_the_revision_is_none(database_url: str) -> None:
    with Tenancy(database_url) as t:
        t.migrate_shared()
        with t.engine.begin() as conn:
            conn.exec_driver_sql('CREATE SCHEMA "Old"; CREATE TABLE "Old".things (id int)')
        assert t.adopt_tenant("old", schema="Old").revision is None


def test_rename_gives_the_storage_its_conventional_name(tenancy: Tenancy) -> None:
    build_schema(tenancy, UUID_SCHEMA)
    info = tenancy.adopt_tenant("acme", schema=UUID_SCHEMA, rename=True)
    assert (info.name, info.schema, info.revision) == ("acme", "tenant_acme", "t002")
    assert names_in(tenancy, "acme") == ["Ada", "Grace"]
    with tenancy.engine.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :n"),
                             {"n": UUID_SCHEMA}).first()
    assert found is None
    # again, with the storage already renamed: the same tenant, nothing done
    assert tenancy.adopt_tenant("acme", schema=UUID_SCHEMA, rename=True) == info
    # adopted first, renamed later
    build_schema(tenancy, "legacy_two")
    tenancy.adopt_tenant("globex", schema="legacy_two")
    assert tenancy.adopt_tenant("globex", schema="legacy_two", rename=True).schema == (
        "tenant_globex"
    )
    assert tenancy.doctor().ok


def test_doctor_reports_an_adopted_tenant_missing_a_table(tenancy: Tenancy) -> None:
    tenancy.create_tenant("globex")
    build_schema(tenancy, UUID_SCHEMA)
    tenancy.adopt_tenant("acme", schema=UUID_SCHEMA)
    assert tenancy.doctor().ok
    with tenancy.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {quote(UUID_SCHEMA)}.orders")
    found = [(f.problem, f.tenant, f.subject) for f in tenancy.doctor().findings]
    assert found == [(Problem.MISSING_TABLES, "acme", UUID_SCHEMA)]


def test_strict_mode_gives_the_adopted_schema_to_the_tenant_role(database_url: str) -> None:
    t = strict_tenancy(database_url)
    try:
        build_schema(t, UUID_SCHEMA)
        t.adopt_tenant("acme", schema=UUID_SCHEMA)
        role = t.tenant_role("acme")
        with t.session("acme") as s:
            assert s.execute(sa.text("SELECT current_user")).scalar() == role
        assert names_in(t, "acme") == ["Ada", "Grace"]
        assert t.doctor().ok  # the schema and its tables are the role's
    finally:
        drop_roles(t)
        t.dispose()


def test_adopt_all_by_pattern(tenancy: Tenancy) -> None:
    for schema in ("tenant_north", "tenant_south", "Tenant-East-1", "other_x"):
        build_schema(tenancy, schema)
    tenancy.create_tenant("registered")
    planned = adopt_all(tenancy, "tenant_*", dry_run=True)
    assert [(a.storage, a.name, a.problem) for a in planned] == [
        ("tenant_north", "north", None), ("tenant_south", "south", None),
    ]  # tenant_registered is registered: not a candidate
    assert not any(a.adopted for a in planned)
    assert len(tenancy.list_tenants()) == 1
    done = adopt_all(tenancy, "tenant_*")
    assert [(a.name, a.info.schema if a.info else None) for a in done] == [
        ("north", "tenant_north"), ("south", "tenant_south"),
    ]
    assert names_in(tenancy, "south") == ["Ada", "Grace"]
    (derived,) = adopt_all(tenancy, "Tenant-*", rename=True)
    assert derived.name == "tenant_east_1" and derived.note is not None
    assert "not a valid tenant name" in derived.note
    assert derived.info is not None and derived.info.schema == "tenant_tenant_east_1"
    # a name that is taken, or that two schemas would get, is a problem: nothing adopted
    build_schema(tenancy, "legacy_north")
    build_schema(tenancy, "legacy_n-1")
    build_schema(tenancy, "legacy_n_1")
    left = adopt_all(tenancy, "legacy_*", strip="legacy_")
    assert [(a.storage, a.adopted, a.problem is not None) for a in left] == [
        ("legacy_n-1", True, False), ("legacy_n_1", False, True), ("legacy_north", False, True),
    ]
    by_function = adopt_all(tenancy, "other_*", name_from=lambda s: s.upper())
    assert by_function[0].problem is not None and "invalid tenant name" in by_function[0].problem


@pytest.fixture
def legacy_databases(admin_engine: sa.Engine, second_url: str) -> Iterator[Callable[..., str]]:
    """Make databases of an existing deployment (tables in ``public``); dropped after."""
    made: list[tuple[sa.Engine, str]] = []
    second = sa.create_engine(sa.make_url(second_url), isolation_level="AUTOCOMMIT",
                              poolclass=sa.pool.NullPool)

    def make(t: Tenancy, on_second: bool = False) -> str:
        admin = second if on_second else admin_engine
        name = f"legacy-{uuid.uuid4()}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
        made.append((admin, name))
        engine = sa.create_engine(admin.url.set(database=name), poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                build(t, conn, "public")
        finally:
            engine.dispose()
        return name

    yield make
    for admin, name in made:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
    second.dispose()


def test_database_tenants_are_adopted(
    make_tenancy: Callable[..., Tenancy], legacy_databases: Callable[..., str]
) -> None:
    t = make_tenancy()
    here, there = legacy_databases(t), legacy_databases(t, on_second=True)
    acme = t.adopt_tenant("acme", database=here)
    assert (acme.location.database, acme.schema, acme.location.server, acme.revision) == (
        here, "public", "main", "t002"
    )
    globex = t.adopt_tenant("globex", database=there, server="second")
    assert globex.location.server == "second" and names_in(t, "globex") == ["Ada", "Grace"]
    assert names_in(t, "acme") == ["Ada", "Grace"]
    assert {o.tenant: o.result for o in t.migrate_all().tenants} == {
        "acme": "current", "globex": "current"
    }
    with pytest.raises(StorageRegistered):
        t.adopt_tenant("other", database=here)
    with pytest.raises(StorageNotFound):
        t.adopt_tenant("other", database="no-such-database")
    with pytest.raises(StorageNotFound):
        t.adopt_tenant("other", database=here, schema="nope")
    with pytest.raises(InvalidTenantName):
        t.adopt_tenant("other", database=t.engine.url.database)  # the main database
    with pytest.raises(UnknownServer):
        t.adopt_tenant("other", database=here, server="nowhere")
    with pytest.raises(WrongTenantKind):
        t.adopt_tenant("other", schema="public")
    renamed = t.adopt_tenant("acme", database=here, rename=True)
    assert renamed.location.database == renamed.schema == f"{t.prefix}acme"
    assert names_in(t, "acme") == ["Ada", "Grace"]
    assert t.doctor().ok


def test_adopt_all_finds_databases(
    make_tenancy: Callable[..., Tenancy], legacy_databases: Callable[..., str]
) -> None:
    t = make_tenancy()
    name = legacy_databases(t)
    (found,) = [a for a in adopt_all(t, name) if a.storage == name]
    assert found.info is not None and found.name == name.replace("-", "_")
    assert found.info.location.database == name and names_in(t, found.name) == ["Ada", "Grace"]


def test_hybrid_adopts_schemas_and_databases(
    make_tenancy: Callable[..., Tenancy], legacy_databases: Callable[..., str]
) -> None:
    t = make_tenancy(strategy="hybrid")
    build_schema(t, UUID_SCHEMA)
    assert t.adopt_tenant("acme", schema=UUID_SCHEMA).strategy == "schema"
    assert t.adopt_tenant("globex", database=legacy_databases(t)).strategy == "database"
    assert names_in(t, "acme") == names_in(t, "globex") == ["Ada", "Grace"]


def test_a_database_rename_that_stopped_part_way_is_finished(
    make_tenancy: Callable[..., Tenancy], legacy_databases: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = make_tenancy()
    first, second = legacy_databases(t), legacy_databases(t)
    record = TenantWork.step_recorder

    def killed_after_the_database_rename(self: TenantWork, tenant: str) -> Callable[[str], None]:
        step = record(self, tenant)

        def recorded(name: str) -> None:
            step(name)
            if name == "database renamed":
                raise RuntimeError("killed")

        return recorded

    monkeypatch.setattr(TenantWork, "step_recorder", killed_after_the_database_rename)
    for name, database in (("acme", first), ("globex", second)):
        with pytest.raises(RuntimeError, match="killed"):
            t.adopt_tenant(name, database=database, rename=True)
        assert t.get_tenant(name).location.database == database  # adopted, not yet renamed
    monkeypatch.undo()
    (unfinished,) = [f for f in t.doctor().findings if f.tenant == "acme"]
    assert unfinished.problem == Problem.UNFINISHED and "rename acme acme" in unfinished.fix
    # adopting again finishes it (the old database is gone: it was renamed)
    info = t.adopt_tenant("acme", database=first, rename=True)
    assert info.location.database == info.schema == f"{t.prefix}acme"
    t.doctor(fix=True)  # so does the doctor
    assert t.get_tenant("globex").location.database == f"{t.prefix}globex"
    assert names_in(t, "acme") == names_in(t, "globex") == ["Ada", "Grace"]
    assert t.doctor().ok


def test_the_async_twin_adopts(tenancy: Tenancy) -> None:
    build_schema(tenancy, UUID_SCHEMA)

    async def main() -> TenantInfo:
        async with AsyncTenancy(tenancy) as at:
            return await at.adopt_tenant("acme", schema=UUID_SCHEMA)

    assert asyncio.run(main()) == tenancy.get_tenant("acme")

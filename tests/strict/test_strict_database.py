"""Strict mode and the doctor for database tenants (issue 7 on the database strategy)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import DatabaseStrategy, Tenancy, TenantIsolationError, make_engine
from tenantry.doctor import Problem
from tenantry.strict.rolecatalog import role_exists
from tests.app.models import Customer


def _roles_of(t: Tenancy) -> list[tuple[str, str]]:
    """(server, role) of every tenant of ``t``."""
    assert t.strict_roles is not None
    with t.engine.connect() as conn:
        return [(i.location.server or "main", t.strict_roles.role(conn, i.location))
                for i in t.list_tenants()]


def _exists_on(t: Tenancy, server: str, role: str) -> bool:
    strategy = t.strategy
    assert isinstance(strategy, DatabaseStrategy)
    with strategy.admin(server).connect() as conn:
        return role_exists(conn, role)


def _connect_acl(t: Tenancy, server: str, database: str) -> str | None:
    strategy = t.strategy
    assert isinstance(strategy, DatabaseStrategy)
    with strategy.admin(server).connect() as conn:
        acl = conn.execute(
            sa.text("SELECT datacl::text FROM pg_database WHERE datname = :d"), {"d": database}
        ).scalar()
    return None if acl is None else str(acl)


@pytest.fixture
def sdb(make_tenancy: Callable[..., Tenancy]) -> Iterator[Tenancy]:
    t = make_tenancy(strict=True)
    yield t
    # roles are cluster-wide: drop what the tenants left (cleanup drops the tenants after us)
    for info in t.list_tenants():
        t.drop_tenant(info.name, confirm=True)


def test_database_tenant_role_owns_schema_and_alone_may_connect(sdb: Tenancy) -> None:
    a = sdb.create_tenant("a")
    b = sdb.create_tenant("b")
    assert {a.location.server, b.location.server} == {"main", "second"}  # both clusters
    role_a = sdb.tenant_role("a")
    with sdb.session("a") as s:
        assert s.execute(sa.text("SELECT current_user")).scalar() == role_a
        s.add(Customer(name="Ann"))
        s.commit()
    with sdb.session("a") as s:
        owner = s.execute(sa.text(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = :n"
        ), {"n": a.schema}).scalar()
        assert owner == role_a
        # hand-written SQL: the tenant role cannot create outside its schema ...
        with pytest.raises(TenantIsolationError, match="permission denied"):
            s.execute(sa.text("CREATE TABLE public.spy (x int)"))
    for info in (a, b):
        acl = _connect_acl(sdb, info.location.server or "main", info.schema)
        assert acl is not None
        public = [item for item in acl.strip("{}").split(",") if item.startswith("=")]
        assert all("c" not in item.split("/")[0] for item in public)  # PUBLIC: no CONNECT
        with sdb.engine.connect() as conn:
            assert sdb.strict_roles is not None
            role = sdb.strict_roles.role(conn, info.location)
        assert f"{role}=c/" in acl
    # ... and a login role that is not the tenant's cannot connect to its database
    strategy = sdb.strategy
    assert isinstance(strategy, DatabaseStrategy)
    probe = f"probe_{uuid.uuid4().hex[:8]}"
    with strategy.admin("main").connect() as admin:
        admin.exec_driver_sql(f'CREATE ROLE "{probe}" LOGIN')
    try:
        url = strategy.servers["main"].set(database=a.schema, username=probe, password=None)
        engine = make_engine(url, poolclass=NullPool)
        try:
            with pytest.raises(sa.exc.OperationalError, match="permission denied"):
                engine.connect().close()
        finally:
            engine.dispose()
    finally:
        with strategy.admin("main").connect() as admin:
            admin.exec_driver_sql(f'DROP ROLE "{probe}"')
    assert sdb.doctor().ok


def test_database_tenant_roles_follow_rename_and_drop(sdb: Tenancy) -> None:
    sdb.create_tenant("a")
    sdb.create_tenant("b")
    before = dict((s, r) for s, r in _roles_of(sdb))
    sdb.rename_tenant("b", "c")
    after = _roles_of(sdb)
    assert len(after) == 2
    for server, role in after:
        assert _exists_on(sdb, server, role)
    renamed = sdb.get_tenant("c")
    server = renamed.location.server or "main"
    assert not _exists_on(sdb, server, before[server])
    with sdb.session("c") as s:
        assert s.execute(sa.text("SELECT current_user")).scalar() == sdb.tenant_role("c")
    assert sdb.doctor().ok
    sdb.drop_tenant("c", confirm=True)
    sdb.drop_tenant("a", confirm=True)
    for server, role in after:
        assert not _exists_on(sdb, server, role)


def test_doctor_repairs_database_connect_grants(sdb: Tenancy) -> None:
    info = sdb.create_tenant("a")
    strategy = sdb.strategy
    assert isinstance(strategy, DatabaseStrategy)
    with strategy.admin(info.location.server or "main").connect() as admin:
        admin.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{info.schema}" TO PUBLIC')
    found = sdb.doctor().findings
    assert [f.problem for f in found] == [Problem.ROLE_GRANTS]
    assert sdb.doctor(fix=True).ok
    assert sdb.doctor().ok


def test_strict_import_hands_database_tenant_to_its_role(sdb: Tenancy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sdb.create_tenant("a")
    with sdb.session("a") as s:
        s.add(Customer(name="Ann"))
        s.commit()
    sdb.export_tenant("a", tmp_path / "a")
    info = sdb.import_tenant(tmp_path / "a", "copy")
    role = sdb.tenant_role("copy")
    with sdb.session("copy") as s:
        assert s.execute(sa.text("SELECT current_user")).scalar() == role
        assert [c.name for c in s.query(Customer)] == ["Ann"]
        owners = set(s.execute(sa.text(
            "SELECT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE nspname = :n"), {"n": info.schema}).scalars())
    assert owners == {role}
    assert sdb.doctor().ok


# -- doctor, database strategy (not strict) --------------------------------------------------


def test_doctor_registers_an_orphan_database_at_a_known_revision(dbt: Tenancy) -> None:
    info = dbt.create_tenant("a")
    with dbt.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tenantry_tenants WHERE name = 'a'"))
    found = dbt.doctor().findings
    assert [(f.problem, f.subject, f.destructive) for f in found] == [
        (Problem.ORPHAN_STORAGE, info.schema, False)
    ]
    assert dbt.doctor(fix=True).ok
    again = dbt.get_tenant("a")
    assert again.location == info.location and again.revision == info.revision
    with dbt.session("a") as s:
        assert s.query(Customer).count() == 0


def test_doctor_drops_an_unknown_orphan_database_only_when_destructive(dbt: Tenancy) -> None:
    strategy = dbt.strategy
    assert isinstance(strategy, DatabaseStrategy)
    name = f"{dbt.prefix}junk"
    with strategy.admin("second").connect() as admin:
        admin.exec_driver_sql(f'CREATE DATABASE "{name}"')
    found = dbt.doctor().findings
    assert [(f.problem, f.subject, f.destructive) for f in found] == [
        (Problem.ORPHAN_STORAGE, name, True)
    ]
    assert not dbt.doctor(fix=True).ok
    assert strategy.database_exists("second", name)
    assert dbt.doctor(fix=True, destructive=True).ok
    assert not strategy.database_exists("second", name)


def test_doctor_forgets_a_row_whose_database_is_gone(dbt: Tenancy) -> None:
    info = dbt.create_tenant("a")
    strategy = dbt.strategy
    assert isinstance(strategy, DatabaseStrategy)
    strategy.drop_database(info.location.server or "main", info.schema)
    assert [f.problem for f in dbt.doctor().findings] == [Problem.MISSING_STORAGE]
    assert dbt.doctor(fix=True).ok
    assert not dbt.tenant_exists("a")


def test_doctor_resumes_a_stuck_database_tenant(dbt: Tenancy) -> None:
    dbt.create_tenant("a")
    with dbt.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE tenantry_tenants SET state = 'provisioning', revision = NULL "
            "WHERE name = 'a'"))
    assert [f.problem for f in dbt.doctor().findings] == [Problem.STUCK]
    assert dbt.doctor(fix=True).ok
    assert dbt.get_tenant("a").state == "ready"

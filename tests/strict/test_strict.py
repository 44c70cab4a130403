"""Strict mode: per-tenant roles, SET LOCAL ROLE per transaction, shared grants."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import ConfigurationError, Tenancy, TenantIsolationError, UnknownTenant
from tenantry.strict.rolecatalog import role_exists
from tenantry.strict.rolenames import group_name, role_name
from tests.app.models import Customer, Order, User
from tests.support.strict import drop_roles, strict_tenancy


@pytest.fixture
def strict(database_url: str) -> Iterator[Tenancy]:
    t = strict_tenancy(database_url)
    yield t
    drop_roles(t)
    t.dispose()


def test_role_names_fit_and_differ_per_database() -> None:
    long = "tenant_" + "x" * 56
    assert len(role_name("db1", long)) <= 63
    assert role_name("db1", "tenant_a") != role_name("db2", "tenant_a")
    assert role_name("db1", "tenant_a").startswith("tenant_a_")
    assert group_name("db1") != group_name("db2")


def test_tenant_owns_its_schema_and_objects(strict: Tenancy) -> None:
    strict.create_tenant("acme")
    role = strict.tenant_role("acme")
    with strict.engine.connect() as conn:
        owners = set(
            conn.execute(
                sa.text(
                    "SELECT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE nspname = 'tenant_acme'"
                )
            ).scalars()
        )
        schema_owner = conn.execute(
            sa.text("SELECT pg_get_userbyid(nspowner) FROM pg_namespace "
                    "WHERE nspname = 'tenant_acme'")
        ).scalar()
    assert owners == {role} and schema_owner == role


def test_sessions_run_as_the_tenant_role(strict: Tenancy) -> None:
    strict.create_tenant("acme")
    with strict.session("acme") as s:
        assert s.execute(sa.text("SELECT current_user")).scalar() == strict.tenant_role("acme")
        s.add(Customer(name="Ann"))
        s.commit()
        # a new transaction switches again
        assert s.execute(sa.text("SELECT current_user")).scalar() == strict.tenant_role("acme")
        assert s.scalars(sa.select(Customer.name)).all() == ["Ann"]
    with strict.connection("acme") as conn:  # Core connections switch too, per transaction
        for _ in range(2):
            assert conn.execute(sa.text("SELECT current_user")).scalar() == strict.tenant_role(
                "acme"
            )
            conn.rollback()
    with strict.engine.connect() as conn:  # no tenant: the app's own role
        assert conn.execute(sa.text("SELECT current_user")).scalar() != strict.tenant_role(
            "acme"
        )


def test_hand_written_sql_cannot_reach_another_tenant(strict: Tenancy) -> None:
    strict.create_tenant("a")
    strict.create_tenant("b")
    with strict.session("b") as s:
        s.add(Customer(name="secret"))
        s.commit()
    with strict.session("a") as s, pytest.raises(TenantIsolationError) as caught:
        s.execute(sa.text("SELECT * FROM tenant_b.customers")).all()
    assert caught.value.tenant == "a" and caught.value.owner == "b"
    assert "'a'" in str(caught.value) and "'b'" in str(caught.value)
    with strict.session("a") as s, pytest.raises(TenantIsolationError):
        s.execute(sa.text("DELETE FROM tenant_b.customers"))
    with strict.session("a") as s, pytest.raises(TenantIsolationError, match="tenantry_tenants"):
        s.execute(sa.text("SELECT * FROM public.tenantry_tenants")).all()
    with strict.session("b") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["secret"]


def test_normal_mode_does_not_isolate_hand_written_sql(tenancy: Tenancy) -> None:
    """The contrast that shows what strict mode adds."""
    tenancy.create_tenant("a")
    tenancy.create_tenant("b")
    with tenancy.session("a") as s:
        assert s.execute(sa.text("SELECT count(*) FROM tenant_b.customers")).scalar() == 0


def test_shared_tables_need_explicit_grants(strict: Tenancy) -> None:
    strict.create_tenant("acme")
    with strict.session() as s:
        s.add(User(id=1, name="u"))
        s.commit()
    with strict.session("acme") as s:
        assert s.scalars(sa.select(User.name)).all() == ["u"]  # read granted
        c = Customer(name="c")
        s.add(c)
        s.flush()
        s.add(Order(customer_id=c.id, user_id=1, total=5))  # FK to a shared table
        s.commit()
        s.add(User(id=2, name="v"))
        with pytest.raises(TenantIsolationError, match="users"):
            s.commit()
    strict.grant_shared("public.users", write=True)
    with strict.session("acme") as s:
        s.add(User(id=2, name="v"))
        s.commit()
    strict.revoke_shared(User.__table__)
    with strict.session("acme") as s, pytest.raises(TenantIsolationError):
        s.scalars(sa.select(User.name)).all()


def test_migrations_run_as_the_tenant(strict: Tenancy) -> None:
    strict.create_tenant("acme")
    strict.migrate_tenant("acme", "t001")
    strict.migrate_tenant("acme", "heads")
    role = strict.tenant_role("acme")
    with strict.engine.connect() as conn:
        owner = conn.execute(
            sa.text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = "
                    "'tenant_acme.orders'::regclass")
        ).scalar()
    assert owner == role


def test_roles_follow_rename_and_drop(strict: Tenancy) -> None:
    strict.create_tenant("old")
    old_role = strict.tenant_role("old")
    strict.rename_tenant("old", "new")
    new_role = strict.tenant_role("new")
    with strict.session("new") as s:
        assert s.execute(sa.text("SELECT current_user")).scalar() == new_role
    with strict.engine.connect() as conn:
        assert not role_exists(conn, old_role) and role_exists(conn, new_role)
    strict.drop_tenant("new", confirm=True)
    with strict.engine.connect() as conn:
        assert not role_exists(conn, new_role)


def test_failed_create_leaves_no_role(strict: Tenancy, migrations_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    (migrations_dir / "tenant" / "versions" / "t003_bad.py").write_text(
        'revision = "t003"\ndown_revision = "t002"\nfrom alembic import op\n'
        "def upgrade():\n    op.execute('SELECT no_such_function()')\n"
        "def downgrade():\n    pass\n"
    )
    bad = Tenancy(database_url, strict=True, tenant_migrations=migrations_dir / "tenant")
    with pytest.raises(sa.exc.ProgrammingError):
        bad.create_tenant("half")
    assert not bad.tenant_exists("half")
    with bad.engine.connect() as conn:
        assert not role_exists(conn, role_name(conn.engine.url.database or "", "tenant_half"))
    bad.dispose()


def test_normal_tenants_adopted_when_strict_is_turned_on(
    tenancy: Tenancy, database_url: str
) -> None:
    tenancy.create_tenant("legacy")
    with tenancy.session("legacy") as s:
        s.add(Customer(name="kept"))
        s.commit()
    t = strict_tenancy(database_url)
    try:
        report = t.migrate_all()  # at head: skipped, so doctor --fix is what adopts
        assert report.ok
        t.doctor(fix=True)
        with t.session("legacy") as s:
            assert s.execute(sa.text("SELECT current_user")).scalar() == t.tenant_role("legacy")
            assert s.scalars(sa.select(Customer.name)).all() == ["kept"]
    finally:
        drop_roles(t)
        t.dispose()


def test_dropped_role_in_use_is_unknown_tenant(strict: Tenancy) -> None:
    strict.create_tenant("gone")
    with strict.session("gone") as s:
        s.execute(sa.text("SELECT 1"))
    other = strict_tenancy(str(strict.engine.url.render_as_string(hide_password=False)))
    other.drop_tenant("gone", confirm=True)
    other.dispose()
    with strict.session("gone") as s, pytest.raises(UnknownTenant, match="gone"):
        s.execute(sa.text("SELECT 1"))


def test_grant_shared_needs_strict_mode(tenancy: Tenancy) -> None:
    with pytest.raises(ConfigurationError, match="strict"):
        tenancy.grant_shared("users")


def test_role_steps_are_logged(strict: Tenancy, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tenantry"):
        strict.create_tenant("logged")
        strict.drop_tenant("logged", confirm=True)
    messages = [r.getMessage() for r in caplog.records]
    assert any("created role" in m and "logged" in m for m in messages)
    assert any("dropped role" in m for m in messages)
    assert all(getattr(r, "tenant", "logged") == "logged" for r in caplog.records
               if "role" in r.getMessage() and "group" not in r.getMessage())


def test_doctor_checks_roles_ownership_and_grants(strict: Tenancy) -> None:
    from tenantry import Problem

    strict.create_tenant("a")
    strict.create_tenant("b")
    assert strict.doctor().ok
    assert strict.strict_roles is not None
    role_a = strict.tenant_role("a")
    with strict.engine.begin() as conn:
        group = strict.strict_roles.group(conn)
        database = strict.strict_roles.database(conn)
        conn.exec_driver_sql(f'REVOKE "{group}" FROM "{role_a}"')
        conn.exec_driver_sql("ALTER TABLE tenant_b.customers OWNER TO CURRENT_USER")
        orphan = role_name(database, "tenant_zombie")
        conn.exec_driver_sql(f'CREATE ROLE "{orphan}" NOLOGIN')
    found = {(f.problem, f.tenant, f.subject) for f in strict.doctor().findings}
    assert found == {
        (Problem.ROLE_GRANTS, "a", role_a),
        (Problem.OWNER_MISMATCH, "b", strict.tenant_role("b")),
        (Problem.ORPHAN_ROLE, None, orphan),
    }
    assert strict.doctor(fix=True).ok
    with strict.session("b") as s:
        s.add(Customer(name="after repair"))
        s.commit()


def test_strict_mode_as_a_non_superuser_app(admin_engine: sa.Engine, database_url: str) -> None:
    """The usual deployment: the app connects as a CREATEROLE user that owns its database."""
    import uuid

    app_role = f"app_{uuid.uuid4().hex[:8]}"
    db = sa.make_url(database_url).database
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{app_role}" LOGIN CREATEROLE')
        conn.exec_driver_sql(f'ALTER DATABASE "{db}" OWNER TO "{app_role}"')
    with sa.create_engine(database_url, poolclass=sa.pool.NullPool).begin() as conn:
        conn.exec_driver_sql(f'ALTER SCHEMA public OWNER TO "{app_role}"')
    url = sa.make_url(database_url).set(username=app_role).render_as_string(hide_password=False)
    t = strict_tenancy(url)
    try:
        t.create_tenant("a")
        t.create_tenant("b")
        with t.session("a") as s:
            assert s.execute(sa.text("SELECT current_user")).scalar() == t.tenant_role("a")
            s.add(Customer(name="x"))
            s.commit()
        with t.session("b") as s, pytest.raises(TenantIsolationError):
            s.execute(sa.text("SELECT * FROM tenant_a.customers")).all()
        t.migrate_tenant("a", "t001")
        t.migrate_tenant("a")
        t.rename_tenant("a", "c")
        assert t.doctor().ok
        assert t.drop_tenant("c", confirm=True)
        assert t.drop_tenant("b", confirm=True)
    finally:
        t.dispose()
        superuser = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        drop_roles(t, superuser)
        with superuser.begin() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{app_role}" CASCADE')
        superuser.dispose()
        with admin_engine.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{db}" OWNER TO CURRENT_USER')
            conn.exec_driver_sql(f'DROP ROLE "{app_role}"')


def test_concurrent_creates_with_roles(database_url: str, migrations_dir: Path) -> None:
    """Several processes' worth of Tenancy objects race to make the group and tenant roles."""
    from concurrent.futures import ThreadPoolExecutor

    (migrations_dir / "tenant" / "versions" / "t002_orders.py").unlink()  # no FK to users:
    # the group role (which holds the REFERENCES grant) does not exist when the race starts

    first = strict_tenancy(database_url)
    assert first.strict_roles is not None
    with first.engine.begin() as conn:  # start with no group role: the race includes it
        group = first.strict_roles.group(conn)
        conn.exec_driver_sql(f'DROP OWNED BY "{group}"')
        conn.exec_driver_sql(f'DROP ROLE "{group}"')
    tenancies = [
        Tenancy(database_url, strict=True, tenant_migrations=migrations_dir / "tenant")
        for _ in range(6)
    ]
    jobs = [(t, name) for i, t in enumerate(tenancies) for name in ("same", f"own{i}")]
    try:
        with ThreadPoolExecutor(8) as pool:
            infos = list(pool.map(lambda job: job[0].create_tenant(job[1]), jobs))
        assert {i.name for i in infos if i.name == "same"} == {"same"}
        assert len({i.name for i in infos}) == 7
        assert tenancies[0].doctor().ok
        first.grant_shared(User.__table__)
        with tenancies[0].session("same") as s:
            assert s.scalars(sa.select(User.name)).all() == []
    finally:
        for t in tenancies:
            t.dispose()
        drop_roles(first)
        first.dispose()

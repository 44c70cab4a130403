"""Login mode (``strict="login"``) for database tenants and hybrid Tenancies.

The application is a ``LOGIN CREATEROLE CREATEDB`` role (not a superuser) on both servers;
tenant roles (prefix ``ul...``) must give their SCRAM password on both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import DatabaseStrategy, Tenancy, TenantIsolationError, TenantLoginRefused
from tenantry.strict.logins import LoginSecret
from tests.app.models import Customer
from tests.support.databases import MIGRATIONS, TENANT_DB, cleanup
from tests.support.scram import PREFIX_START, require_scram

SECRET = "database-login-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def scram_both(pg_url: str, second_url: str) -> bool:
    return require_scram(pg_url) and require_scram(second_url)


@pytest.fixture
def app_urls(
    database_url: str, second_url: str, pg_url: str, scram_both: bool
) -> Iterator[tuple[str, str]]:
    """(main database URL, second server URL) as a new non-superuser app role on both."""
    app = f"app_{uuid.uuid4().hex[:8]}"
    db = sa.make_url(database_url).database
    supers = [sa.create_engine(u, isolation_level="AUTOCOMMIT", poolclass=NullPool)
              for u in (pg_url, second_url)]
    for engine in supers:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{app}" LOGIN CREATEROLE CREATEDB')
    with supers[0].connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{db}" OWNER TO "{app}"')
    with sa.create_engine(database_url, poolclass=NullPool).begin() as conn:
        conn.exec_driver_sql(f'ALTER SCHEMA public OWNER TO "{app}"')
    as_app = [sa.make_url(u).set(username=app).render_as_string(hide_password=False)
              for u in (database_url, second_url)]
    yield as_app[0], as_app[1]
    with supers[0].connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{db}" OWNER TO CURRENT_USER')
    with sa.create_engine(database_url, poolclass=NullPool).begin() as conn:
        conn.exec_driver_sql(f'DROP OWNED BY "{app}" CASCADE')
    for engine in supers:  # tenant roles are gone with their tenants (cleanup): the app's now
        with engine.connect() as conn:
            left = conn.execute(sa.text(
                "SELECT r.rolname FROM pg_roles r JOIN pg_auth_members m ON m.roleid = r.oid "
                "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = :a) "
                "AND r.rolname LIKE 'tenantry\\_%'"), {"a": app}).scalars().all()
            for role in left:  # group roles the app made
                conn.exec_driver_sql(f'DROP ROLE "{role}"')
            conn.exec_driver_sql(f'DROP OWNED BY "{app}" CASCADE')
            conn.exec_driver_sql(f'DROP ROLE "{app}"')
        engine.dispose()


@pytest.fixture
def make_login(app_urls: tuple[str, str]) -> Iterator[Callable[..., Tenancy]]:
    made: list[Tenancy] = []

    def make(**options: Any) -> Tenancy:
        options.setdefault("strategy", "database")
        options.setdefault("tenant_migrations", TENANT_DB)
        t = Tenancy(
            app_urls[0],
            strict="login",
            login_secret=SECRET,
            prefix=f"{PREFIX_START}{uuid.uuid4().hex[:6]}_",
            servers={"second": app_urls[1]},
            shared_migrations=MIGRATIONS / "shared",
            **options,
        )
        t.migrate_shared()
        made.append(t)
        return t

    yield make
    for t in reversed(made):
        cleanup(t)


def _whoami(t: Tenancy, name: str) -> tuple[str, str]:
    with t.session(name) as s:
        s.execute(sa.text("RESET ROLE"))
        row = s.execute(sa.text("SELECT current_user, current_database()")).one()
        return str(row[0]), str(row[1])


def test_database_tenants_log_in_as_their_role(
    make_login: Callable[..., Tenancy], scram_both: bool
) -> None:
    t = make_login(pool_size=1, max_connections=2)
    a, b, c = (t.create_tenant(n) for n in ("a", "b", "c"))
    assert {a.location.server, b.location.server} == {"main", "second"}
    for info in (a, b, c):
        assert _whoami(t, info.name) == (t.tenant_role(info.name), info.schema)
    with t.session("a") as s:
        s.add(Customer(name="Ann"))
        s.commit()
    # a's role (with its real password) cannot connect to the database of c, on its server
    same = c if c.location.server == a.location.server else b
    strategy = t.strategy
    assert isinstance(strategy, DatabaseStrategy)
    role = t.tenant_role("a")
    url = strategy.servers[a.location.server or "main"].set(
        username=role, password=LoginSecret(SECRET).password(role), database=same.schema
    )
    with pytest.raises(sa.exc.OperationalError, match="permission denied for database"):
        sa.create_engine(url, poolclass=NullPool).connect().close()
    assert t.engine_metrics().peak_connections <= 2
    t.rename_tenant("a", "d")  # a new role name: a new password
    assert _whoami(t, "d") == (t.tenant_role("d"), f"{t.prefix}d")
    with t.session("d") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["Ann"]
    if scram_both:
        other = Tenancy(t.engine.url, strict="login", login_secret="x" * 20, strategy="database",
                        prefix=t.prefix, servers={"second": strategy.servers["second"]})
        try:
            with pytest.raises(TenantLoginRefused), other.session("b") as s:
                s.execute(sa.text("SELECT 1"))
        finally:
            other.dispose()


def test_hybrid_schema_and_database_tenants_log_in(make_login: Callable[..., Tenancy]) -> None:
    t = make_login(strategy="hybrid", tenant_migrations=TENANT_DB, max_connections=3)
    s1 = t.create_tenant("s1", strategy="schema")
    d1 = t.create_tenant("d1", strategy="database")
    main_db = t.engine.url.database
    assert _whoami(t, "s1") == (t.tenant_role("s1"), main_db)
    assert _whoami(t, "d1")[0] == t.tenant_role("d1")
    assert s1.location.database is None and d1.location.database is not None
    # a schema tenant cannot read the registry
    with t.session("s1") as s, pytest.raises(TenantIsolationError, match="tenantry_tenants"):
        s.execute(sa.text("SELECT * FROM public.tenantry_tenants")).all()
    # one registry: a login engine per tenant, and the app's engine of d1's database (it
    # made and migrated it)
    assert t.engine_metrics().open_engines == 3

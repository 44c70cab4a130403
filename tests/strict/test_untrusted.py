"""Login mode (``strict="login"``): tenants' connections log in as the tenant's own role.

The application connects as a ``LOGIN CREATEROLE`` role that is not a superuser (the usual
deployment). Tenant roles here start with ``ul_`` and the test server demands SCRAM passwords
from such roles (a ``pg_hba.conf`` line), so every tenant login really checks the derived
password.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from tenantry import (
    ConfigurationError,
    ConnectionBudgetExceeded,
    Tenancy,
    TenantIsolationError,
    TenantLoginRefused,
)
from tenantry.aio import AsyncTenancy
from tenantry.strict.logins import LoginRoles, LoginSecret, scram_verifier
from tenantry.strict.rolecatalog import role_exists
from tenantry.strict.rolenames import group_name
from tests.app.models import Customer, User
from tests.support.databases import MIGRATIONS
from tests.support.scram import require_scram

SECRET = "test-login-secret-" + uuid.uuid4().hex
PREFIX = "ul_"
B_SECRET = "b-secret-row"


# -- the server: SCRAM for tenant roles -----------------------------------------------------


@pytest.fixture(scope="session")
def scram_enforced(admin_engine: sa.Engine) -> bool:
    """The server asks roles named ``ul...`` for a SCRAM password (``False``: cannot)."""
    return require_scram(admin_engine.url)


# -- the application role and tenancy ------------------------------------------------------


@pytest.fixture
def app_url(admin_engine: sa.Engine, database_url: str, scram_enforced: bool) -> Iterator[str]:
    """The test database, owned by a new ``LOGIN CREATEROLE`` role; its URL as that role."""
    app_role = f"app_{uuid.uuid4().hex[:8]}"
    db = sa.make_url(database_url).database
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{app_role}" LOGIN CREATEROLE')
        conn.exec_driver_sql(f'ALTER DATABASE "{db}" OWNER TO "{app_role}"')
    superuser = sa.create_engine(database_url, poolclass=NullPool)
    with superuser.begin() as conn:
        conn.exec_driver_sql(f'ALTER SCHEMA public OWNER TO "{app_role}"')
    yield sa.make_url(database_url).set(username=app_role).render_as_string(hide_password=False)
    with superuser.begin() as conn:  # roles are cluster-wide: drop this database's
        group = group_name(db)  # every tenant role of this database is in its group
        members = conn.execute(sa.text(
            "SELECT r.rolname FROM pg_roles r JOIN pg_auth_members m ON r.oid = m.member "
            "JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = :g AND r.rolname <> :a"),
            {"g": group, "a": app_role},  # the app is a member too (it made the group)
        ).scalars().all()
        for role in [*members, group] if role_exists(conn, group) else []:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE usename = :r"), {"r": role})
            conn.exec_driver_sql(f'DROP OWNED BY "{role}" CASCADE')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        conn.exec_driver_sql(f'DROP OWNED BY "{app_role}" CASCADE')
    superuser.dispose()
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{db}" OWNER TO CURRENT_USER')
        conn.exec_driver_sql(f'DROP ROLE "{app_role}"')


def login_tenancy(url: str, **options: Any) -> Tenancy:
    options.setdefault("login_secret", SECRET)
    t = Tenancy(
        url,
        strict="login",
        prefix=PREFIX,
        tenant_migrations=MIGRATIONS / "tenant",
        shared_migrations=MIGRATIONS / "shared",
        **options,
    )
    t.migrate_shared()
    t.grant_shared(User.__table__)
    return t


@pytest.fixture
def make_login(app_url: str) -> Iterator[Callable[..., Tenancy]]:
    made: list[Tenancy] = []

    def make(**options: Any) -> Tenancy:
        t = login_tenancy(app_url, **options)
        made.append(t)
        return t

    yield make
    for t in made:
        t.dispose()


@pytest.fixture
def two(make_login: Callable[..., Tenancy]) -> Tenancy:
    """Tenants ``a`` and ``b`` (``b`` holds a secret row); one connection for all tenants."""
    t = make_login(pool_size=1, max_connections=1, budget_timeout=5)
    t.create_tenant("a")
    t.create_tenant("b")
    with t.session("b") as s:
        s.add(Customer(name=B_SECRET))
        s.commit()
    return t


def app_role(t: Tenancy) -> str:
    name = t.engine.url.username
    assert name is not None
    return name


# -- routing -----------------------------------------------------------------------------------


def test_sessions_log_in_as_the_tenant_role(two: Tenancy) -> None:
    role = two.tenant_role("a")
    with two.session("a") as s:
        who = s.execute(sa.text("SELECT session_user, current_user")).one()
        assert tuple(who) == (role, role)
        s.execute(sa.text("RESET ROLE"))
        assert s.execute(sa.text("SELECT current_user")).scalar() == role  # nothing to undo
        s.add(Customer(name="Ann"))
        s.commit()
        assert s.scalars(sa.select(Customer.name)).all() == ["Ann"]
        assert s.scalars(sa.select(User.name)).all() == []  # shared grants still apply
    with two.connection("a") as conn:  # hand-written SQL finds the tenant's tables
        assert conn.execute(sa.text("SELECT name FROM customers")).scalars().all() == ["Ann"]
        # a member of the group role (shared grants) that cannot act as it
        with pytest.raises(TenantIsolationError, match="role 'tenantry_"):
            _set_role_group(conn, app_role(two))
    with two.engine.connect() as conn:  # no tenant: the application's own role
        assert conn.execute(sa.text("SELECT current_user")).scalar() == app_role(two)


def test_wrong_secret_is_refused(two: Tenancy, app_url: str, scram_enforced: bool) -> None:
    if not scram_enforced:
        pytest.skip("the test server's pg_hba.conf cannot be changed: passwords not checked")
    other = Tenancy(app_url, strict="login", prefix=PREFIX, login_secret="another-secret-0123")
    try:
        with pytest.raises(TenantLoginRefused) as caught, other.session("a") as s:
            s.execute(sa.text("SELECT 1"))
        assert caught.value.role == two.tenant_role("a")
        assert "password authentication failed" in str(caught.value)
        assert other.reset_logins(["a"]) == 1  # the new secret takes over ...
        with other.session("a") as s:
            assert s.execute(sa.text("SELECT current_user")).scalar() == two.tenant_role("a")
    finally:
        other.dispose()
    two.dispose()  # ... and the old one no longer logs in
    with pytest.raises(TenantLoginRefused), two.session("a") as s:
        s.execute(sa.text("SELECT 1"))


def test_a_secret_is_required(app_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENANTRY_LOGIN_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="TENANTRY_LOGIN_SECRET"):
        Tenancy(app_url, strict="login")
    with pytest.raises(ConfigurationError, match="at least 16"):
        Tenancy(app_url, strict="login", login_secret="short")
    with pytest.raises(ConfigurationError, match="strict must be"):
        Tenancy(app_url, strict="yes")
    monkeypatch.setenv("TENANTRY_LOGIN_SECRET", SECRET)
    t = Tenancy(app_url, strict="login")
    assert isinstance(t.strict_roles, LoginRoles)
    t.dispose()


# -- the escape list: hostile SQL in tenant a's connection -------------------------------------


def _b_rows(conn: Connection) -> list[str]:
    return list(conn.exec_driver_sql("SELECT name FROM ul_b.customers").scalars())


def _reset_role(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql("RESET ROLE")
    return _b_rows(conn)


def _set_role_app(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql(f'SET ROLE "{app}"')
    return _b_rows(conn)


def _session_authorization(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql(f'SET SESSION AUTHORIZATION "{app}"')
    return _b_rows(conn)


def _set_config_role(conn: Connection, app: str) -> list[str]:
    conn.execute(sa.text("SELECT set_config('role', :r, false)"), {"r": app})
    return _b_rows(conn)


def _set_role_group(conn: Connection, app: str) -> list[str]:
    group = conn.exec_driver_sql(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    ).scalar_one()
    conn.exec_driver_sql(f'SET ROLE "{group}"')
    return _b_rows(conn)


def _autocommit(conn: Connection, app: str) -> list[str]:
    conn.commit()
    return _b_rows(conn.execution_options(isolation_level="AUTOCOMMIT"))


def _two_phase(conn: Connection, app: str) -> list[str]:
    conn.commit()
    conn.begin_twophase()
    return _b_rows(conn)


def _do_block(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql(
        "DO $$ BEGIN EXECUTE 'RESET ROLE'; PERFORM set_config('x.leak', (SELECT "
        "string_agg(name, ',') FROM ul_b.customers), false); END $$"
    )
    return [conn.exec_driver_sql("SELECT current_setting('x.leak', true)").scalar() or ""]


def _security_definer(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql(
        "CREATE FUNCTION ul_a.steal() RETURNS SETOF text SECURITY DEFINER "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT name FROM ul_b.customers; "
        "END $$"
    )
    return list(conn.exec_driver_sql("SELECT * FROM ul_a.steal()").scalars())


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _security_definer_set_role(conn: Connection, app: str) -> list[str]:
    body = (  # the app role's name as a quoted literal
        "BEGIN PERFORM set_config('role', " + _literal(app) + ", true); "  # noqa: S608
        "RETURN QUERY SELECT name FROM ul_b.customers; END"
    )
    conn.exec_driver_sql(
        "CREATE FUNCTION ul_a.become() RETURNS SETOF text SECURITY DEFINER "
        f"LANGUAGE plpgsql AS $$ {body} $$"
    )
    return list(conn.exec_driver_sql("SELECT * FROM ul_a.become()").scalars())


def _prepare(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql("PREPARE steal AS SELECT name FROM ul_b.customers")
    return list(conn.exec_driver_sql("EXECUTE steal").scalars())


def _pg_read_file(conn: Connection, app: str) -> list[str]:
    return [conn.exec_driver_sql("SELECT pg_read_file('pg_hba.conf')").scalar_one()]


def _registry(conn: Connection, app: str) -> list[str]:
    return list(conn.exec_driver_sql("SELECT name FROM public.tenantry_tenants").scalars())


def _copy_to_file(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql(f"COPY (SELECT 1) TO '/tmp/ul_{uuid.uuid4().hex}'")
    return []


def _alter_owner(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql("ALTER TABLE ul_b.customers OWNER TO CURRENT_USER")
    return _b_rows(conn)


def _grant_self(conn: Connection, app: str) -> list[str]:
    conn.exec_driver_sql("GRANT USAGE ON SCHEMA ul_b TO CURRENT_USER")
    return _b_rows(conn)


ESCAPES = [
    _reset_role, _set_role_app, _session_authorization, _set_config_role, _set_role_group,
    _autocommit, _two_phase, _do_block, _security_definer, _security_definer_set_role,
    _prepare, _pg_read_file, _registry, _copy_to_file, _alter_owner, _grant_self,
]


@pytest.mark.parametrize("attempt", ESCAPES, ids=lambda f: f.__name__.strip("_"))
def test_escape_attempt_fails(
    two: Tenancy, attempt: Callable[[Connection, str], list[str]]
) -> None:
    got: list[str] | None = None
    with two.connection("a") as conn, suppress(sa.exc.DBAPIError, TenantIsolationError):
        got = attempt(conn, app_role(two))  # or refused by PostgreSQL
    assert got is None or not any(B_SECRET in (row or "") for row in got), got
    with two.connection("a") as conn:  # the connection (pool of one) is still tenant a's
        assert conn.execute(sa.text("SELECT current_user")).scalar() == two.tenant_role("a")


def test_denied_sql_is_an_isolation_error(two: Tenancy) -> None:
    with two.session("a") as s, pytest.raises(TenantIsolationError) as caught:
        s.execute(sa.text("SELECT * FROM ul_b.customers")).all()
    assert caught.value.tenant == "a" and caught.value.name == "ul_b"
    assert caught.value.owner is None  # not looked up: another tenant's name is not told


def test_the_escapes_work_in_role_mode(app_url: str) -> None:
    """The contrast: with ``strict=True`` the same SQL does escape (why login mode exists)."""
    t = Tenancy(app_url, strict=True, prefix=PREFIX, tenant_migrations=MIGRATIONS / "tenant",
                shared_migrations=MIGRATIONS / "shared")
    try:
        t.migrate_shared()
        t.grant_shared(User.__table__)
        t.create_tenant("a")
        t.create_tenant("b")
        with t.session("b") as s:
            s.add(Customer(name=B_SECRET))
            s.commit()
        for attempt in (_reset_role, _set_role_app, _session_authorization, _set_config_role,
                        _do_block):
            with t.connection("a") as conn:
                assert B_SECRET in "".join(attempt(conn, app_role(t)))
    finally:
        t.dispose()


# -- state left on a pooled connection, one connection for every tenant -----------------------


def test_session_state_does_not_cross_checkouts(make_login: Callable[..., Tenancy]) -> None:
    """b leaves a prepared statement, a WITH HOLD cursor, a temp table and a LISTEN on its
    pooled connection (pools of one); a's next checkout cannot use any of them."""
    # a budget of 2: a failing statement's vanished-schema check takes a second connection
    two = make_login(pool_size=1, max_connections=2, budget_timeout=5)
    two.create_tenant("a")
    two.create_tenant("b")
    with two.connection("b") as conn:
        conn.exec_driver_sql("PREPARE leak AS SELECT name FROM ul_b.customers")
        conn.exec_driver_sql("DECLARE held CURSOR WITH HOLD FOR SELECT name FROM "
                             "ul_b.customers")
        conn.exec_driver_sql("CREATE TEMP TABLE copied AS SELECT name FROM ul_b.customers")
        conn.exec_driver_sql("LISTEN b_events")
        conn.commit()
        b_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.commit()
    attempts = [
        "EXECUTE leak", "FETCH ALL FROM held", "SELECT name FROM pg_temp.copied",
        "SELECT name FROM copied",
    ]
    with two.connection("a") as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != b_pid
        assert list(conn.exec_driver_sql("SELECT pg_listening_channels()")) == []
        conn.commit()
        for sql in attempts:
            with pytest.raises(sa.exc.DBAPIError):
                conn.exec_driver_sql(sql).all()
            conn.rollback()
    assert two.engine_metrics().peak_connections <= 2


def test_notify_channels_are_database_wide(two: Tenancy) -> None:
    """What remains (documented): a tenant may LISTEN on any channel of its database."""
    with two.connection("a") as conn:  # a's own connection listens ...
        conn.exec_driver_sql("LISTEN b_events")
        conn.commit()
        with two.engine.connect() as app:  # ... and hears what the app notifies for b
            app.exec_driver_sql(f"NOTIFY b_events, '{B_SECRET}'")
            app.commit()
        raw = conn.connection.driver_connection
        conn.exec_driver_sql("SELECT 1")  # psycopg reads pending notifications
        heard = [n.payload for n in raw.notifies(timeout=5, stop_after=1)]  # type: ignore[union-attr]
    assert heard == [B_SECRET]


# -- credentials never shown ---------------------------------------------------------------------


def test_password_never_in_logs_errors_or_repr(
    make_login: Callable[..., Tenancy], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    t = make_login(engine_options={"echo": True}, login_secret=SECRET)
    t.create_tenant("a")
    t.rename_tenant("a", "c")
    role = t.tenant_role("c")
    password = LoginSecret(SECRET).password(role)
    with t.session("c") as s:
        s.execute(sa.text("SELECT 1"))
        with pytest.raises(TenantIsolationError) as denied:
            s.execute(sa.text("SELECT * FROM public.tenantry_tenants"))
    other = Tenancy(t.engine.url, strict="login", prefix=PREFIX, login_secret="x" * 20)
    try:
        with pytest.raises(TenantLoginRefused) as refused, other.session("c") as s:
            s.execute(sa.text("SELECT 1"))
    finally:
        other.dispose()
    config = t.config()
    shown = [
        caplog.text, str(denied.value), repr(denied.value), str(refused.value),
        repr(t), repr(t.strict_roles), repr(config), str(config.options),
        repr(LoginSecret(SECRET)),
        *(repr(e) for e in [t.engine_metrics()]),
    ]
    for text in shown:
        assert password not in text and SECRET not in text
    assert "ALTER ROLE" in caplog.text  # the log did see the statement: a verifier, no password
    rebuilt = pickle.loads(pickle.dumps(config)).build()  # worker processes keep the secret
    try:
        with rebuilt.session("c") as s:
            assert s.execute(sa.text("SELECT current_user")).scalar() == role
    finally:
        rebuilt.dispose()


def test_scram_verifier_matches_postgresql(app_url: str) -> None:
    """A verifier computed here is one PostgreSQL accepts as is (it stores it unchanged)."""
    verifier = scram_verifier("pw-123", salt=b"0123456789abcdef")
    assert verifier.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    assert scram_verifier("pw-123") != scram_verifier("pw-123")  # a new salt each time


# -- provisioning keeps the login role in step ---------------------------------------------------


def _role_row(t: Tenancy, role: str) -> tuple[bool, list[str] | None] | None:
    with t.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT rolcanlogin, rolconfig FROM pg_roles WHERE rolname = :r"), {"r": role}
        ).first()
    return None if row is None else (row[0], row[1])


def test_rename_and_drop_keep_the_login_role_right(two: Tenancy) -> None:
    old = two.tenant_role("a")
    assert _role_row(two, old) == (True, ["search_path=ul_a"])
    with two.session("a") as s:
        s.add(Customer(name="kept"))
        s.commit()
    two.rename_tenant("a", "c")
    new = two.tenant_role("c")
    assert _role_row(two, old) is None
    assert _role_row(two, new) == (True, ["search_path=ul_c"])
    with two.session("c") as s:  # logs in with the password of the new name
        assert s.execute(sa.text("SELECT current_user")).scalar() == new
        assert s.scalars(sa.select(Customer.name)).all() == ["kept"]
    assert two.doctor().ok
    with two.connection("c") as held:  # a connection in use when the tenant is dropped
        held.exec_driver_sql("SELECT 1")
        held.commit()
        assert two.drop_tenant("c", confirm=True)
    assert _role_row(two, new) is None
    with two.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE usename = :r"),
                            {"r": new}).scalar()
    assert left == 0


def test_migrations_run_as_today(two: Tenancy) -> None:
    two.migrate_tenant("a", "t001")
    two.migrate_tenant("a")
    with two.session("a") as s:
        s.add(Customer(name="after"))
        s.commit()
    with two.engine.connect() as conn:
        owner = conn.execute(sa.text(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'customers' "
            "AND relnamespace = CAST(:s AS regnamespace)"), {"s": "ul_a"}).scalar()
    assert owner == two.tenant_role("a")


# -- the budget ------------------------------------------------------------------------------------


def test_budget_bounds_tenant_logins(make_login: Callable[..., Tenancy]) -> None:
    t = make_login(pool_size=1, max_connections=2, max_engines=2, budget_timeout=0.3)
    for name in ("a", "b", "c"):
        t.create_tenant(name)
    roles = [t.tenant_role(n) for n in ("a", "b", "c")]
    with ExitStack() as stack:
        for name in ("a", "b"):
            stack.enter_context(t.connection(name)).exec_driver_sql("SELECT 1")
        with pytest.raises(ConnectionBudgetExceeded), t.connection("c") as conn:
            conn.exec_driver_sql("SELECT 1")
        with t.engine.connect() as conn:
            open_ = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY(:r)"), {"r": roles}
            ).scalar()
        assert open_ == 2
    results: list[str] = []

    def use(name: str) -> None:  # six requests over three tenants through two connections
        with t.session(name) as s:
            results.append(str(s.execute(sa.text("SELECT current_user")).scalar()))

    threads = [threading.Thread(target=use, args=(n,)) for n in ("a", "b", "c") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(roles * 2)
    metrics = t.engine_metrics()
    assert metrics.peak_connections <= 2 and metrics.open_engines <= 2


def test_role_mode_unchanged_without_login(app_url: str) -> None:
    with pytest.raises(ConfigurationError, match="apply only"):
        Tenancy(app_url, strict=True, max_connections=3)


# -- asyncio ------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_sessions_log_in_as_the_tenant_role(
    two: Tenancy, driver: str, scram_enforced: bool
) -> None:
    role = two.tenant_role("a")

    async def main() -> None:
        async with AsyncTenancy(two, driver=driver) as at:  # type: ignore[arg-type]
            for _ in range(2):  # a new route, then the cached one
                async with at.session("a") as s:
                    who = (await s.execute(sa.text("SELECT session_user, current_user"))).one()
                    assert tuple(who) == (role, role)
                    await s.execute(sa.text("RESET ROLE"))
                    with pytest.raises(TenantIsolationError):
                        await s.execute(sa.text("SELECT name FROM ul_b.customers"))
            async with at.connection("a") as conn:
                with pytest.raises((sa.exc.DBAPIError, TenantIsolationError)):
                    await conn.execute(sa.text("SELECT set_config('role', :r, false)"),
                                       {"r": app_role(two)})
            async with at.session("b") as s:
                assert (await s.scalars(sa.select(Customer.name))).all() == [B_SECRET]
        if scram_enforced:  # the async drivers get the password too: a wrong one is refused
            other = Tenancy(two.engine.url, strict="login", prefix=PREFIX,
                            login_secret="another-secret-0123")
            async with AsyncTenancy(other, driver=driver) as at:  # type: ignore[arg-type]
                with pytest.raises(TenantLoginRefused):
                    async with at.session("a") as s:
                        await s.execute(sa.text("SELECT 1"))
            other.dispose()

    asyncio.run(main())


# -- tenant-owned code and the application's own reads ----------------------------------------


def test_across_and_admin_sessions_do_not_run_tenant_code_as_the_app(two: Tenancy) -> None:
    """On the app's connection a tenant's view would run the tenant's functions as the app
    (which ``RESET ROLE`` makes plain); in login mode ``across`` and admin sessions read each
    tenant as its own role."""
    with two.connection("a") as conn:  # tenant a swaps its table for a view calling its code
        conn.exec_driver_sql(
            "CREATE FUNCTION ul_a.spy() RETURNS text LANGUAGE plpgsql AS $$ BEGIN "
            "EXECUTE 'RESET ROLE'; RETURN (SELECT string_agg(name, ',') FROM ul_b.customers); "
            "EXCEPTION WHEN insufficient_privilege THEN RETURN NULL; END $$"
        )
        conn.exec_driver_sql("ALTER TABLE ul_a.customers RENAME TO real_customers")
        conn.exec_driver_sql(
            "CREATE VIEW ul_a.customers AS SELECT id, name, email FROM ul_a.real_customers "
            "UNION ALL SELECT 0, ul_a.spy(), NULL WHERE ul_a.spy() IS NOT NULL"
        )
        conn.commit()
    rows = list(two.across(sa.select(Customer.name)))
    assert [r.row[0] for r in rows if r.tenant == "b"] == [B_SECRET]
    assert not any(B_SECRET in str(r.row[0]) for r in rows if r.tenant == "a")
    with two.admin_session() as s:
        names = s.scalars(sa.select(Customer.name).execution_options(tenant="a")).all()
    assert not any(B_SECRET in str(n) for n in names)


def test_tenants_of_strict_mode_move_to_login_mode(app_url: str) -> None:
    roles = Tenancy(app_url, strict=True, prefix=PREFIX, tenant_migrations=MIGRATIONS / "tenant",
                    shared_migrations=MIGRATIONS / "shared")
    roles.migrate_shared()
    roles.grant_shared(User.__table__)
    roles.create_tenant("a")
    roles.dispose()
    t = login_tenancy(app_url)
    try:
        with pytest.raises(TenantLoginRefused, match=r"password authentication|not permitted"), \
                t.session("a") as s:
            s.execute(sa.text("SELECT 1"))
        assert t.reset_logins() == 1
        with t.session("a") as s:
            assert s.execute(sa.text("SELECT current_user")).scalar() == t.tenant_role("a")
    finally:
        t.dispose()


def test_async_tenancy_takes_login_mode_itself(app_url: str) -> None:
    """``AsyncTenancy(url, strict="login", login_secret=...)``, as the sync constructor."""
    async def main() -> None:
        async with AsyncTenancy(
            app_url, strict="login", login_secret=SECRET, prefix=PREFIX,
            tenant_migrations=MIGRATIONS / "tenant", shared_migrations=MIGRATIONS / "shared",
        ) as at:
            assert isinstance(at.admin.strict_roles, LoginRoles)
            await at.migrate_shared()
            await asyncio.to_thread(at.admin.grant_shared, User.__table__)
            await at.create_tenant("a")
            async with at.session("a") as s:
                await s.execute(sa.text("RESET ROLE"))
                who = (await s.execute(sa.text("SELECT session_user, current_user"))).one()
            role = await asyncio.to_thread(at.admin.tenant_role, "a")
            assert tuple(who) == (role, role)

    asyncio.run(main())
    plain = Tenancy(app_url)
    with pytest.raises(ConfigurationError, match="pass Tenancy options"):
        AsyncTenancy(plain, login_secret=SECRET)
    plain.dispose()

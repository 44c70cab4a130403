"""Strict mode's escape suite: every door and every known trick, sync and async, psycopg and
asyncpg, schema and database tenants.

The application connects as a ``LOGIN CREATEROLE`` (and ``CREATEDB``) non-superuser that owns
its database, as in production. Tenant ``a`` tries to read what it must not: tenant ``b``'s
rows (schema tenants) or the application's own table next to its data (database tenants).
Each attempt is classified and the test asserts the classification in :data:`EXPECTED`:

* ``held``: the forbidden data stays unreachable;
* ``escapes``: escapes by design in this trusted mode (the application's own code can leave
  the tenant role, as PostgreSQL lets the session user do); untrusted SQL needs a mode where
  tenants log in as their own role.

Attempts "across checkouts" run on a pool of one connection (the test checks that the backend
is the same) and look at what the previous checkout left behind.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_only

from tenantry import (
    ConfigurationError,
    DatabaseStrategy,
    Tenancy,
    TenantIsolationError,
    make_engine,
)
from tenantry.aio import AsyncTenancy
from tenantry.hooks.instrumentation import instrumented
from tenantry.jobs import ContextExecutor
from tests.app.models import Customer, User
from tests.support.databases import MIGRATIONS, drop_database, new_database

T = TypeVar("T")

HELD, ESCAPES = "held", "escapes"

#: What each attempt does in strict (trusted) mode.
EXPECTED = {
    "autocommit": HELD,
    "two_phase_core": HELD,
    "two_phase_session": HELD,
    "commit_as_sql": HELD,
    "set_role": ESCAPES,
    "set_session_authorization_other": HELD,
    "set_session_authorization_self": ESCAPES,
    "reset_role": ESCAPES,
    "set_config_role": ESCAPES,
    "do_block": HELD,
    "security_definer": HELD,
    "prepare": HELD,
    "prepared_across_checkouts": HELD,
    "with_hold_cursor_across_checkouts": HELD,
    "temp_table_across_checkouts": HELD,
    "session_role_across_checkouts": HELD,
    "listen_across_checkouts": HELD,
    "notify_between_tenants": ESCAPES,
    "pg_read_file": HELD,
}

DOORS = ["sync", "async-psycopg", "async-asyncpg"]
KINDS = ["schema", "database"]
# One pooled connection, and one overflow for the owner lookup of TenantIsolationError, which
# opens a second connection (consecutive checkouts still get the pooled one).
POOL_OF_ONE = {"pool_size": 1, "max_overflow": 1}


# -- the world: an app role, a database it owns, tenants a and b -------------------------


@dataclass
class World:
    kind: str
    url: str  # as the app role
    app_role: str
    setup: Tenancy
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def forbidden(self) -> str:
        """SQL that tenant ``a`` must not be able to run successfully."""
        if self.kind == "schema":
            return "SELECT name FROM tenant_b.customers"
        return "SELECT secret FROM public.app_only"


def _tenancy(url: str, kind: str, prefix: str, **options: Any) -> Tenancy:
    migrations = MIGRATIONS / ("tenant" if kind == "schema" else "tenant_db")
    if kind == "database":
        options.setdefault("strategy", "database")
    return Tenancy(
        url, strict=True, prefix=prefix, tenant_migrations=migrations,
        shared_migrations=MIGRATIONS / "shared", **options,
    )


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest, admin_engine: sa.Engine) -> Iterator[World]:
    kind: str = request.param
    app_role = f"app_{uuid.uuid4().hex[:8]}"
    superuser_url = new_database(admin_engine)
    db = sa.make_url(superuser_url).database
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{app_role}" LOGIN CREATEROLE CREATEDB')
        conn.exec_driver_sql(f'ALTER DATABASE "{db}" OWNER TO "{app_role}"')
    superuser = sa.create_engine(superuser_url, poolclass=NullPool)
    with superuser.begin() as conn:
        conn.exec_driver_sql(f'ALTER SCHEMA public OWNER TO "{app_role}"')
    url = sa.make_url(superuser_url).set(username=app_role).render_as_string(hide_password=False)
    prefix = "tenant_" if kind == "schema" else f"t{uuid.uuid4().hex[:6]}_"
    setup = _tenancy(url, kind, prefix)
    w = World(kind, url, app_role, setup)
    try:
        setup.migrate_shared()
        if kind == "schema":
            setup.grant_shared(User.__table__)
        for name in ("a", "b"):
            setup.create_tenant(name)
            w.roles[name] = setup.tenant_role(name)
            with setup.session(name) as s:
                s.add(Customer(name=f"{name} secret"))
                s.commit()
        # the app's own data next to tenant a's (not granted to tenants)
        with setup.connection("a") as conn:
            conn = conn.execution_options(tenantry_role=None)
            conn.exec_driver_sql("CREATE TABLE public.app_only (secret text)")
            conn.exec_driver_sql("INSERT INTO public.app_only VALUES ('app secret')")
            conn.commit()
        yield w
    finally:
        for info in setup.list_tenants():
            setup.drop_tenant(info.name, confirm=True)
        if isinstance(setup.strategy, DatabaseStrategy):
            setup.strategy.drop_templates()
        setup.dispose()
        drop_database(admin_engine, superuser_url)
        superuser.dispose()
        with admin_engine.connect() as conn:
            if kind == "schema":
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{group_of(url)}"')
            conn.exec_driver_sql(f'DROP ROLE "{app_role}"')


def group_of(url: str) -> str:
    from tenantry.strict.rolenames import group_name

    return group_name(sa.make_url(url).database or "")


# -- doors: one way of opening tenant connections ----------------------------------------


class Door:
    """Opens connections and sessions of a strict Tenancy (sync) or AsyncTenancy (async), on
    a pool of one, and runs a sync function on them (async: through ``run_sync``)."""

    def __init__(self, world: World, name: str) -> None:
        self.world, self.name = world, name
        options: dict[str, Any] = {}
        if world.kind == "schema":
            options["engine_options"] = POOL_OF_ONE
        else:
            options["pool_size"] = 1
        self.tenancy = _tenancy(world.url, world.kind, world.setup.prefix, **options)
        self.aio: AsyncTenancy | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        if name != "sync":
            driver = name.removeprefix("async-")
            self.loop = asyncio.new_event_loop()
            self.aio = AsyncTenancy(self.tenancy, driver=driver,  # type: ignore[arg-type]
                                    engine_options=POOL_OF_ONE)

    def close(self) -> None:
        if self.aio is not None and self.loop is not None:
            self.loop.run_until_complete(self.aio.dispose())
            self.loop.close()
        self.tenancy.dispose()

    def connect(self, tenant: str, fn: Callable[[Connection], T], *, app: bool = False) -> T:
        """``fn(conn)`` on a connection of ``tenant`` (``app=True``: the same pool, as the
        application: no tenant role)."""

        def run(conn: Connection) -> T:
            if app:
                conn = conn.execution_options(tenantry_role=None, tenantry_tenant=None)
            return fn(conn)

        if self.aio is None:
            with self.tenancy.connection(tenant) as conn:
                return run(conn)

        async def go() -> T:
            assert self.aio is not None
            async with self.aio.connection(tenant) as conn:
                return await conn.run_sync(run)

        assert self.loop is not None
        return self.loop.run_until_complete(go())

    def session(self, tenant: str, fn: Callable[[Session], T], **kwargs: Any) -> T:
        if self.aio is None:
            with self.tenancy.session(tenant, **kwargs) as s:
                return fn(s)

        async def go() -> T:
            assert self.aio is not None
            async with self.aio.session(tenant, **kwargs) as s:
                return await s.run_sync(fn)

        assert self.loop is not None
        return self.loop.run_until_complete(go())


@pytest.fixture(scope="module", params=DOORS)
def door(request: pytest.FixtureRequest, world: World) -> Iterator[Door]:
    d = Door(world, request.param)
    yield d
    d.close()


# -- helpers -----------------------------------------------------------------------------


def outcome(conn: Connection | Session, *sql: str) -> str:
    """``escapes`` if the last of ``sql`` returns rows, ``held`` if PostgreSQL refuses one."""
    try:
        for statement in sql:
            result = conn.execute(sa.text(statement))
        rows = result.all()
    except TenantIsolationError:
        return HELD
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) in ("42501", "34000", "26000", "42P01"):
            return HELD  # permission denied, no such cursor / prepared statement / table
        raise
    return ESCAPES if rows else HELD


def current_user(conn: Connection | Session) -> str:
    return str(conn.execute(sa.text("SELECT current_user")).scalar_one())


def backend(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def tenant_table(world: World, tenant: str) -> str:
    return f'"{world.setup.get_tenant(tenant).schema}".customers'


def check(name: str, got: str) -> None:
    assert got == EXPECTED[name], f"{name}: {got}, expected {EXPECTED[name]}"


# -- the doors tenantry offers -----------------------------------------------------------


def test_every_engine_handed_out_is_instrumented(door: Door) -> None:
    tenancy = door.tenancy
    assert instrumented(tenancy.engine)
    seen = []
    for tenant in ("a", "b"):
        seen.append(door.connect(tenant, lambda c: c.engine))
    if door.aio is not None:
        assert instrumented(door.aio.engine)
        for tenant in ("a", "b"):
            routed = door.loop.run_until_complete(door.aio.route(tenant))  # type: ignore[union-attr]
            assert instrumented(routed)
    for engine in seen:
        assert instrumented(engine)
    if isinstance(tenancy.strategy, DatabaseStrategy):
        assert all(e.url.database != tenancy.engine.url.database for e in seen)
    assert not instrumented(sa.create_engine(door.world.url))  # only tenantry's own engines


def test_session_and_connection_run_as_the_tenant(door: Door) -> None:
    role = door.world.roles["a"]
    assert door.session("a", current_user) == role
    assert door.connect("a", current_user) == role
    assert door.connect("a", lambda c: outcome(c, door.world.forbidden)) == HELD


def test_streaming_connections_run_as_the_tenant(world: World) -> None:
    """A connection that streams (server-side cursors) still switches role at begin."""
    for options in ({"stream_results": True}, {"yield_per": 10}):
        with world.setup.connection("a") as conn:
            streaming = conn.execution_options(**options)
            with streaming.begin():
                who = streaming.execute(sa.text("SELECT current_user")).scalar()
        assert who == world.roles["a"], options


def test_one_role_statement_per_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role costs one statement per transaction (AUTOCOMMIT: one per checkout)."""
    import psycopg

    seen: list[str] = []
    execute = psycopg.Cursor.execute

    def spy(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy)
    role = world.roles["a"]
    with world.setup.session("a") as s:
        s.execute(sa.text("SELECT 1"))
        s.commit()
        s.execute(sa.text("SELECT 2"))
    with world.setup.connection("a") as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(3):
            conn.execute(sa.text("SELECT 3"))
    assert [q for q in seen if "ROLE" in q] == [f'SET LOCAL ROLE "{role}"'] * 2 + [
        f'SET ROLE "{role}"'
    ]


def test_autocommit(door: Door) -> None:
    def attempt(conn: Connection) -> tuple[str, str]:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return current_user(conn), outcome(conn, door.world.forbidden)

    user, got = door.connect("a", attempt)
    assert user == door.world.roles["a"]
    check("autocommit", got)
    # the next checkout of the pool (the same connection) is the app again
    assert door.connect("a", current_user, app=True) == door.world.app_role


def test_two_phase_core(door: Door) -> None:
    def attempt(conn: Connection) -> tuple[str, str]:
        with conn.begin_twophase() as tx:
            user = current_user(conn)
            got = outcome(conn, door.world.forbidden)
            tx.rollback()
        return user, got

    user, got = door.connect("a", attempt)
    assert user == door.world.roles["a"]
    check("two_phase_core", got)


def test_two_phase_session(door: Door) -> None:
    def attempt(s: Session) -> tuple[str, str]:
        return current_user(s), outcome(s, door.world.forbidden)

    user, got = door.session("a", attempt, twophase=True)
    assert user == door.world.roles["a"]
    check("two_phase_session", got)


def test_commit_sent_as_sql(door: Door) -> None:
    """``COMMIT`` as SQL ends the transaction (and its SET LOCAL ROLE) behind SQLAlchemy's
    back; the statements that follow still run as the tenant."""

    def attempt(conn: Connection) -> tuple[str, str]:
        conn.execute(sa.text("SELECT 1"))
        conn.execute(sa.text("COMMIT"))
        return current_user(conn), outcome(conn, door.world.forbidden)

    user, got = door.connect("a", attempt)
    assert user == door.world.roles["a"]
    check("commit_as_sql", got)


# -- hostile SQL inside the tenant's transaction ------------------------------------------


def _after(sql: str, world: World) -> Callable[[Connection], str]:
    def attempt(conn: Connection) -> str:
        conn.execute(sa.text(sql))
        return outcome(conn, world.forbidden)

    return attempt


def test_set_role(door: Door) -> None:
    w = door.world
    check("set_role", door.connect("a", _after(f'SET ROLE "{w.app_role}"', w)))


def test_set_session_authorization(door: Door) -> None:
    w = door.world

    def other(conn: Connection) -> str:
        return outcome(conn, "SET SESSION AUTHORIZATION postgres", w.forbidden)

    check("set_session_authorization_other", door.connect("a", other))
    check(
        "set_session_authorization_self",
        door.connect("a", _after(f'SET SESSION AUTHORIZATION "{w.app_role}"', w)),
    )
    assert door.connect("a", current_user) == w.roles["a"]  # nothing lingers


def test_reset_role(door: Door) -> None:
    check("reset_role", door.connect("a", _after("RESET ROLE", door.world)))


def test_set_config_role(door: Door) -> None:
    w = door.world
    sql = f"SELECT set_config('role', '{w.app_role}', true)"
    check("set_config_role", door.connect("a", _after(sql, w)))


def test_do_block(door: Door) -> None:
    sql = f"DO $$ BEGIN PERFORM * FROM ({door.world.forbidden}) AS q; END $$"
    check("do_block", door.connect("a", lambda c: _do(c, sql)))


def _do(conn: Connection, sql: str) -> str:
    try:
        conn.execute(sa.text(sql))
    except TenantIsolationError:
        return HELD
    except sa.exc.DBAPIError as exc:
        assert getattr(exc.orig, "sqlstate", None) == "42501"
        return HELD
    return ESCAPES


def test_security_definer_function(door: Door) -> None:
    w = door.world
    schema = w.setup.get_tenant("a").schema

    def attempt(conn: Connection) -> str:
        return outcome(
            conn,
            "SET LOCAL check_function_bodies = off",  # created: the call is what is refused
            f'CREATE FUNCTION "{schema}".peek() RETURNS SETOF text LANGUAGE sql '
            f"SECURITY DEFINER AS $$ {w.forbidden} $$",
            f'SELECT * FROM "{schema}".peek()',  # noqa: S608
        )

    check("security_definer", door.connect("a", attempt))


def test_prepare(door: Door) -> None:
    w = door.world

    check("prepare", door.connect("a", lambda c: outcome(c, f"PREPARE peek AS {w.forbidden}",
                                                         "EXECUTE peek")))


def test_pg_read_file(door: Door) -> None:
    got = door.connect("a", lambda c: outcome(c, "SELECT pg_read_file('PG_VERSION')"))
    check("pg_read_file", got)
    # not even as the app (the trusted-mode escapes lead there)
    got = door.connect("a", _as_app_read_file)
    assert got == HELD


def _as_app_read_file(conn: Connection) -> str:
    conn.execute(sa.text("RESET ROLE"))
    return outcome(conn, "SELECT pg_read_file('PG_VERSION')")


# -- state left behind for the next checkout (pool of one) -------------------------------


def _next(door: Door, fn: Callable[[Connection], T], app: bool) -> T:
    """``fn`` on the next checkout: tenant ``b`` (schema tenants share the pool), else (or
    with ``app``) the application on tenant ``a``'s pool."""
    if door.world.kind == "schema" and not app:
        return door.connect("b", fn)
    return door.connect("a", fn, app=True)


def _across(
    door: Door,
    leave: Callable[[Connection], None],
    look: Callable[[Connection], T],
    app: bool = False,
) -> T:
    def first(conn: Connection) -> int:
        leave(conn)
        return backend(conn)

    def then(conn: Connection) -> tuple[int, T]:
        return backend(conn), look(conn)

    pid = door.connect("a", first)
    again, seen = _next(door, then, app)
    assert again == pid, "not the same pooled connection"
    return seen


def test_prepared_statement_across_checkouts(door: Door) -> None:
    """A statement prepared by tenant a runs with the privileges of whoever executes it."""
    table = tenant_table(door.world, "a")

    def leave(conn: Connection) -> None:
        conn.execute(sa.text(f"PREPARE mine AS SELECT current_user::text, name FROM {table}"))  # noqa: S608
        conn.commit()

    def look(conn: Connection) -> str:
        if outcome(conn, "EXECUTE mine") == HELD:
            return HELD  # gone, or refused to tenant b
        user = conn.execute(sa.text("EXECUTE mine")).first()[0]  # type: ignore[index]
        return ESCAPES if user == door.world.roles["a"] else HELD  # the app's own right

    check("prepared_across_checkouts", _across(door, leave, look))


def test_with_hold_cursor_across_checkouts(door: Door) -> None:
    table = tenant_table(door.world, "a")

    def leave(conn: Connection) -> None:
        conn.execute(sa.text(f"DECLARE mine CURSOR WITH HOLD FOR SELECT name FROM {table}"))  # noqa: S608
        conn.commit()

    got = _across(door, leave, lambda c: outcome(c, "FETCH ALL FROM mine"))
    check("with_hold_cursor_across_checkouts", got)


def test_temp_table_across_checkouts(door: Door) -> None:
    table = tenant_table(door.world, "a")

    def leave(conn: Connection) -> None:
        conn.execute(sa.text(f"CREATE TEMP TABLE stash AS SELECT name FROM {table}"))  # noqa: S608
        conn.execute(sa.text("GRANT SELECT ON stash TO PUBLIC"))
        conn.commit()

    got = _across(door, leave, lambda c: outcome(c, "SELECT * FROM pg_temp.stash"))
    check("temp_table_across_checkouts", got)


def test_session_role_across_checkouts(door: Door) -> None:
    def leave(conn: Connection) -> None:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text("SELECT 1"))  # SET ROLE at session level, for this checkout
        conn.execute(sa.text("SET search_path TO pg_catalog"))  # a session setting too

    def look(conn: Connection) -> str:
        path = conn.execute(sa.text("SHOW search_path")).scalar_one()
        clean = path != "pg_catalog" and current_user(conn) == door.world.app_role
        return HELD if clean else ESCAPES

    check("session_role_across_checkouts", _across(door, leave, look, app=True))


def test_listen_across_checkouts(door: Door) -> None:
    def leave(conn: Connection) -> None:
        conn.execute(sa.text("LISTEN tenant_a_events"))
        conn.commit()

    def look(conn: Connection) -> str:
        channels = conn.execute(sa.text("SELECT pg_listening_channels()")).scalars().all()
        return ESCAPES if channels else HELD

    check("listen_across_checkouts", _across(door, leave, look))


def test_notify_between_tenants(door: Door) -> None:
    """Channels have no privileges: a tenant hears what another tenant's code NOTIFYs."""
    channel = f"orders_{uuid.uuid4().hex[:6]}"
    listener = "b" if door.world.kind == "schema" else "a"  # database tenants: a's own pool

    def talk() -> None:
        with door.world.setup.connection("a") as talker:
            talker.execute(sa.text(f"NOTIFY {channel}, 'a secret'"))
            talker.commit()

    def listen(conn: Connection) -> list[str]:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        raw: Any = conn.connection.driver_connection
        heard: list[str] = []
        if door.aio is None:
            raw.add_notify_handler(lambda n: heard.append(n.payload))
            conn.execute(sa.text(f"LISTEN {channel}"))
            talk()
            conn.execute(sa.text("SELECT 1"))  # notifications arrive with the next result
            return heard
        got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if door.name == "async-asyncpg":
            await_only(raw.add_listener(channel, lambda *args: got.set_result(args[-1])))
        else:
            raw.add_notify_handler(lambda n: got.done() or got.set_result(n.payload))
            conn.execute(sa.text(f"LISTEN {channel}"))
        talk()
        conn.execute(sa.text("SELECT 1"))
        heard.append(await_only(asyncio.wait_for(got, 10)))
        return heard

    heard = door.connect(listener, listen)
    check("notify_between_tenants", ESCAPES if heard == ["a secret"] else HELD)


# -- admin doors, across(), jobs (sync API) -----------------------------------------------


def test_admin_session_and_connection_follow_the_statement_tenant(world: World) -> None:
    t = world.setup
    who = sa.text("SELECT current_user")
    with t.admin_session() as s:
        assert s.execute(who.execution_options(tenant="a")).scalar() == world.roles["a"]
        assert s.execute(who.execution_options(tenant="b")).scalar() == world.roles["b"]
        assert s.execute(who).scalar() == world.app_role
    if world.kind != "schema":
        return  # admin connections reach tenants of the main database only
    names = sa.select(Customer.__table__.c.name)
    for isolation in ("READ COMMITTED", "AUTOCOMMIT"):
        with t.admin_connection() as conn:
            conn = conn.execution_options(isolation_level=isolation)
            assert conn.execute(who.execution_options(tenant="a")).scalar() == world.roles["a"]
            assert conn.scalars(names.execution_options(tenant="b")).all() == ["b secret"]
            assert conn.execute(who).scalar() == world.app_role  # no tenant: the app
            assert conn.execute(who.execution_options(tenant="b")).scalar() == world.roles["b"]
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text(world.forbidden).execution_options(tenant="a")).all()
            conn.rollback()  # as tenant a, b's rows are refused


def test_across_reads_each_tenant_as_its_role(world: World) -> None:
    """across() reads every tenant as that tenant's role, not as the application."""
    rows = list(world.setup.across(
        sa.text("SELECT current_user AS who, name FROM __tenant__.customers")
    ))
    assert {(r.tenant, r.row) for r in rows} == {
        ("a", (world.roles["a"], "a secret")), ("b", (world.roles["b"], "b secret")),
    }
    rows = list(world.setup.across(sa.text("SELECT current_user FROM __tenant__.customers"),
                                   jobs=2))
    assert {(r.tenant, r.row[0]) for r in rows} == {
        ("a", world.roles["a"]), ("b", world.roles["b"]),
    }


def test_async_tenancy_strict_parameter(world: World) -> None:
    migrations = MIGRATIONS / ("tenant" if world.kind == "schema" else "tenant_db")

    async def go() -> str:
        t = AsyncTenancy(world.url, strict=True, strategy=world.setup.strategy.kind,
                         prefix=world.setup.prefix, tenant_migrations=migrations)
        try:
            assert t.admin.strict_roles is not None
            async with t.session("a") as s:
                return str((await s.execute(sa.text("SELECT current_user"))).scalar())
        finally:
            await t.dispose()

    assert asyncio.run(go()) == world.roles["a"]
    plain = Tenancy(world.url)
    try:
        with pytest.raises(ConfigurationError, match="pass Tenancy options to the Tenancy"):
            AsyncTenancy(plain, strict=True)
    finally:
        plain.dispose()


def test_jobs_carry_the_tenant_and_its_role(world: World) -> None:
    t = world.setup

    def job() -> str:
        with t.session() as s:
            return current_user(s)

    with t.use("a"), ContextExecutor(max_workers=1) as pool:
        assert pool.submit(job).result() == world.roles["a"]


def test_hybrid_tenants_on_every_door(database_url: str) -> None:
    """A hybrid Tenancy: schema and database tenants, AUTOCOMMIT included."""
    t = Tenancy(database_url, strategy="hybrid", strict=True, prefix=f"h{uuid.uuid4().hex[:6]}_",
                tenant_migrations=MIGRATIONS / "tenant_db",
                shared_migrations=MIGRATIONS / "shared")
    try:
        t.migrate_shared()
        t.create_tenant("s")
        t.create_tenant("d", strategy="database")
        assert instrumented(t.engine)
        for name in ("s", "d"):
            with t.connection(name) as conn:
                assert instrumented(conn.engine)
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                assert current_user(conn) == t.tenant_role(name)
    finally:
        for info in t.list_tenants():
            t.drop_tenant(info.name, confirm=True)
        assert isinstance(t.strategy, DatabaseStrategy)
        t.strategy.drop_templates()
        with t.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{group_of(database_url)}"')
        t.dispose()


def test_plain_engines_get_no_hooks(database_url: str) -> None:
    """Importing tenantry puts no role or reset hook on engines it did not make."""
    engine = make_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert not instrumented(engine)
    finally:
        engine.dispose()


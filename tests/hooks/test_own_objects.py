"""tenantry hooks only its own engines and sessions; the application's are left alone.

Importing tenantry adds no listener to SQLAlchemy's ``Engine`` or ``Session`` classes, so a plain
engine and a plain session behave as plain SQLAlchemy (checked in a fresh interpreter). Every
guarantee still holds on what tenantry hands out: routes derived from its engines share their
hooks, and async sessions run on a :class:`~tenantry.TenantSession`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionEvents

from tenantry import (
    AdminSession,
    AdminSessionRequired,
    NoTenantSelected,
    Tenancy,
    TenantMismatch,
    TenantSession,
)
from tenantry.aio import AsyncTenancy
from tenantry.errors import ConfigurationError
from tenantry.hooks.instrumentation import instrumented
from tests.app.models import Customer

DRIVERS = ["psycopg", "asyncpg"]

# Run in a fresh interpreter: every front door of tenantry is imported first, then plain
# SQLAlchemy objects are made and used on a table in the placeholder schema.
PLAIN = textwrap.dedent(
    """
    import asyncio, sys

    import tenantry, tenantry.aio, tenantry.crosstenant.across, tenantry.jobs, tenantry.hooks.orm
    import tenantry.pytest_plugin, tenantry.hooks.statements, tenantry.web

    import sqlalchemy as sa
    from sqlalchemy.events import ConnectionEvents, DialectEvents, PoolEvents
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, SessionEvents, mapped_column
    from sqlalchemy.orm import sessionmaker

    url = sys.argv[1]


    class Base(DeclarativeBase):
        pass


    class Thing(Base):
        __tablename__ = "things"
        __table_args__ = {"schema": tenantry.TENANT_SCHEMA}
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]


    def listeners(dispatch, events):
        names = [n for n in dir(events) if not n.startswith("_") and hasattr(dispatch, n)]
        return {n: list(getattr(dispatch, n)) for n in names if list(getattr(dispatch, n))}


    def tenantry_listeners(dispatch, events):
        return {n: fns for n, fns in listeners(dispatch, events).items()
                if any(getattr(fn, "__module__", "").startswith("tenantry") for fn in fns)}


    def check_engine(engine, derived=False):
        # a derived engine has SQLAlchemy's own engine_connect hook applying its options
        found = (tenantry_listeners if derived else listeners)(engine.dispatch, ConnectionEvents)
        assert found == {}, (engine, found)
        assert tenantry_listeners(engine.dialect.dispatch, DialectEvents) == {}, engine
        assert tenantry_listeners(engine.pool.dispatch, PoolEvents) == {}, engine


    def check_session(session):
        assert listeners(session.dispatch, SessionEvents) == {}, session


    engine = sa.create_engine(url)
    check_engine(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{tenantry.TENANT_SCHEMA}"')
        Base.metadata.create_all(conn)
        conn.execute(sa.insert(Thing).values(id=1, name="plain"))
    named = sa.select(Thing.name).execution_options(tenant="acme")

    # Core: no NoTenantSelected, no AdminSessionRequired; the table is a table like any other
    derived = engine.execution_options(tenantry_tenant="beta")  # as tenantry derives its routes
    check_engine(derived, derived=True)
    for e in (engine, derived):
        with e.connect() as conn:
            assert tenantry_listeners(conn.dispatch, ConnectionEvents) == {}
            assert conn.scalars(sa.select(Thing.name)).all() == ["plain"]
            assert conn.scalars(named).all() == ["plain"]

    # ORM: a plain Session, and one from a sessionmaker
    for session in (Session(engine), sessionmaker(engine)()):
        with session:
            check_session(session)
            assert session.scalars(sa.select(Thing.name)).all() == ["plain"]
            assert session.scalars(named).all() == ["plain"]
            session.add(Thing(id=2, name="added"))
            session.flush()
            assert session.get(Thing, 2).name == "added"
            session.rollback()


    async def main(driver):
        aengine = create_async_engine(sa.make_url(url).set(drivername=driver))
        check_engine(aengine.sync_engine)
        async with AsyncSession(aengine) as session:
            check_session(session.sync_session)
            assert (await session.scalars(named)).all() == ["plain"]
        async with aengine.connect() as conn:
            assert (await conn.scalars(named)).all() == ["plain"]
        await aengine.dispose()


    for driver in ("postgresql+psycopg", "postgresql+asyncpg"):
        asyncio.run(main(driver))
    engine.dispose()
    print("plain")
    """
)


def test_importing_tenantry_leaves_plain_engines_and_sessions_alone(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PLAIN, database_url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "plain"


@pytest.fixture
def two(tenancy: Tenancy) -> Tenancy:
    for name in ("acme", "beta"):
        tenancy.create_tenant(name)
        with tenancy.session(name) as s:
            s.add(Customer(name=f"{name}-seed"))
            s.commit()
    return tenancy


def session_hooks(session: Session) -> dict[str, int]:
    names = [n for n in dir(SessionEvents) if not n.startswith("_") and n != "dispatch"]
    counts = {n: len(list(getattr(session.dispatch, n))) for n in names}
    return {n: c for n, c in counts.items() if c}


def test_tenantry_engines_and_their_routes_carry_the_hooks(two: Tenancy) -> None:
    assert instrumented(two.engine)
    with two.connection("acme") as conn:
        assert instrumented(conn.engine)  # a route: derived with execution_options()
        with pytest.raises(TenantMismatch):
            conn.execute(sa.select(Customer.name).execution_options(tenant="beta"))
    with two.connection() as conn:
        with pytest.raises(AdminSessionRequired):
            conn.execute(sa.select(Customer.name).execution_options(tenant="beta"))
        with pytest.raises(NoTenantSelected):
            conn.execute(sa.select(Customer.name))
    plain = sa.create_engine(two.engine.url)
    assert not instrumented(plain)
    assert not instrumented(plain.execution_options(isolation_level="AUTOCOMMIT"))
    plain.dispose()


def test_tenantry_sessions_carry_the_hooks(two: Tenancy) -> None:
    expected = {"do_orm_execute": 1, "before_attach": 1, "before_flush": 1}
    with two.session("acme") as s:
        assert isinstance(s, TenantSession)
        assert session_hooks(s) == expected
        with pytest.raises(TenantMismatch):
            s.scalars(sa.select(Customer.name).execution_options(tenant="beta")).all()
    with two.session() as s, pytest.raises(AdminSessionRequired):
        s.scalars(sa.select(Customer.name).execution_options(tenant="beta")).all()
    with two.admin_session() as s:
        assert isinstance(s, AdminSession)
        assert session_hooks(s) == expected
        assert s.scalars(sa.select(Customer.name).execution_options(tenant="beta")).all() == [
            "beta-seed"
        ]
    with Session(two.engine) as s:  # the application's own session: no tenantry hook
        assert session_hooks(s) == {}


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_sessions_keep_every_guarantee(two: Tenancy, driver: str) -> None:
    async def main() -> None:
        async with AsyncTenancy(two, driver=driver) as at:  # type: ignore[arg-type]
            async with at.session("acme") as s:
                assert isinstance(s.sync_session, TenantSession)
                acme = (await s.scalars(sa.select(Customer))).one()
                with pytest.raises(TenantMismatch):
                    await s.execute(sa.select(Customer.name).execution_options(tenant="beta"))
            async with at.session("beta") as s:
                with pytest.raises(TenantMismatch):
                    s.add(acme)  # an instance of another tenant
            async with at.session() as s:
                with pytest.raises(NoTenantSelected):
                    await s.execute(sa.select(Customer))
            async with at.connection("acme") as conn:
                assert instrumented(conn.engine)
                with pytest.raises(TenantMismatch):
                    await conn.execute(sa.select(Customer.name).execution_options(tenant="beta"))
            with pytest.raises(ConfigurationError, match="sync_session_class"):
                at.session("acme", sync_session_class=Session)
            async with at.session("acme", sync_session_class=TenantSession) as s:
                assert (await s.scalars(sa.select(Customer.name))).all() == ["acme-seed"]
            async with AsyncSession(at.engine) as s:  # the application's own: no hook
                assert session_hooks(s.sync_session) == {}

    asyncio.run(main())

"""``routing="search_path"``: an application whose models and SQL are unqualified, each tenant
transaction under ``SET LOCAL search_path``; no tenant, no unqualified table."""

from __future__ import annotations

import asyncio
import random
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenantry import ConfigurationError, NoTenantSelected, Tenancy
from tenantry.aio import AsyncTenancy
from tests.support.latency import DRIVERS
from tests.support.pgbouncer import pgbouncer


def has_pgbouncer() -> bool:
    return shutil.which("pgbouncer") is not None or Path("/usr/sbin/pgbouncer").exists()


class Base(DeclarativeBase):
    metadata = sa.MetaData()


class Plan(Base):  # shared: qualified
    __tablename__ = "sp_plans"
    __table_args__: ClassVar[dict[str, str]] = {"schema": "public"}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)


class Project(Base):  # a tenant table, unqualified as the application always had it
    __tablename__ = "sp_projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.Text)
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("public.sp_plans.id"))


TITLES = sa.text("SELECT title FROM sp_projects ORDER BY title")
COUNT_PLANS = sa.text("SELECT count(*) FROM sp_plans")  # shared, unqualified: on the path


def seed(t: Tenancy) -> Tenancy:
    t.migrate_shared()
    if t.strict_roles is not None:
        t.strict_roles.grant_shared([Plan.__table__])
    with t.session() as s:
        s.add(Plan(id=1, name="basic"))
        s.commit()
    for name in ("a", "b"):
        t.create_tenant(name)
        with t.session(name) as s:
            s.add(Project(title=f"{name}-1", plan_id=1))
            s.commit()
    return t


@pytest.fixture
def spt(database_url: str) -> Iterator[Tenancy]:
    t = Tenancy(database_url, metadata=Base.metadata, routing="search_path")
    yield seed(t)
    t.dispose()


def test_unqualified_models_and_sql_stay_in_their_tenant(spt: Tenancy) -> None:
    for name in ("a", "b"):
        with spt.session(name) as s:
            assert s.scalars(sa.select(Project.title)).all() == [f"{name}-1"]
            assert s.scalars(TITLES).all() == [f"{name}-1"]
            assert s.scalar(COUNT_PLANS) == 1  # shared tables stay reachable
            assert s.scalar(sa.select(sa.func.count()).select_from(Plan)) == 1
        with spt.connection(name) as conn:
            assert conn.scalars(TITLES).all() == [f"{name}-1"]
    with spt.connection("a") as conn:  # the tables live in the tenant's schema
        where = conn.scalar(sa.text(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'sp_projects'"
        ))
        assert where == spt.locate("a").schema


def test_each_transaction_sets_the_path_again(spt: Tenancy) -> None:
    with spt.session("a") as s:
        assert s.scalars(TITLES).all() == ["a-1"]
        s.commit()
        s.execute(sa.text("COMMIT"))  # ended behind SQLAlchemy's back
        assert s.scalars(TITLES).all() == ["a-1"]
        s.rollback()
        assert s.scalar(sa.text("SELECT current_setting('search_path')")).startswith("tenant_a")


def test_no_tenant_no_unqualified_table(spt: Tenancy) -> None:
    with spt.session() as s:
        with pytest.raises(NoTenantSelected, match="sp_projects"):
            s.scalars(sa.select(Project)).all()  # stopped before it is sent
        s.rollback()
        with pytest.raises(NoTenantSelected, match="sp_projects"):
            s.execute(TITLES)  # text(): the server says it is not on the path
        s.rollback()
        assert s.scalars(sa.select(Plan.name)).all() == ["basic"]
    with spt.connection() as conn, pytest.raises(NoTenantSelected, match="sp_projects"):
        conn.execute(sa.select(Project.__table__))


def test_autocommit_sets_the_path_per_checkout_and_the_pool_forgets_it(spt: Tenancy) -> None:
    with spt.connection("b") as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        assert auto.scalars(TITLES).all() == ["b-1"]
        auto.execute(sa.text("INSERT INTO sp_projects (title) VALUES ('b-2')"))
        assert auto.scalars(TITLES).all() == ["b-1", "b-2"]
    for _ in range(3):  # whatever pooled connection comes back: default path, no tenant
        with spt.engine.connect() as conn:
            assert "tenant_b" not in conn.scalar(sa.text("SELECT current_setting('search_path')"))


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_sessions(spt: Tenancy, driver: str) -> None:
    async def main() -> tuple[list[str], list[str]]:
        at = AsyncTenancy(spt, driver=driver)  # type: ignore[arg-type]
        try:
            async with at.session("a") as s:
                orm = list((await s.scalars(sa.select(Project.title))).all())
            async with at.connection("b") as conn:
                text = list((await conn.scalars(TITLES)).all())
            async with at.session() as s:
                with pytest.raises(NoTenantSelected):
                    await s.scalars(sa.select(Project))
            return orm, text
        finally:
            await at.dispose()

    assert asyncio.run(main()) == (["a-1"], ["b-1"])


def test_strict_and_search_path_together(database_url: str) -> None:
    t = seed(Tenancy(database_url, metadata=Base.metadata, routing="search_path", strict=True))
    try:
        with t.session("a") as s:
            assert s.scalars(TITLES).all() == ["a-1"]
            assert s.scalar(sa.text("SELECT current_user")) == t.tenant_role("a")
    finally:
        t.dispose()


class Alone(DeclarativeBase):
    metadata = sa.MetaData()


class Note(Alone):  # database tenants: no foreign key to the main database's tables
    __tablename__ = "sp_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text)


def test_database_tenants(make_tenancy: Callable[..., Tenancy]) -> None:
    t = make_tenancy(routing="search_path", metadata=Alone.metadata,
                     tenant_migrations=None, shared_migrations=None)
    for name in ("a", "b"):
        t.create_tenant(name)
        with t.session(name) as s:
            s.add(Note(body=name))
            s.commit()
    for name in ("a", "b"):
        with t.session(name) as s:
            assert s.scalars(sa.text("SELECT body FROM sp_notes")).all() == [name]


def test_bad_mode_and_recipe(database_url: str, spt: Tenancy) -> None:
    with pytest.raises(ConfigurationError, match="routing must be"):
        Tenancy(database_url, routing="path")
    assert spt.config().options["routing"] == "search_path"


@pytest.mark.skipif(not has_pgbouncer(), reason="pgbouncer not installed")
def test_behind_pgbouncer_transaction_pooling(database_url: str) -> None:
    """Eight sessions over two server connections, interleaved: each transaction finds its
    own tenant's rows (SET LOCAL lasts as long as the transaction PgBouncer pins)."""
    with pgbouncer(database_url, pool_size=2) as url:
        t = Tenancy(url, metadata=Base.metadata, routing="search_path",
                    engine_options={"connect_args": {"prepare_threshold": None}, "pool_size": 8})
        try:
            seed(t)
            errors: list[str] = []

            def worker(seed_: int) -> None:
                rnd = random.Random(seed_)
                for _ in range(60):
                    name = rnd.choice("ab")
                    with t.session(name) as s:
                        got = s.scalars(TITLES).all()
                        if got != [f"{name}-1"]:
                            errors.append(f"{name}: {got}")

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert errors == []
        finally:
            t.dispose()

"""The per-request hot path: tenantry against plain SQLAlchemy on the same table, same server.

Each path opens a session (or connection), selects one row by primary key and closes it. The
plain SQLAlchemy side runs in a separate interpreter that never imports tenantry; rounds of
both sides are interleaved and each side's best round is kept. Prints one ratio per path.

    python bench/hotpath.py [--url URL] [--ops N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import new_database, server, sized
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenantry import Tenancy, TenantBase
from tenantry.aio import AsyncTenancy

ROWS = 100


class Customer(TenantBase):
    __tablename__ = "hot_customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)


class Unqualified(DeclarativeBase):
    metadata = sa.MetaData()


class SpCustomer(Unqualified):  # routing="search_path": the same table, unqualified
    __tablename__ = "hot_customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)


# The plain side: a plain declarative model of the same table, in its own interpreter.
PLAIN = r'''
import asyncio, json, sys, time
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
assert "tenantry" not in sys.modules
url, schema, db_url, db_schema, sp_url, sp_schema = sys.argv[1:7]
class Base(DeclarativeBase):
    pass
class Customer(Base):
    __tablename__ = "hot_customers"
    __table_args__ = {"schema": schema}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
class DbCustomer(Base):
    __tablename__ = "hot_customers"
    __table_args__ = {"schema": db_schema}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
class SpBase(DeclarativeBase):  # another database: the same schema name may recur
    pass
class SpCustomer(SpBase):
    __tablename__ = "hot_customers"
    __table_args__ = {"schema": sp_schema}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
engine = sa.create_engine(url)
db_engine = sa.create_engine(db_url)
sp_engine = sa.create_engine(sp_url)
engines = {"psycopg": create_async_engine(url.replace("+psycopg", "+psycopg_async")),
           "asyncpg": create_async_engine(url.replace("+psycopg", "+asyncpg"))}
stmt = sa.select(Customer).where(Customer.id == 7)
core = sa.select(Customer.__table__.c.name).where(Customer.__table__.c.id == 7)
db_stmt = sa.select(DbCustomer).where(DbCustomer.id == 7)
sp_stmt = sa.select(SpCustomer).where(SpCustomer.id == 7)
def orm(e, stmt=stmt):
    with Session(e) as s:
        s.scalars(stmt).one()
def db_orm(e):
    orm(e, db_stmt)
def sp_orm(e):
    orm(e, sp_stmt)
def conn_(e):
    with e.connect() as c:
        c.execute(core).one()
async def aorm(e):
    async with AsyncSession(e) as s:
        (await s.scalars(stmt)).one()
loop = asyncio.new_event_loop()
def run(path, n):
    if path.startswith("async_"):
        e = engines[path[6:]]
        async def many():
            for _ in range(n):
                await aorm(e)
        start = time.perf_counter(); loop.run_until_complete(many())
        return time.perf_counter() - start
    fn, e = {"core": (conn_, engine), "database_hit": (db_orm, db_engine),
             "search_path_orm": (sp_orm, sp_engine)}.get(path, (orm, engine))
    start = time.perf_counter()
    for _ in range(n):
        fn(e)
    return time.perf_counter() - start
for line in sys.stdin:
    path, n = json.loads(line)
    print(json.dumps(run(path, n)), flush=True)
'''


def tenant_paths(
    t: Tenancy, strict: Tenancy, dbt: Tenancy, sp: Tenancy, at: dict[str, AsyncTenancy],
    loop: asyncio.AbstractEventLoop,
) -> dict[str, Callable[[int], float]]:
    stmt = sa.select(Customer).where(Customer.id == 7)
    core = sa.select(Customer.__table__.c.name).where(Customer.__table__.c.id == 7)
    per_statement = stmt.execution_options(tenant="acme")

    def loop_of(fn: Callable[[], object]) -> Callable[[int], float]:
        def run(n: int) -> float:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            return time.perf_counter() - start
        return run

    def orm(tenancy: Tenancy, query: Any = stmt) -> Callable[[], object]:
        def one() -> object:
            with tenancy.session("acme") as s:
                return s.scalars(query).one()
        return one

    def conn() -> object:
        with t.connection("acme") as c:
            return c.execute(core).one()

    def admin() -> object:
        with t.admin_session() as s:
            return s.scalars(per_statement).one()

    def aorm(tenancy: AsyncTenancy) -> Callable[[int], float]:
        async def many(n: int) -> None:
            for _ in range(n):
                async with tenancy.session("acme") as s:
                    (await s.scalars(stmt)).one()

        def run(n: int) -> float:
            start = time.perf_counter()
            loop.run_until_complete(many(n))
            return time.perf_counter() - start
        return run

    return {
        "orm": loop_of(orm(t)), "core": loop_of(conn), "admin_statement": loop_of(admin),
        "strict_orm": loop_of(orm(strict)), "database_hit": loop_of(orm(dbt)),
        "search_path_orm": loop_of(orm(sp, sa.select(SpCustomer).where(SpCustomer.id == 7))),
        "async_psycopg": aorm(at["psycopg"]), "async_asyncpg": aorm(at["asyncpg"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    parser.add_argument("--ops", type=int, default=sized(2000, 20))
    parser.add_argument("--rounds", type=int, default=sized(7, 2))
    args = parser.parse_args()
    with server(args.url) as url:
        run(url, args.ops, args.rounds)


def seed(tenancy: Tenancy, model: Any = Customer) -> None:
    tenancy.create_tenant("acme")
    with tenancy.session("acme") as s:
        s.add_all(model(id=i, name=f"c{i}") for i in range(ROWS))
        s.commit()


def run(url: str, ops: int, rounds: int) -> None:
    main_url, strict_url, db_main = new_database(url), new_database(url), new_database(url)
    sp_url = new_database(url)
    sp = Tenancy(sp_url, metadata=Unqualified.metadata, routing="search_path")
    seed(sp, SpCustomer)
    t = Tenancy(main_url, metadata=TenantBase.metadata)
    strict = Tenancy(strict_url, metadata=TenantBase.metadata, strict=True)
    dbt = Tenancy(db_main, metadata=TenantBase.metadata, strategy="database", prefix="hotdb_")
    for tenancy in (t, strict, dbt):
        seed(tenancy)
    at = {d: AsyncTenancy(t, driver=d) for d in ("psycopg", "asyncpg")}  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    mine = tenant_paths(t, strict, dbt, sp, at, loop)
    schema = t.locate("acme").schema
    db = dbt.locate("acme")
    db_url = sa.make_url(db_main).set(database=db.database)
    plain_url = t.engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", PLAIN, plain_url, schema,
         db_url.render_as_string(hide_password=False), db.schema,
         sa.make_url(sp_url).render_as_string(hide_password=False), sp.locate("acme").schema],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent,
    )
    assert child.stdin is not None and child.stdout is not None

    def plain(path: str, n: int) -> float:
        child.stdin.write(json.dumps([path, n]) + "\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        return float(json.loads(child.stdout.readline()))  # type: ignore[union-attr]

    best: dict[str, list[float]] = {p: [float("inf"), float("inf")] for p in mine}
    for path in mine:  # warm both sides up
        plain(path, max(1, ops // 10))
        mine[path](max(1, ops // 10))
    for _ in range(rounds):
        for path, fn in mine.items():
            best[path][0] = min(best[path][0], plain(path, ops) / ops)
            best[path][1] = min(best[path][1], fn(ops) / ops)
    child.stdin.close()
    child.wait()
    print(f"{'path':18} {'plain µs':>9} {'tenantry µs':>12} {'ratio':>6}")
    for path, (base, ours) in best.items():
        print(f"{path:18} {base * 1e6:9.1f} {ours * 1e6:12.1f} {ours / base:6.2f}x")
    for a in at.values():
        loop.run_until_complete(a.dispose())
    for tenancy in (sp, dbt, strict, t):
        tenancy.drop_tenant("acme", confirm=True)
        tenancy.dispose()


if __name__ == "__main__":
    main()

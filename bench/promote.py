"""Benchmark: promote/demote a tenant, and how long its writes are blocked.

Creates a hybrid Tenancy, fills one schema tenant with ``--rows`` customers and orders, then
promotes it to its own database and demotes it back, online (logical replication) and offline
(``pg_dump | pg_restore`` under the locks). Prints each operation's total time, the
write-blocked window (from the ``EXCLUSIVE`` locks to the drop of the old copy), and as the
baseline a bare ``pg_dump --schema | pg_restore`` of the same schema into a scratch database,
measured in the same run.

    PYTHONPATH=src python bench/promote.py [--rows 100000]

Uses ``TENANTRY_BENCH_URL`` (a server where it may create databases) or an embedded server.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sqlalchemy as sa
from _common import server, sized
from sqlalchemy.pool import NullPool

from tenantry import Tenancy, make_engine
from tenantry.names import quote
from tenantry.pgtools import find_program, libpq_env
from tenantry.relocation.promotion import Demotion, Promotion

MIGRATIONS = Path(__file__).parent.parent / "tests" / "app" / "migrations"


def timed_window(cls: type, marks: dict[str, float]) -> None:
    """Record when ``cls`` takes its locks and when it finishes."""
    block, finish = cls._block_writes, cls.finish

    def block_writes(self: object) -> None:
        block(self)
        marks["locked"] = time.perf_counter()

    def finished(self: object) -> None:
        finish(self)
        marks["released"] = time.perf_counter()

    cls._block_writes, cls.finish = block_writes, finished  # type: ignore[attr-defined]


def fill(tenancy: Tenancy, rows: int) -> None:
    schema = tenancy.get_tenant("acme").schema
    with tenancy.engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO {quote(schema)}.customers (name, email) "  # noqa: S608
            f"SELECT 'c' || i, i || '@x' FROM generate_series(1, {int(rows)}) i"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {quote(schema)}.orders (customer_id, total) "  # noqa: S608
            f"SELECT id, id * 1.5 FROM {quote(schema)}.customers"
        )


def baseline(url: sa.URL, schema: str) -> float:
    scratch = f"bench_scratch_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(scratch)} TEMPLATE template0")
    try:
        start = time.perf_counter()
        dump = subprocess.Popen(
            [find_program("pg_dump"), "--format=custom", f"--schema={schema}",
             "--no-owner", "--no-privileges"],
            stdout=subprocess.PIPE, env=libpq_env(url),
        )
        subprocess.run(
            [find_program("pg_restore"), "--single-transaction", "--exit-on-error",
             f"--dbname={scratch}", "--no-owner", "--no-privileges"],
            stdin=dump.stdout, check=True, env=libpq_env(url.set(database=scratch)),
        )
        dump.wait()
        return time.perf_counter() - start
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(scratch)} WITH (FORCE)")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=sized(100_000, 100))
    args = parser.parse_args()
    with server() as url:
        bench(url, args.rows)


def bench(url: str, rows: int) -> None:
    admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    main_db = f"bench_hybrid_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(main_db)}")
    main_url = admin.url.set(database=main_db)
    tenancy = Tenancy(main_url, strategy="hybrid", tenant_migrations=MIGRATIONS / "tenant_db",
                      shared_migrations=MIGRATIONS / "shared", template=False)
    try:
        tenancy.migrate_shared()
        tenancy.create_tenant("acme")
        fill(tenancy, rows)
        schema = tenancy.get_tenant("acme").schema
        base = baseline(tenancy.engine.url, schema)
        marks: dict[str, float] = {}
        for cls in (Promotion, Demotion):
            timed_window(cls, marks)
        for online in (True, False):
            for label, op in (
                ("promote", functools.partial(tenancy.promote_tenant, "acme", online=online)),
                ("demote", functools.partial(tenancy.demote_tenant, "acme", online=online)),
            ):
                marks.clear()
                start = time.perf_counter()
                op()
                total = time.perf_counter() - start
                window = marks["released"] - marks["locked"]
                mode = "online" if online else "offline"
                print(f"{label:8} {mode:7} {rows:>8} customers + orders: "
                      f"total {total * 1000:7.0f} ms, writes blocked {window * 1000:7.0f} ms "
                      f"({window / base:.2f}x a bare pg_dump|pg_restore: {base * 1000:.0f} ms)")
    finally:
        for info in tenancy.list_tenants():
            tenancy.drop_tenant(info.name, confirm=True)
        tenancy.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(main_db)} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()

"""Benchmark: tenancy.across() (batched UNION ALL) vs one query per tenant, same run.

    PYTHONPATH=src python bench/across.py [--tenants 1000] [--url URL]

Without --url: ``TENANTRY_BENCH_URL``, else an embedded PostgreSQL in a temporary directory.
Prints the best time of each approach and its speed-up over the fastest one-query-per-tenant
loop (ratio column).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import sqlalchemy as sa
from _common import server, sized
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool

from tenantry import TENANT_SCHEMA, Tenancy, make_engine
from tenantry.names import quote


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=TENANT_SCHEMA)


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text)


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=sized(1000, 3))
    parser.add_argument("--rows", type=int, default=3, help="rows per tenant")
    parser.add_argument("--runs", type=int, default=sized(3, 1))
    parser.add_argument("--url", help="server URL with CREATEDB (default: embedded server)")
    args = parser.parse_args()

    with server(args.url) as url:
        admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        db = f"tenantry_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quote(db)}")
        try:
            run(sa.make_url(url).set(database=db), args)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(db)} WITH (FORCE)")
            admin.dispose()


def run(url: sa.URL, args: argparse.Namespace) -> None:
    names = [f"t{i:05d}" for i in range(args.tenants)]
    with Tenancy(url, metadata=Base.metadata) as tenancy:
        start = time.perf_counter()
        for name in names:
            tenancy.create_tenant(name)
        with tenancy.admin_connection() as conn:
            for name in names:
                conn.execute(
                    sa.insert(Note).execution_options(tenant=name),
                    [{"body": f"{name} note {j}"} for j in range(args.rows)],
                )
            conn.commit()
        print(f"setup: {len(names)} schema tenants in {time.perf_counter() - start:.1f}s")

        query = sa.select(Note.id, Note.body).where(Note.id <= 2)
        expected = len(names) * min(2, args.rows)

        def per_tenant_admin() -> int:
            n = 0
            with tenancy.admin_connection() as conn:
                for name in names:
                    n += len(conn.execute(query.execution_options(tenant=name)).all())
            return n

        def per_tenant_connection() -> int:
            n = 0
            for name in names:
                with tenancy.connection(name) as conn:
                    n += len(conn.execute(query).all())
            return n

        def per_tenant_session() -> int:
            n = 0
            for name in names:
                with tenancy.session(name) as session:
                    n += len(session.execute(query).all())
            return n

        def batched(jobs: int, chunk: int = 100) -> Callable[[], int]:
            return lambda: sum(1 for _ in tenancy.across(query, jobs=jobs, chunk=chunk))

        per_tenant_admin()  # warm caches (registry lookups, compiled statements)
        results = {
            "loop: tenancy.session(t) per tenant": best_of(args.runs, per_tenant_session),
            "loop: tenancy.connection(t) per tenant": best_of(args.runs, per_tenant_connection),
            "loop: one admin connection, tenant per statement": best_of(
                args.runs, per_tenant_admin
            ),
            "across(), chunk=50, jobs=1": best_of(args.runs, batched(1, 50)),
            "across(), chunk=100, jobs=1": best_of(args.runs, batched(1, 100)),
            "across(), chunk=250 (default), jobs=1": best_of(args.runs, batched(1, 250)),
            "across(), chunk=500, jobs=1": best_of(args.runs, batched(1, 500)),
            "across(), chunk=1000, jobs=1": best_of(args.runs, batched(1, 1000)),
            "across(), chunk=100, jobs=2": best_of(args.runs, batched(2, 100)),
            "across(), chunk=250, jobs=2": best_of(args.runs, batched(2, 250)),
        }
        baseline = min(seconds for label, (seconds, _) in results.items()
                       if label.startswith("loop"))
        print(f"{len(names)} tenants, {expected} rows, best of {args.runs}")
        for label, (seconds, rows) in results.items():
            assert rows == expected, (label, rows, expected)
            print(f"  {label:<50} {seconds * 1000:8.1f} ms  {baseline / seconds:5.1f}x")


if __name__ == "__main__":
    main()

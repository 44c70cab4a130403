"""Tenancy.each: the cost per tenant of the call (route, tenant selected), of a named run's
record, and what jobs=N threads gain on I/O-bound work.

Usage: python bench/each.py [--tenants N] [--jobs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sqlalchemy as sa
from _common import new_database, server, sized

from tenantry import TENANT_SCHEMA, Tenancy

ITEMS = sa.Table("items", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                 schema=TENANT_SCHEMA)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=sized(200, 4))
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    n = args.tenants
    with server() as url:
        t = Tenancy(new_database(url), metadata=ITEMS.metadata,
                    engine_options={"pool_size": args.jobs + 2})
        started = time.perf_counter()
        for i in range(n):
            t.create_tenant(f"t{i:04d}")
        print(f"created {n} tenants in {time.perf_counter() - started:.1f} s")

        def nothing(name: str) -> None:
            return None

        def query(name: str) -> int | None:
            with t.session() as session:
                return session.scalar(sa.select(sa.func.count()).select_from(ITEMS))

        def io_then_query(name: str) -> int | None:
            time.sleep(0.01)
            return query(name)

        for label, fn in (("does nothing", nothing), ("one query", query),
                          ("10 ms I/O + query", io_then_query)):
            for jobs in (1, args.jobs):
                for run in (None, f"bench-{label}-{jobs}"):
                    started = time.perf_counter()
                    report = t.each(fn, jobs=jobs, run=run)
                    took = time.perf_counter() - started
                    assert report.ok and len(report.tenants) == n, report.failed[:1]
                    print(f"{label:18s} jobs={jobs:<2d} run={'yes' if run else 'no ':3s} "
                          f"{took * 1000 / n:6.2f} ms/tenant")
        started = time.perf_counter()
        report = t.each(nothing, run=f"bench-does nothing-{args.jobs}")
        took = time.perf_counter() - started
        assert report.counts()["skipped"] == n
        print(f"resuming a finished run of {n} tenants: {took * 1000:.0f} ms")
        t.dispose()


if __name__ == "__main__":
    main()

"""Strict mode overhead: the same tenant workload with and without per-tenant roles.

    PYTHONPATH=src python bench/strict.py [--url URL] [--tenants 20] [--transactions 3000]

Both modes run in the same process against the same server (an embedded one unless --url),
each on its own fresh database, interleaved in rounds; the figure is strict / normal wall time
per transaction (a short read and a short write, each its own transaction), best of rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.app.models import Customer

from tenantry import Tenancy, make_engine
from tenantry.names import quote

MIGRATIONS = Path(__file__).resolve().parents[1] / "tests" / "app" / "migrations"


def setup(admin: sa.Engine, strict: bool, tenants: list[str]) -> tuple[Tenancy, str]:
    name = f"bench_strict_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    t = Tenancy(url, strict=strict, tenant_migrations=MIGRATIONS / "tenant",
                shared_migrations=MIGRATIONS / "shared")
    t.migrate_shared()
    if strict:
        t.grant_shared("public.users")
    for tenant in tenants:
        t.create_tenant(tenant)
    return t, name


def workload(t: Tenancy, tenants: list[str], transactions: int, seed: int) -> float:
    rng = random.Random(seed)
    start = time.perf_counter()
    for i in range(transactions):
        tenant = rng.choice(tenants)
        with t.session(tenant) as s:
            if i % 2:
                s.add(Customer(name=f"{tenant}:{i}"))
                s.commit()
            else:
                s.scalars(sa.select(Customer.name).limit(5)).all()
    return (time.perf_counter() - start) / transactions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="maintenance database URL (default: embedded server)")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--transactions", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = None
    if args.url is None:
        from tenantry import embedded

        server = embedded.start()
        args.url = server.url
    admin = make_engine(args.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    tenants = [f"b{i}" for i in range(args.tenants)]
    made = []
    try:
        normal, db1 = setup(admin, False, tenants)
        strict, db2 = setup(admin, True, tenants)
        made = [(normal, db1), (strict, db2)]
        workload(normal, tenants, 200, 0)  # warm-up: pools, compiled caches
        workload(strict, tenants, 200, 0)
        times: dict[str, list[float]] = {"normal": [], "strict": []}
        for r in range(args.rounds):
            times["normal"].append(workload(normal, tenants, args.transactions, r))
            times["strict"].append(workload(strict, tenants, args.transactions, r))
        best = {k: min(v) for k, v in times.items()}
        print(f"{args.tenants} tenants, {args.transactions} transactions x {args.rounds} rounds")
        for k, v in times.items():
            print(f"{k:>6}: best {best[k] * 1e6:8.1f} us/transaction "
                  f"(median {statistics.median(v) * 1e6:.1f})")
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"strict / normal: {best['strict'] / best['normal']:.2f}x (best), "
              f"{median['strict'] / median['normal']:.2f}x (median)")
    finally:
        for t, name in made:
            if t.strict_roles is not None:
                with t.engine.begin() as conn:
                    for role in [*t.strict_roles.roles(conn), t.strict_roles.group(conn)]:
                        conn.exec_driver_sql(f"DROP OWNED BY {quote(role)} CASCADE")
                        conn.exec_driver_sql(f"DROP ROLE {quote(role)}")
            t.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {quote(name)} WITH (FORCE)")
        admin.dispose()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()

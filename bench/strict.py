"""Strict mode overhead: the same tenant workload with and without per-tenant roles.

    PYTHONPATH=src python bench/strict.py [--url URL] [--tenants 20] [--transactions 3000]

Three modes run in the same process against the same server (an embedded one unless --url),
each on its own fresh database, interleaved in rounds: normal, strict, and strict without the
check-in reset of connections that ran as a tenant role (the reset's cost, measured; strict
mode always resets). Figures are wall time per transaction (a short read and a short write,
each its own session and transaction), best of rounds, and the ratios between them.
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

from tenantry import Tenancy, make_engine, poolreset
from tenantry.names import quote

MIGRATIONS = Path(__file__).resolve().parents[1] / "tests" / "app" / "migrations"


def setup(admin: sa.Engine, mode: str, tenants: list[str]) -> tuple[Tenancy, str]:
    strict = mode != "normal"
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
    if mode == "no-reset":  # only to measure the reset: strict mode never runs without it
        sa.event.remove(t.engine, "reset", poolreset.reset_psycopg)
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
        modes = {}
        for mode in ("normal", "strict", "no-reset"):
            modes[mode], db = setup(admin, mode, tenants)
            made.append((modes[mode], db))
        for t in modes.values():
            workload(t, tenants, 200, 0)  # warm-up: pools, compiled caches
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for r in range(args.rounds):
            for mode, t in modes.items():
                times[mode].append(workload(t, tenants, args.transactions, r))
        best = {k: min(v) for k, v in times.items()}
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.tenants} tenants, {args.transactions} transactions x {args.rounds} rounds")
        for k in times:
            print(f"{k:>8}: best {best[k] * 1e6:8.1f} us/transaction "
                  f"(median {median[k] * 1e6:.1f})")
        for a, b in (("strict", "normal"), ("no-reset", "normal"), ("strict", "no-reset")):
            print(f"{a} / {b}: {best[a] / best[b]:.2f}x (best), "
                  f"{median[a] / median[b]:.2f}x (median)")
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

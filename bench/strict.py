"""Strict mode overhead: the same tenant workload without roles, with per-tenant roles
(``strict=True``), and with tenants logging in as their roles (``strict="login"``).

    PYTHONPATH=src python bench/strict.py [--url URL] [--tenants 20] [--transactions 3000]
        [--login-connections 100] [--cpu]

Four modes run in the same process against the same server (``--url``, else
``TENANTRY_BENCH_URL``, else an embedded one), each on its own fresh database, interleaved in
rounds (each round starts with another mode):
normal, strict, strict without the check-in reset of connections that ran as a tenant role
(the reset's cost, measured; strict mode always resets), and login. Figures are wall time (or,
with ``--cpu``, this process's CPU time) per transaction (a short read and a short write, each
its own session and transaction), best and median of rounds, and the ratios between them. Unless
``--url``, login roles must give a SCRAM password (as in production) if pg_hba.conf is writable;
``--login-connections`` below the number of tenants makes login mode reconnect (budget churn).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from _common import server, sized
from tests.app.models import Customer
from tests.support.scram import PREFIX_START, require_scram

from tenantry import Tenancy, make_engine
from tenantry.hooks import poolreset
from tenantry.names import quote

MIGRATIONS = Path(__file__).resolve().parents[1] / "tests" / "app" / "migrations"


def setup(
    admin: sa.Engine, mode: str, tenants: list[str], **options: object
) -> tuple[Tenancy, str]:
    strict = {"normal": False, "login": "login"}.get(mode, True)
    name = f"bench_strict_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    if strict == "login":
        options.update(login_secret=uuid.uuid4().hex, prefix=f"{PREFIX_START}_")
    t = Tenancy(url, strict=strict, tenant_migrations=MIGRATIONS / "tenant",
                shared_migrations=MIGRATIONS / "shared", **options)  # type: ignore[arg-type]
    t.migrate_shared()
    if strict:
        t.grant_shared("public.users")
    for tenant in tenants:
        t.create_tenant(tenant)
    if mode == "no-reset":  # only to measure the reset: strict mode never runs without it
        # tenantry adds its reset hook when a checkout first needs it; this listener runs
        # first and forgets the checkout's state, so the reset has nothing to do.
        sa.event.listen(t.engine, "reset", _forget_session_state, insert=True)
    return t, name


def _forget_session_state(dbapi_connection: Any, record: Any, state: Any) -> None:
    record.info.pop(poolreset.SESSION_STATE, None)


def workload(
    t: Tenancy, tenants: list[str], transactions: int, seed: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    rng = random.Random(seed)
    start = clock()
    for i in range(transactions):
        tenant = rng.choice(tenants)
        with t.session(tenant) as s:
            if i % 2:
                s.add(Customer(name=f"{tenant}:{i}"))
                s.commit()
            else:
                s.scalars(sa.select(Customer.name).limit(5)).all()
    return (clock() - start) / transactions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="maintenance database URL (default: embedded server)")
    parser.add_argument("--tenants", type=int, default=sized(20, 2))
    parser.add_argument("--transactions", type=int, default=sized(3000, 10))
    parser.add_argument("--rounds", type=int, default=sized(3, 1))
    parser.add_argument("--login-connections", type=int, default=100)
    parser.add_argument("--cpu", action="store_true",
                        help="time this process's CPU (client side) instead of wall time")
    args = parser.parse_args()
    with server(args.url) as url:
        if args.url is None:  # embedded or TENANTRY_BENCH_URL: login roles need passwords
            require_scram(url)
        bench(url, args)


def bench(url: str, args: argparse.Namespace) -> None:
    admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    tenants = [f"b{i}" for i in range(args.tenants)]
    made = []
    try:
        modes = ("normal", "strict", "no-reset", "login")
        tenancies = {}
        for mode in modes:
            options = {"max_connections": args.login_connections} if mode == "login" else {}
            t, db = setup(admin, mode, tenants, **options)
            made.append((t, db))
            tenancies[mode] = t
            workload(t, tenants, sized(200, 4), 0)  # warm-up: pools, compiled caches
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        labels = list(tenancies)
        clock = time.process_time if args.cpu else time.perf_counter
        for r in range(args.rounds):  # each round starts with another mode: no mode always first
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                times[label].append(workload(tenancies[label], tenants, args.transactions, r,
                                             clock))
        best = {k: min(v) for k, v in times.items()}
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.tenants} tenants, {args.transactions} transactions x {args.rounds} rounds, "
              f"login connections <= {args.login_connections}, "
              f"{'client CPU' if args.cpu else 'wall'} time")
        for k in times:
            print(f"{k:>8}: best {best[k] * 1e6:8.1f} us/transaction "
                  f"(median {median[k] * 1e6:.1f})")
        pairs = (("strict", "normal"), ("no-reset", "normal"), ("strict", "no-reset"),
                 ("login", "normal"), ("login", "strict"))
        for a, b in pairs:
            # per round: the modes of one round ran next to each other, under the same load
            rounds = statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))
            print(f"{a} / {b}: {best[a] / best[b]:.2f}x (best), "
                  f"{median[a] / median[b]:.2f}x (median), {rounds:.2f}x (median of rounds)")
    finally:
        for t, name in made:
            t.dispose()  # login connections closed before their roles are dropped
            if t.strict_roles is not None:
                with t.engine.begin() as conn:
                    for role in [*t.strict_roles.roles(conn), t.strict_roles.group(conn)]:
                        conn.exec_driver_sql(f"DROP OWNED BY {quote(role)} CASCADE")
                        conn.exec_driver_sql(f"DROP ROLE {quote(role)}")
            t.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {quote(name)} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()

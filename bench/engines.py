"""Benchmark: the tenant engine registry against a fresh engine per request.

200 tenant databases, 8 threads picking tenants at random, ``max_engines=20``. For each access
pattern (uniform, and Zipf-skewed as real traffic tends to be) it prints p50/p99 latency of one
simple query (connection included), the registry's hit rate and the peak number of connections
to tenant databases (sampled from ``pg_stat_activity``), then the same for the naive approach
(``create_engine`` + connect + query + ``dispose`` per request) measured in the same run, and
"driver connect": the driver alone (connect + query + close), the floor of a request that must
open a connection.

The registry is measured twice with the same ``Tenancy``: "cold" is its first pass (a new
process: every tenant's first request also reads the registry row and builds an engine whose
first connection runs SQLAlchemy's dialect initialisation), "warm" a second pass (routes cached,
evicted engines parked), as in a long-running service. Both are printed, with their ratios.
A third pass, "frozen", repeats the warm one after ``gc.collect(); gc.freeze()`` (the advice of
docs/database-per-tenant.md: freeze the warmed-up heap so that the cyclic garbage collector's
full collections no longer walk it). Each row also shows the full (generation 2) collections
during that pass: how many, and the longest pause.

    PYTHONPATH=src python bench/engines.py [--tenants 200] [--threads 8] [--requests 150]

Uses ``TENANTRY_BENCH_URL`` (a server where it may create databases) or an embedded server.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sqlalchemy as sa
from _common import server, sized
from sqlalchemy.pool import NullPool

from tenantry import DatabaseStrategy, Tenancy, make_engine
from tenantry.names import quote

MIGRATION = '''
import sqlalchemy as sa
from alembic import op

revision = "b001"
down_revision = None


def upgrade() -> None:
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text))
    op.execute("INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 10) g")
'''
ITEMS = sa.Table("items", sa.MetaData(), sa.Column("id", sa.Integer), schema="__tenant__")
QUERY = sa.select(sa.func.count()).select_from(ITEMS)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class PeakSampler:
    """Samples the number of backends on tenant databases until stopped."""

    def __init__(self, url: str, like: str) -> None:
        self.engine = make_engine(url, poolclass=NullPool)
        self.like, self.peak = like, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with self.engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE :p")
            while not self._stop.is_set():
                self.peak = max(self.peak, conn.execute(query, {"p": self.like}).scalar_one())
                conn.rollback()
                time.sleep(0.002)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()


class GcPauses:
    """Times the cyclic garbage collector's full (generation 2) collections until stopped."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._start) * 1000)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def __str__(self) -> str:
        return f"gc2 {len(self.pauses)} x max {max(self.pauses, default=0):.0f} ms"


def run(
    request: Callable[[str], None], names: list[str], pick: Callable[[random.Random], int],
    threads: int, per_thread: int, seed: int = 0,
) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng, mine = random.Random(seed), []
        for _ in range(per_thread):
            name = names[pick(rng)]
            start = time.perf_counter()
            request(name)
            mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(seed + i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=sized(200, 3))
    parser.add_argument("--threads", type=int, default=sized(8, 2))
    parser.add_argument("--requests", type=int, default=sized(150, 3), help="per thread and run")
    parser.add_argument("--max-engines", type=int, default=sized(20, 2))
    parser.add_argument("--max-parked", type=int, default=None,
                        help="evicted engines kept for revival (default: the library's)")
    args = parser.parse_args()
    with server() as url:
        bench(url, args)


def bench(url: str, args: argparse.Namespace) -> None:
    admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    main_db = f"bench_{uuid.uuid4().hex[:8]}"
    prefix = f"b{uuid.uuid4().hex[:5]}_"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(main_db)}")
    main_url = sa.make_url(url).set(database=main_db)
    migrations = Path(tempfile.mkdtemp()) / "tenant"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "versions" / "b001_items.py").write_text(MIGRATION)
    tenancy = Tenancy(main_url, strategy="database", prefix=prefix, tenant_migrations=migrations,
                      max_engines=args.max_engines, max_connections=100, pool_size=2)
    names = [f"t{i:03d}" for i in range(args.tenants)]
    try:
        start = time.perf_counter()
        for name in names:
            tenancy.create_tenant(name)
        created = time.perf_counter() - start
        print(f"created {len(names)} tenant databases in {created:.1f}s "
              f"({created / len(names) * 1000:.0f} ms each, from the template database)")
        tenancy.strategy.dispose()

        def pooled(name: str) -> None:
            with tenancy.connection(name) as conn:
                conn.execute(QUERY).scalar_one()

        def naive(name: str) -> None:
            engine = sa.create_engine(main_url.set(database=prefix + name))
            try:
                with engine.connect() as conn:
                    sql = f"SELECT count(*) FROM {quote(prefix + name)}.items"  # noqa: S608
                    conn.exec_driver_sql(sql).scalar_one()
            finally:
                engine.dispose()

        dialect = sa.create_engine(main_url).dialect
        connect_args = {name: dialect.create_connect_args(main_url.set(database=prefix + name))[1]
                        for name in names}

        def raw(name: str) -> None:  # the floor of any miss: a driver connection, no SQLAlchemy
            with dialect.loaded_dbapi.connect(**connect_args[name]) as conn:
                conn.execute(f"SELECT count(*) FROM {quote(prefix + name)}.items").fetchone()  # noqa: S608

        n = len(names)
        weights = [1 / (k + 1) ** 1.1 for k in range(n)]
        cumulative = [sum(weights[: k + 1]) for k in range(n)]

        def zipf(rng: random.Random) -> int:
            x = rng.random() * cumulative[-1]
            lo, hi = 0, n - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if cumulative[mid] < x:
                    lo = mid + 1
                else:
                    hi = mid
            return lo

        patterns: dict[str, Callable[[random.Random], int]] = {
            "uniform": lambda rng: rng.randrange(n),
            "zipf(1.1)": zipf,
        }
        like = f"{prefix}%"
        parked = "" if args.max_parked is None else f", max_parked={args.max_parked}"
        print(f"{args.threads} threads x {args.requests} requests, max_engines="
              f"{args.max_engines}{parked}, pool_size=2, max_connections=100\n")
        header = f"{'pattern':10} {'approach':15} {'p50 ms':>8} {'p99 ms':>8} "
        print(header + f"{'hit rate':>9} {'peak conns':>11}")
        for label, pick in patterns.items():
            tenancy.strategy.dispose()
            fresh = Tenancy(main_url, strategy="database", prefix=prefix,
                            tenant_migrations=migrations, max_engines=args.max_engines,
                            max_connections=100, pool_size=2)
            if args.max_parked is not None:
                fresh.strategy.engines.max_parked = args.max_parked  # type: ignore[attr-defined]

            def pooled_fresh(name: str, t: Tenancy = fresh) -> None:
                with t.connection(name) as conn:
                    conn.execute(QUERY).scalar_one()

            def reused(t: Tenancy = fresh) -> int:
                dialects = getattr(t.strategy, "dialects", None)  # None: an older tenantry
                return 0 if dialects is None else int(dialects.reused)

            rows = []
            for phase, seed in (("cold", 0), ("warm", 1000), ("frozen", 2000)):
                if phase == "frozen":
                    gc.collect()
                    print(f"{label:10} (frozen: {len(gc.get_objects())} gc-tracked objects)")
                    gc.freeze()
                before, skipped = fresh.engine_metrics(), reused()
                with PeakSampler(url, like) as sampler, GcPauses() as pauses:
                    lat = run(pooled_fresh, names, pick, args.threads, args.requests, seed)
                if phase == "frozen":
                    gc.unfreeze()
                m = fresh.engine_metrics()
                hits, misses = m.hits - before.hits, m.misses - before.misses
                p50, p99 = statistics.median(lat), percentile(lat, 0.99)
                rows.append((phase, p50, p99))
                print(f"{label:10} {'registry ' + phase:15} {p50:8.2f} {p99:8.2f} "
                      f"{hits / (hits + misses):9.1%} {sampler.peak:11d}   "
                      f"(registry peak {m.peak_connections}, "
                      f"evictions {m.evictions - before.evictions}, "
                      f"revived {m.revived - before.revived}, "
                      f"reclaimed {m.reclaimed - before.reclaimed}, "
                      f"budget waits {m.budget_waits - before.budget_waits}, {pauses}, "
                      f"dialect initialisations skipped {reused() - skipped})")
            fresh.dispose()
            with PeakSampler(url, like) as sampler, GcPauses() as pauses:
                base = run(naive, names, pick, args.threads, args.requests)
            b50, b99 = statistics.median(base), percentile(base, 0.99)
            print(f"{label:10} {'naive':15} {b50:8.2f} {b99:8.2f} {'-':>9} {sampler.peak:11d}   "
                  f"({pauses})")
            with GcPauses() as pauses:
                floor = run(raw, names, pick, args.threads, args.requests)
            f50, f99 = statistics.median(floor), percentile(floor, 0.99)
            print(f"{label:10} {'driver connect':15} {f50:8.2f} {f99:8.2f} {'-':>9} {'-':>11}   "
                  f"({pauses}; psycopg.connect + the query + close, per request)")
            for phase, p50, p99 in rows:
                print(f"{label:10} {'speed-up ' + phase:15} {b50 / p50:7.1f}x {b99 / p99:7.1f}x")
            print()
        del pooled
    finally:
        for name in names:
            if tenancy.tenant_exists(name):
                tenancy.drop_tenant(name, confirm=True)
        strategy = tenancy.strategy
        if isinstance(strategy, DatabaseStrategy):
            strategy.drop_templates()
        tenancy.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(main_db)} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()

"""One new revision over a fleet of schema tenants: jobs=1 vs jobs=2 vs the raw DDL by hand.

Also records the peak RSS of the migrating process for a quarter and for the rest of the
fleet (it must not grow with the tenant count). Usage: python bench/fleet_migrate.py [--tenants N]
or, for jobs=1 against jobs=2 at small sizes, [--sizes 50,100,200,400,800 --repeats 3].
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import new_database, server, sized, timed

from tenantry import Tenancy
from tenantry.names import quote

BASE = '''from alembic import op
revision = "m000"
down_revision = None
def upgrade():
    op.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)")
    op.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers)")
    op.execute("CREATE TABLE settings (key text PRIMARY KEY, value text)")
    op.execute("INSERT INTO settings VALUES ('currency', 'EUR')")
def downgrade():
    pass
'''
STEP = '''from alembic import op
revision = "{rev}"
down_revision = "{down}"
def upgrade():
    op.execute("ALTER TABLE customers ADD COLUMN {column} text")
def downgrade():
    op.execute("ALTER TABLE customers DROP COLUMN {column}")
'''
CHILD = '''
import json, resource, sys, time
from tenantry import Tenancy
from tenantry.migrations import executors
chosen = []  # what jobs="auto" decided
decide = executors.auto_processes
def counted(seconds, cpus=None):
    chosen.append(decide(seconds, cpus))
    return chosen[-1]
executors.auto_processes = counted
t = Tenancy(sys.argv[1], tenant_migrations=sys.argv[2])
patterns = json.loads(sys.argv[4])
jobs = sys.argv[3] if sys.argv[3] == "auto" else int(sys.argv[3])
target = sys.argv[6] if len(sys.argv) > 6 else "heads"
start = time.perf_counter()
report = t.migrate_all(target, tenants=patterns, jobs=jobs, compiled=sys.argv[5] == "1")
elapsed = time.perf_counter() - start
moved = len(report.by_result("upgraded"))
print(json.dumps({"elapsed": elapsed, "moved": moved, "ok": report.ok, "chosen": chosen,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def migrate(
    url: str, stream: Path, jobs: int | str, patterns: list[str] | None, compiled: bool = False,
    target: str = "heads",
) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(stream), str(jobs), json.dumps(patterns),
         str(int(compiled)), target],
        check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    assert result["ok"], result
    return result


def add(stream: Path, rev: str, down: str, column: str) -> None:
    (stream / "versions" / f"{rev}.py").write_text(STEP.format(rev=rev, down=down, column=column))


def small_fleets(sizes: list[int], repeats: int) -> None:
    """jobs=1 against jobs=2 (and jobs="auto") at small fleet sizes: where a helper pays off.

    One fleet per size (tenants ``s<size>_<i>``); each run moves one fleet one revision on
    (``--to`` the next revision of a chain), jobs=1 and jobs=2 interleaved ``repeats`` times.
    Times are inside the migrating subprocess: helper start-up and shut-down included.
    """
    runs = 2 * repeats + 1
    with server() as url, tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "tenant"
        (stream / "versions").mkdir(parents=True)
        (stream / "versions" / "m000.py").write_text(BASE)
        db = new_database(url)
        t = Tenancy(db, tenant_migrations=stream)
        made = timed(lambda: [t.create_tenant(f"s{size}_{i:05d}")
                              for size in sizes for i in range(size)])
        print(f"{sum(sizes)} tenants provisioned in {made:.1f}s")
        t.dispose()
        for k in range(1, runs + 1):  # after provisioning: every tenant starts at m000
            add(stream, f"m{k:03d}", f"m{k - 1:03d}", f"c{k}")
        print("tenants | jobs=1 s (each run) | jobs=2 s (each run) | jobs=2 / jobs=1 (median) "
              "| auto s (processes)")
        for size in sizes:
            times: dict[str, list[float]] = {"1": [], "2": []}
            k = 0
            for _ in range(repeats):
                for jobs in ("1", "2"):
                    k += 1
                    run = migrate(db, stream, jobs, [f"s{size}_*"], target=f"m{k:03d}")
                    assert run["moved"] == size, run
                    times[jobs].append(run["elapsed"])
            auto = migrate(db, stream, "auto", [f"s{size}_*"], target=f"m{runs:03d}")
            ratio = statistics.median(times["2"]) / statistics.median(times["1"])
            print(f"{size} | {' '.join(f'{x:.2f}' for x in times['1'])} | "
                  f"{' '.join(f'{x:.2f}' for x in times['2'])} | {ratio:.2f} | "
                  f"{auto['elapsed']:.2f} ({auto['chosen'] or [1]})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=sized(2000, 4))
    parser.add_argument("--sizes", help="comma-separated small fleet sizes: jobs=1 vs jobs=2")
    parser.add_argument("--repeats", type=int, default=sized(3, 1))
    args = parser.parse_args()
    if args.sizes:
        small_fleets([int(x) for x in args.sizes.split(",")], args.repeats)
        return
    n = args.tenants
    quarter = n // 4
    with server() as url, tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "tenant"
        (stream / "versions").mkdir(parents=True)
        (stream / "versions" / "m000.py").write_text(BASE)
        db = new_database(url)
        t = Tenancy(db, tenant_migrations=stream)
        names = [f"q{i:05d}" for i in range(quarter)] + [f"t{i:05d}" for i in range(n - quarter)]
        made = timed(lambda: [t.create_tenant(name) for name in names])
        print(f"{n} tenants provisioned from the template in {made:.1f}s")
        schemas = [t.locate(name).schema for name in names[:quarter]]
        t.dispose()

        raw = Tenancy(db)

        def by_hand(column: str) -> float:  # the same DDL, one transaction per tenant
            start = time.perf_counter()
            for schema in schemas:
                with raw.engine.begin() as conn:
                    conn.exec_driver_sql(f"SET LOCAL search_path TO {quote(schema)}")
                    conn.exec_driver_sql(f"ALTER TABLE customers ADD COLUMN {column} text")
            return (time.perf_counter() - start) / len(schemas)

        # The raw DDL is measured between the runs too: each run's ratio uses the mean of the
        # measurements just before and just after it (the load of a shared machine varies).
        raws = [by_hand("raw0")]
        add(stream, "m001", "m000", "a")
        small = migrate(db, stream, 1, ["q*"])
        rest = migrate(db, stream, 1, None)
        raws.append(by_hand("raw1"))
        add(stream, "m002", "m001", "b")
        both = migrate(db, stream, 2, None)
        raws.append(by_hand("raw2"))
        add(stream, "m003", "m002", "c")
        compiled1 = migrate(db, stream, 1, None, compiled=True)
        raws.append(by_hand("raw3"))
        add(stream, "m004", "m003", "d")
        compiled2 = migrate(db, stream, 2, None, compiled=True)
        raws.append(by_hand("raw4"))
        raw.dispose()
        per, ratio = {}, {}
        runs = (("jobs=1", rest), ("jobs=2", both), ("jobs=1 compiled", compiled1),
                ("jobs=2 compiled", compiled2))
        for k, (label, run) in enumerate(runs):
            per[label] = run["elapsed"] / run["moved"]
            around = (raws[k] + raws[k + 1]) / 2
            ratio[label] = per[label] / around
            print(f"{label:16s}: {run['moved']} tenants in {run['elapsed']:.1f}s = "
                  f"{per[label] * 1000:.2f} ms/tenant; raw DDL around it {around * 1000:.2f} ms")
        print("raw DDL by hand (ms/tenant over " + str(len(schemas)) + " tenants, in order): "
              + ", ".join(f"{r * 1000:.2f}" for r in raws))
        print()
        for label in per:
            print(f"{label} per tenant / raw DDL: {ratio[label]:.2f}  (target <= 3)")
        print(f"jobs=2 / jobs=1 time per tenant: {per['jobs=2'] / per['jobs=1']:.2f}, compiled: "
              f"{per['jobs=2 compiled'] / per['jobs=1 compiled']:.2f}  (target < 1)")
        print("peak RSS of the migrating (main) process:")
        for label, run in (("jobs=1", small), ("jobs=1", rest), ("jobs=2", both),
                           ("jobs=1 compiled", compiled1), ("jobs=2 compiled", compiled2)):
            print(f"  {label:16s} {run['moved']:6d} tenants: {run['maxrss_kb'] / 1024:.0f} MB")


if __name__ == "__main__":
    main()

"""status() and the no-op migrate over a big registry: one query, well under a second.

Usage: python bench/status.py [--tenants N]   (registry rows are inserted directly)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sqlalchemy as sa
from _common import new_database, server, sized

from tenantry import Tenancy

STREAM = '''from alembic import op
revision = "s001"
down_revision = None
def upgrade():
    op.execute("CREATE TABLE things (id int)")
def downgrade():
    pass
'''


def best(fn, runs: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=sized(10_000, 20))
    n = parser.parse_args().tenants
    with server() as url, tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "tenant"
        (stream / "versions").mkdir(parents=True)
        (stream / "versions" / "s001.py").write_text(STREAM)
        t = Tenancy(new_database(url), tenant_migrations=stream)
        t.setup()
        with t.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO public.tenantry_tenants (name, strategy, schema, state, revision) "
                "SELECT 't' || i, 'schema', 'tenant_t' || i, 'ready', 's001' "
                "FROM generate_series(1, %(n)s) i", {"n": n},
            )
        statements: list[str] = []
        sa.event.listen(t.engine, "before_cursor_execute",
                        lambda *a: statements.append(a[2]))
        t.status()
        status_queries = len(statements)
        status_time = best(t.status)
        drift_time = best(t.drift)
        t.migrate_all()
        statements.clear()
        report = t.migrate_all()
        noop_registry = sum("tenantry_tenants" in s for s in statements)
        noop_time = best(t.migrate_all)
        assert len(report.by_result("current")) == n
        print(f"status() over {n} tenants: {status_queries} query, {status_time * 1000:.0f} ms")
        print(f"drift() over {n} tenants: {drift_time * 1000:.0f} ms")
        print(f"migrate_all() with nothing to do over {n} tenants: {noop_registry} registry "
              f"query, {noop_time * 1000:.0f} ms (shared stream check included)")
        t.dispose()


if __name__ == "__main__":
    main()

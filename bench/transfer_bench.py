"""Export/import of one tenant: throughput against pg_dump, and peak memory against size.

    PYTHONPATH=src python bench/transfer_bench.py [ROWS]

Uses ``TENANTRY_BENCH_URL`` (a server where it may create databases) or an embedded server.
Prints ratios against baselines measured in the same run: export time / ``pg_dump -Fc`` time of
the same schema, and peak Python memory of a 10x larger tenant / that of the smaller one (about
1.0 means streamed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sqlalchemy as sa
from _common import new_database, server, sized
from sqlalchemy.dialects.postgresql import JSONB

from tenantry import TENANT_SCHEMA, Tenancy
from tenantry.pgtools import find_program, libpq_env

METADATA = sa.MetaData(schema=TENANT_SCHEMA)
sa.Table(
    "items", METADATA,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("price", sa.Numeric(12, 2)),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("data", JSONB),
)
FILL = """
INSERT INTO {s}.items (name, price, at, data)
SELECT 'item ' || i, i / 100.0, now() - i * interval '1 minute', jsonb_build_object('i', i)
FROM generate_series(1, {n}) AS i
"""


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak(fn):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else sized(200_000, 100)
    with server() as url:
        bench(new_database(url), rows)


def bench(url: str, rows: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    try:
        with Tenancy(url, metadata=METADATA) as tenancy:
            tenancy.migrate_shared()
            for name, n in (("small", rows // 10), ("large", rows)):
                tenancy.drop_tenant(name, confirm=True)
                tenancy.drop_tenant(f"{name}_copy", confirm=True)
                tenancy.create_tenant(name)
                schema = tenancy.get_tenant(name).schema
                with tenancy.engine.begin() as conn:
                    conn.exec_driver_sql(FILL.format(s=schema, n=n))
            schema = tenancy.get_tenant("large").schema
            binary = find_program("pg_dump", tenancy.engine.dialect.server_version_info[0])  # type: ignore[index]
            env = libpq_env(tenancy.engine.url)
            dump = timed(lambda: subprocess.run(
                [binary, "-Fc", f"--schema={schema}", f"--file={work / 'baseline.dump'}"],
                env=env, check=True))
            export = timed(lambda: tenancy.export_tenant("large", work / "large"))
            import_ = timed(lambda: tenancy.import_tenant(work / "large", "large_copy"))
            small_peak = peak(lambda: tenancy.export_tenant("small", work / "small"))
            large_peak = peak(lambda: tenancy.export_tenant("large", work / "large2"))
            size = (work / "large" / "tables" / "items.jsonl").stat().st_size
            print(f"rows: {rows}, JSON Lines: {size / 1e6:.1f} MB")
            print(f"pg_dump -Fc (baseline): {dump:.2f}s")
            print(f"export: {export:.2f}s ({rows / export:,.0f} rows/s), "
                  f"{export / dump:.2f}x pg_dump")
            print(f"import: {import_:.2f}s ({rows / import_:,.0f} rows/s), "
                  f"{import_ / dump:.2f}x pg_dump")
            print(f"peak Python memory: {rows // 10} rows {small_peak / 1e6:.2f} MB, {rows} rows "
                  f"{large_peak / 1e6:.2f} MB: ratio {large_peak / small_peak:.2f} for 10x rows")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Provisioning schema tenants: template vs replaying the migration chain (30 and 300 revisions).

Baseline: the same DDL replayed in one round trip by hand (CREATE SCHEMA + the script, one
transaction, no registry). All methods run interleaved in one loop, so the load of a shared
machine hits them alike. Usage: python bench/provisioning.py [--tenants N] [--replay M]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import new_database, server, write_chain

from tenantry import Tenancy
from tenantry.names import quote
from tenantry.template import execute_script


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000, help="tenants per template method")
    parser.add_argument("--replay", type=int, default=100, help="tenants per replay method")
    args = parser.parse_args()
    spent: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    with server() as url, tempfile.TemporaryDirectory() as tmp:
        streams = {c: write_chain(Path(tmp) / f"chain{c}", c) for c in (30, 300)}
        tenancies = {
            "template_30": Tenancy(new_database(url), tenant_migrations=streams[30],
                                   provisioning="template"),
            "template_300": Tenancy(new_database(url), tenant_migrations=streams[300],
                                    provisioning="template"),
            "replay_30": Tenancy(new_database(url), tenant_migrations=streams[30],
                                 provisioning="migrations"),
            "replay_300": Tenancy(new_database(url), tenant_migrations=streams[300],
                                  provisioning="migrations"),
        }
        for key in ("template_30", "template_300"):
            start = time.perf_counter()
            tenancies[key].create_tenant("first")
            print(f"{key}: template built in {(time.perf_counter() - start) * 1000:.0f} ms")
        raw_db = Tenancy(new_database(url))
        sql = tenancies["template_30"]._templates.sql  # type: ignore[union-attr]

        def raw(i: int) -> None:
            schema = f"raw_{i}"
            with raw_db.engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {quote(schema)}")
                execute_script(conn, sql(schema))

        methods: dict[str, Callable[[int], object]] = {
            "raw_ddl": raw,
            **{k: (lambda i, t=t: t.create_tenant(f"x{i}")) for k, t in tenancies.items()},
        }
        for i in range(args.tenants):
            for key, make in methods.items():
                if key.startswith("replay") and i >= args.replay:
                    continue
                start = time.perf_counter()
                make(i)
                spent[key] += time.perf_counter() - start
                count[key] += 1
        for t in [*tenancies.values(), raw_db]:
            t.dispose()
    per = {k: spent[k] / count[k] for k in spent}
    for key in methods:
        print(f"{key:13s}: {per[key] * 1000:7.1f} ms/tenant over {count[key]} tenants")
    print()
    print(f"template 300 / template 30   : {per['template_300'] / per['template_30']:.2f}"
          "  (target ~1: independent of chain length)")
    print(f"template 30 / raw DDL replay : {per['template_30'] / per['raw_ddl']:.2f}"
          "  (target <= 1.5)")
    print(f"replay 30 / template 30      : {per['replay_30'] / per['template_30']:.2f}"
          "  (target >= 3)")
    print(f"replay 300 / template 300    : {per['replay_300'] / per['template_300']:.2f}")


if __name__ == "__main__":
    main()

"""Provisioning schema tenants: template vs replaying the migration chain (30 and 300 revisions).

Baseline: the same DDL replayed in one round trip by hand (CREATE SCHEMA + the script, one
transaction, no registry). Two replays of the chain are measured:

* ``replay_N``: tenantry's own replay (``provisioning="migrations"``: the script directory is
  loaded once per process, Alembic runs on the create transaction);
* ``alembic_N``: what users of the peers do, ``alembic upgrade head`` per tenant
  (``alembic.command.upgrade`` with an ``env.py`` that puts the tenant schema on the
  ``search_path``, on a connection shared through ``config.attributes``; scripts loaded per call).

All methods run interleaved in one loop, so the load of a shared machine hits them alike; the
replays run on the first ``--replay`` tenants (``--replay-300`` for the 300-revision chain).
Peak RSS is printed after each quarter of the loop: it must not grow with the tenant count.
Usage: python bench/provisioning.py [--tenants N] [--replay M] [--replay-300 K] [--plain]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import new_database, server, sized, write_chain
from alembic import command
from alembic.config import Config

from tenantry import Tenancy
from tenantry.names import quote
from tenantry.provisioning.sqlscript import execute_script

# The env.py of the "alembic upgrade head per tenant" baseline (Alembic's documented recipe for
# sharing a connection, plus the tenant schema on the search path and as version table schema).
ENV_PY = '''from alembic import context

config = context.config
connection = config.attributes["connection"]
schema = config.attributes["schema"]
connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
context.configure(connection=connection, version_table_schema=schema, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
'''


#: The two chain lengths (revisions) compared; shorter in smoke mode, under the same labels.
CHAINS = {30: sized(30, 3), 300: sized(300, 6)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=sized(1000, 2),
                        help="tenants per template method")
    parser.add_argument("--replay", type=int, default=sized(1000, 2),
                        help="tenants per 30-revision replay method")
    parser.add_argument("--replay-300", type=int, default=sized(200, 1),
                        help="tenants per 300-revision replay method")
    parser.add_argument("--plain", action="store_true",
                        help="plain tables (primary key, defaults) instead of tables with a "
                        "foreign key, an index and a seed row each")
    args = parser.parse_args()
    limits = {"30": args.replay, "300": args.replay_300}
    spent: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    rss: list[tuple[int, float]] = []
    with server() as url, tempfile.TemporaryDirectory() as tmp:
        streams = {c: write_chain(Path(tmp) / f"chain{c}", CHAINS[c], plain=args.plain)
                   for c in CHAINS}
        for stream in streams.values():
            (stream / "env.py").write_text(ENV_PY)
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
        alembic_dbs = {c: Tenancy(new_database(url)) for c in (30, 300)}
        sql = tenancies["template_30"].core.templates.sql  # type: ignore[union-attr]

        def raw(i: int) -> None:
            schema = f"raw_{i}"
            with raw_db.engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {quote(schema)}")
                execute_script(conn, sql(schema))

        def alembic_upgrade(chain: int) -> Callable[[int], None]:
            def make(i: int) -> None:
                schema = f"tenant_a{i}"
                cfg = Config()  # a fresh configuration per call, as the alembic command has
                cfg.set_main_option("script_location", str(streams[chain]))
                with alembic_dbs[chain].engine.begin() as conn:
                    conn.exec_driver_sql(f"CREATE SCHEMA {quote(schema)}")
                    cfg.attributes.update(connection=conn, schema=schema)
                    command.upgrade(cfg, "head")
            return make

        methods: dict[str, Callable[[int], object]] = {
            "raw_ddl": raw,
            **{k: (lambda i, t=t: t.create_tenant(f"x{i}")) for k, t in tenancies.items()},
            "alembic_30": alembic_upgrade(30),
            "alembic_300": alembic_upgrade(300),
        }
        checkpoints = {max(1, args.tenants * q // 4) for q in (1, 2, 3, 4)}
        for i in range(args.tenants):
            for key, make in methods.items():
                replay = not key.startswith("template") and key != "raw_ddl"
                if replay and i >= limits[key.rsplit("_", 1)[1]]:
                    continue
                start = time.perf_counter()
                make(i)
                spent[key] += time.perf_counter() - start
                count[key] += 1
            if i + 1 in checkpoints:
                rss.append((i + 1, peak_rss_mb()))
                print(f"  {i + 1} tenants per template method: peak RSS {rss[-1][1]:.0f} MB",
                      flush=True)
        for t in [*tenancies.values(), raw_db, *alembic_dbs.values()]:
            t.dispose()
        report(methods, spent, count, rss)  # before the server (and its files) goes away


def report(
    methods: dict[str, Callable[[int], object]],
    spent: dict[str, float],
    count: dict[str, int],
    rss: list[tuple[int, float]],
) -> None:
    per = {k: spent[k] / count[k] for k in spent}
    print()
    for key in methods:
        print(f"{key:13s}: {per[key] * 1000:7.1f} ms/tenant over {count[key]} tenants")
    print()
    print(f"template 300 / template 30     : {per['template_300'] / per['template_30']:.2f}"
          "  (target ~1: independent of chain length)")
    print(f"template 30 / raw DDL replay   : {per['template_30'] / per['raw_ddl']:.2f}"
          "  (target <= 1.5)")
    print(f"alembic upgrade 30 / template 30 : {per['alembic_30'] / per['template_30']:.2f}"
          "  (target >= 3)")
    print(f"tenantry replay 30 / template 30 : {per['replay_30'] / per['template_30']:.2f}")
    print(f"alembic upgrade 300 / template 300: {per['alembic_300'] / per['template_300']:.2f}")
    print(f"tenantry replay 300 / template 300: {per['replay_300'] / per['template_300']:.2f}")
    print("peak RSS: " + ", ".join(f"{n} tenants {mb:.0f} MB" for n, mb in rss), flush=True)


if __name__ == "__main__":
    main()

"""Fault injection: each operation runs in a forked child that SIGKILLs itself before its N-th
SQL statement, for N swept over the whole operation (every statement, or a stride when there
are many); a clean run measures how many there are.

After each kill: doctor's report must not offer to destroy data that exists only once;
``doctor(fix=True, destructive=True)`` must leave storage and registry in agreement with every
tenant at its old or new name and at the head, its rows (counts and checksums) unchanged;
then the operation run again completes and the same holds. Schema, database and hybrid
tenancies; a bystander tenant is checked too.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from tenantry import Tenancy, make_engine
from tenantry.names import quote
from tests.support.databases import MIGRATIONS, TENANT_DB
from tests.support.evidence import Tally

tally = Tally()
#: At most this many kill points per operation (a stride over the statements beyond it).
MAX_POINTS = int(os.environ.get("TENANTRY_CRASH_POINTS", "6"))
SUBJECT, RENAMED, BYSTANDER = "a", "b", "keep"

Fingerprint = dict[str, tuple[int, str]]


@dataclass
class Scenario:
    strategy: str  # the Tenancy's
    kind: str  # the subject's: schema or database
    operation: str  # create, rename, drop, import (the bystander's export), move, promote

    @property
    def id(self) -> str:
        return f"{self.strategy}-{self.kind}-{self.operation}"


SCENARIOS = [
    Scenario("schema", "schema", "create"),
    Scenario("schema", "schema", "rename"),
    Scenario("schema", "schema", "drop"),
    Scenario("schema", "schema", "import"),
    Scenario("database", "database", "create"),
    Scenario("database", "database", "rename"),
    Scenario("database", "database", "drop"),
    Scenario("database", "database", "import"),
    Scenario("database", "database", "move"),
    Scenario("hybrid", "schema", "rename"),
    Scenario("hybrid", "database", "rename"),
    Scenario("hybrid", "schema", "drop"),
    Scenario("hybrid", "database", "drop"),
    Scenario("hybrid", "schema", "promote"),
]


@dataclass
class Fleet:
    """A Tenancy's options and the servers it uses, independent of tenantry's bookkeeping."""

    url: str
    options: dict[str, Any]
    servers: dict[str, str]  # server name -> maintenance URL
    prefix: str
    scenario: Scenario
    seeded: dict[str, Fingerprint] = field(default_factory=dict)
    export: str = ""  # the bystander's export (import scenarios)
    move_to: str = ""  # the server the subject moves to (move scenarios)

    def tenancy(self) -> Tenancy:
        return Tenancy(self.url, **self.options)

    def create(self, t: Tenancy, name: str, kind: str) -> None:
        t.create_tenant(name, strategy=kind if self.scenario.strategy == "hybrid" else None)

    def run(self, t: Tenancy) -> None:
        """The scenario's operation (also its re-run)."""
        op = self.scenario.operation
        if op == "create":
            self.create(t, SUBJECT, self.scenario.kind)
        elif op == "rename":
            t.rename_tenant(SUBJECT, RENAMED)
        elif op == "move":
            t.move_tenant(SUBJECT, to=self.move_to)
        elif op == "promote":
            t.promote_tenant(SUBJECT)
        elif op == "import":
            if not t.tenant_exists(SUBJECT):  # an import is not idempotent: once is enough
                t.import_tenant(self.export, SUBJECT)
        else:
            t.drop_tenant(SUBJECT, confirm=True)

    def engine(self, server: str, database: str | None = None) -> sa.Engine:
        url = sa.make_url(self.servers[server])
        if database is not None:
            url = url.set(database=database)
        return make_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    # -- what exists, read without tenantry ----------------------------------------------

    def storage(self) -> dict[tuple[str, str, str], Fingerprint]:
        """Every tenant-looking schema: (server, database, schema) -> its fingerprint."""
        found: dict[tuple[str, str, str], Fingerprint] = {}
        main_db = sa.make_url(self.url).database
        assert main_db is not None
        places: list[tuple[str, str]] = [("main", main_db)]
        for server in self.servers:
            engine = self.engine(server)
            with engine.connect() as conn:
                names = conn.scalars(sa.text(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, :p)"
                ), {"p": self.prefix})
                places += [(server, n) for n in names]
            engine.dispose()
        for server, database in places:
            engine = self.engine(server, database)
            try:
                conn = engine.connect()
            except sa.exc.OperationalError:  # e.g. left refusing connections
                found[(server, database, "?")] = {"unreadable": (-1, "")}
                engine.dispose()
                continue
            with conn:
                schemas = conn.scalars(sa.text(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :p) "
                    "OR nspname = 'tenantry_template'"
                ), {"p": self.prefix}).all()
                for schema in schemas:
                    found[(server, database, schema)] = fingerprint(conn, schema)
            engine.dispose()
        return found

    def registered(self) -> dict[str, tuple[str, str, str]]:
        main_db = sa.make_url(self.url).database
        engine = self.engine("main", main_db)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT name, server, database, schema FROM tenantry_tenants"
            )).all()
        engine.dispose()
        return {
            r.name: (r.server or "main", r.database or main_db, r.schema) for r in rows
        }

    # -- resetting a trial ---------------------------------------------------------------

    def reset(self) -> None:
        """Remove every trace of the subject (any name, any state), then set it up again."""
        main_db = sa.make_url(self.url).database
        engine = self.engine("main", main_db)
        names = [SUBJECT, RENAMED]
        with engine.connect() as conn:
            conn.execute(sa.text("DELETE FROM tenantry_tenants WHERE name = ANY(:n)"),
                         {"n": names})
            if conn.scalar(sa.text("SELECT to_regclass('public.tenantry_intents')")):
                conn.exec_driver_sql("DELETE FROM public.tenantry_intents")
            for name in names:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote(self.prefix + name)} CASCADE")
        engine.dispose()
        for server in self.servers:
            engine = self.engine(server)
            with engine.connect() as conn:
                for name in names:
                    db = quote(self.prefix + name)
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            engine.dispose()
        if self.scenario.operation == "import":
            self.seeded[SUBJECT] = self.seeded[BYSTANDER]  # the same rows, once imported
        elif self.scenario.operation != "create":
            t = self.tenancy()
            try:
                self.create(t, SUBJECT, self.scenario.kind)
                self.seeded[SUBJECT] = seed(t, SUBJECT, 40)
                server = t.get_tenant(SUBJECT).location.server
                self.move_to = "second" if server == "main" else "main"
            finally:
                t.dispose()


def seed(t: Tenancy, name: str, n: int) -> Fingerprint:
    schema = quote(t.get_tenant(name).schema)
    customers = f"INSERT INTO {schema}.customers (id, name, email) "
    orders = f"INSERT INTO {schema}.orders (id, customer_id, total) "
    with t.connection(name) as conn:
        rows = "SELECT i, 'c' || i, md5(i::text) FROM generate_series(1, :n) i"
        conn.execute(sa.text(customers + rows), {"n": n})
        rows = "SELECT i, i, i * 1.5 FROM generate_series(1, :n) i"
        conn.execute(sa.text(orders + rows), {"n": n})
        conn.commit()
        return fingerprint(conn, t.get_tenant(name).schema)


def fingerprint(conn: sa.Connection, schema: str) -> Fingerprint:
    """Row count and checksum of every table of ``schema``."""
    tables = conn.scalars(sa.text(
        "SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace(:s) AND relkind = 'r'"
    ), {"s": schema}).all()
    out: Fingerprint = {}
    for table in tables:
        name = f"{quote(schema)}.{quote(table)}"
        digest = "md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), ''))"
        query = f"SELECT count(*), {digest} FROM {name} r"  # noqa: S608 - quoted identifiers
        count, digest = conn.execute(sa.text(query)).one()
        out[table] = (int(count), str(digest))
    return out


def user_rows(fp: Fingerprint) -> int:
    return sum(n for table, (n, _) in fp.items() if table in ("customers", "orders"))


# -- the child ---------------------------------------------------------------------------


def child(fleet: Fleet, kill_at: int, pipe: Any) -> None:
    """Run the operation, SIGKILLing this process before statement ``kill_at`` (0: never)."""
    count = 0

    def before(*_args: Any) -> None:
        nonlocal count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    # Every engine of this forked process is tenantry's (the Tenancy below and the engines it
    # makes: main, admin, tenant databases), so the class-level hook sees exactly those.
    event.listen(sa.Engine, "before_cursor_execute", before)
    t = fleet.tenancy()
    fleet.run(t)
    t.dispose()
    pipe.send(count)
    pipe.close()
    os._exit(0)


def run_child(fleet: Fleet, kill_at: int) -> int | None:
    """Run the operation in a child killed before statement ``kill_at``; the statements it ran
    when it was not killed, else ``None``."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=child, args=(fleet, kill_at, send))
    process.start()
    send.close()
    process.join(120)
    if process.exitcode is None:
        process.kill()
        process.join()
        pytest.fail(f"the child hung (kill point {kill_at})")
    if process.exitcode == -signal.SIGKILL:
        return None
    assert process.exitcode == 0, f"the child failed (exit {process.exitcode})"
    return int(receive.recv())


# -- checks ------------------------------------------------------------------------------


def violations(fleet: Fleet, allowed: list[set[str]]) -> list[str]:
    """What is wrong now: registry vs storage, names, revisions, rows of the seeded tenants."""
    problems: list[str] = []
    t = fleet.tenancy()
    try:
        report = t.doctor()
        problems += [f"doctor: {f.problem} {f.subject}: {f.detail}" for f in report.findings]
        head = t.tenant_stream.head if t.tenant_stream is not None else None
        infos = {i.name: i for i in t.list_tenants()}
    finally:
        t.dispose()
    names = set(infos) - {BYSTANDER}
    if names not in allowed:
        problems.append(f"tenants {sorted(names)}, expected one of {allowed}")
    stored = fleet.storage()
    registered = fleet.registered()
    places = {k for k in stored if k[2] != "tenantry_template"}
    if places != set(registered.values()):
        problems.append(f"storage {sorted(places)} != registry {sorted(registered.values())}")
    for name, info in infos.items():
        if info.revision != head:
            problems.append(f"{name} at {info.revision}, head is {head}")
        source = SUBJECT if name in (SUBJECT, RENAMED) else name
        expected = fleet.seeded.get(source)
        actual = stored.get(registered[name])
        if expected is not None and actual != expected:
            problems.append(f"{name}: rows {actual} != seeded {expected}")
    return problems


def rows_lost(fleet: Fleet) -> int:
    """Seeded rows not found in the storage the registry names (a dropped subject's aside)."""
    stored, registered = fleet.storage(), fleet.registered()
    lost = 0
    for source, expected in fleet.seeded.items():
        if source == SUBJECT and fleet.scenario.operation == "drop":
            continue
        names = [SUBJECT, RENAMED] if source == SUBJECT else [source]
        found = [stored.get(registered[n]) for n in names if n in registered]
        have = max((user_rows(fp) for fp in found if fp == expected), default=0)
        lost += user_rows(expected) - have
    return lost


def unique_data_doomed(fleet: Fleet) -> list[str]:
    """Destructive fixes doctor offers on storage holding the only copy of seeded rows."""
    t = fleet.tenancy()
    try:
        findings = [f for f in t.doctor().findings if f.destructive and f.fix]
    finally:
        t.dispose()
    stored = fleet.storage()
    doomed = []
    for f in findings:
        for place, fp in stored.items():
            if f.subject not in (place[1], place[2]) or user_rows(fp) == 0:
                continue
            copies = [p for p, other in stored.items() if other == fp]
            if len(copies) < 2:
                doomed.append(f"{f.problem} {f.subject} ({f.fix}): the only copy of its rows")
    return doomed


# -- the sweep ---------------------------------------------------------------------------


@pytest.fixture
def fleet_of(
    database_url: str, second_url: str, pg_url: str, tmp_path: Path
) -> Iterator[Callable[[Scenario], Fleet]]:
    made: list[Fleet] = []

    def make(scenario: Scenario) -> Fleet:
        prefix = f"c{uuid.uuid4().hex[:6]}_"
        options: dict[str, Any] = dict(
            strategy=scenario.strategy, prefix=prefix, shared_migrations=MIGRATIONS / "shared",
            tenant_migrations=TENANT_DB,
        )
        servers = {"main": pg_url}
        if scenario.strategy != "schema":
            options["servers"] = {"second": second_url}
            servers["second"] = second_url
        fleet = Fleet(database_url, options, servers, prefix, scenario)
        t = fleet.tenancy()
        try:
            t.migrate_shared()
            bystander = "schema" if scenario.kind == "database" else "database"
            fleet.create(t, BYSTANDER, bystander if scenario.strategy == "hybrid"
                         else scenario.kind)
            fleet.seeded[BYSTANDER] = seed(t, BYSTANDER, 25)
            if scenario.operation == "import":
                fleet.export = str(tmp_path / "export")
                t.export_tenant(BYSTANDER, fleet.export)
        finally:
            t.dispose()
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.seeded.clear()
        fleet.scenario.operation = "create"  # reset() then only removes the subject
        fleet.reset()
        t = fleet.tenancy()
        try:
            t.drop_tenant(BYSTANDER, confirm=True)
            strategy = t.strategy
            if hasattr(strategy, "drop_templates"):
                strategy.drop_templates()
        finally:
            t.dispose()


def expected_names(scenario: Scenario, *, done: bool) -> list[set[str]]:
    before = set() if scenario.operation in ("create", "import") else {SUBJECT}
    after = {"rename": {RENAMED}, "drop": set()}.get(scenario.operation, {SUBJECT})
    return [after] if done else [before, after]


def attempt(check: Callable[..., list[str]], *args: Any) -> list[str]:
    """``check(*args)``, an exception it raises counted as a violation."""
    try:
        return check(*args)
    except Exception as exc:
        return [f"{check.__name__}: {type(exc).__name__}: {str(exc).splitlines()[0]}"]


def kill_points(total: int) -> list[int]:
    stride = max(1, -(-total // MAX_POINTS))
    return list(range(1, total + 1, stride))


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_killed_anywhere_doctor_and_rerun_lose_nothing(
    scenario: Scenario, fleet_of: Callable[[Scenario], Fleet]
) -> None:
    fleet = fleet_of(Scenario(scenario.strategy, scenario.kind, scenario.operation))
    fleet.reset()
    total = run_child(fleet, 0)
    assert total is not None and total > 1
    failures: list[str] = []
    for point in kill_points(total):
        fleet.reset()
        finished = run_child(fleet, point) is not None
        tally.add("kill points tried")
        after_doctor = attempt(unique_data_doomed, fleet)
        t = fleet.tenancy()
        try:
            t.doctor(fix=True, destructive=True)
        except Exception as exc:
            after_doctor.append(f"doctor --fix: {type(exc).__name__}: {exc}")
        finally:
            t.dispose()
        after_doctor += attempt(violations, fleet, expected_names(scenario, done=finished))
        t = fleet.tenancy()
        try:
            fleet.run(t)  # the re-run completes what the kill interrupted
        except Exception as exc:
            after_doctor.append(f"re-run: {type(exc).__name__}: {exc}")
        finally:
            t.dispose()
        after_rerun = attempt(violations, fleet, expected_names(scenario, done=True))
        lost = rows_lost(fleet)
        tally.add("violations after doctor", len(after_doctor))
        tally.add("violations after re-run", len(after_rerun))
        tally.add("rows lost", lost)
        if after_doctor or after_rerun or lost:
            failures.append(f"killed before statement {point}/{total}: "
                            f"{after_doctor + after_rerun} rows lost {lost}")
    tally.publish(f"crash sweep {scenario.id}")
    assert not failures, "\n".join(failures)

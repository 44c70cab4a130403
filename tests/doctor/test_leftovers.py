"""Doctor on a broken fleet, and the leftovers of interrupted operations.

A database refusing connections, a server that is down, a schema dropped by hand: each is a
finding, and the rest of the fleet is examined. What a killed move leaves (marker table,
publication, slot, half-made copy) and unfinished or unused template databases are found, and
removed only when that provably loses nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from tenantry import DoctorReport, MoveError, Problem, State, Tenancy, make_engine
from tenantry.cli import app
from tenantry.core import registry
from tenantry.core.registry import Location
from tenantry.relocation.moving import Move
from tenantry.relocation.promotion import Demotion, Promotion
from tenantry.relocation.replication import move_name
from tenantry.strategies.database import DatabaseStrategy
from tests.app.models import Customer
from tests.support.databases import MIGRATIONS, TENANT_DB, database_names
from tests.support.moves import assert_no_replication, leave_an_interrupted_move, prepare, snapshot

DEADLINE = 60.0


def findings(tenancy: Tenancy, **options: bool) -> set[tuple[Problem, str | None]]:
    return {(f.problem, f.tenant) for f in tenancy.doctor(**options).findings}


def admin(tenancy: Tenancy, server: str, statement: str) -> None:
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    with strategy.admin(server).connect() as conn:
        conn.exec_driver_sql(statement)


def add_customers(tenancy: Tenancy, name: str, n: int) -> None:
    with tenancy.session(name) as s:
        s.add_all(Customer(name=f"{name}{i}", email=f"{i}@x") for i in range(n))
        s.commit()


def customers(tenancy: Tenancy, name: str) -> int:
    with tenancy.session(name) as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(Customer)) or 0)


def fail(tenancy: Tenancy, name: str) -> None:
    """A problem elsewhere in the fleet: doctor must still find (and fix) it."""
    with tenancy.engine.begin() as conn:
        registry.update(conn, name, state=State.FAILED, error="boom")


def server_of(tenancy: Tenancy, server: str) -> str:
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    return strategy.servers[server].render_as_string(hide_password=False)


# -- doctor survives a broken fleet -----------------------------------------------------------


def test_a_database_refusing_connections_is_a_finding_and_the_rest_is_examined(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    tenancy = make_tenancy(placement=lambda tenant, load: "main")
    for name in ("shut", "failed", "kept"):
        tenancy.create_tenant(name)
        add_customers(tenancy, name, 3)
    shut = tenancy.get_tenant("shut").location.database
    ghost = f"{tenancy.prefix}ghost"
    admin(tenancy, "main", f"ALTER DATABASE {shut} ALLOW_CONNECTIONS false")
    admin(tenancy, "main", f"CREATE DATABASE {ghost}")
    admin(tenancy, "main", f"ALTER DATABASE {ghost} ALLOW_CONNECTIONS false")
    fail(tenancy, "failed")
    tenancy.dispose()  # no pooled connection from before: as in a fresh process
    report = tenancy.doctor()
    assert {(f.problem, f.tenant) for f in report.findings} == {
        (Problem.CONNECTIONS_DISALLOWED, "shut"),
        (Problem.CONNECTIONS_DISALLOWED, "ghost"),
        (Problem.FAILED, "failed"),
    }
    by_tenant = {f.tenant: f for f in report.findings}
    assert set(by_tenant) == {"shut", "ghost", "failed"}
    assert by_tenant["shut"].problem == Problem.CONNECTIONS_DISALLOWED
    assert "ALLOW_CONNECTIONS true" in by_tenant["shut"].fix
    assert by_tenant["ghost"].fix == ""  # no registered tenant's: needs you, with the command
    assert "needs you" in by_tenant["ghost"].detail
    assert f"ALTER DATABASE \"{ghost}\" ALLOW_CONNECTIONS true" in by_tenant["ghost"].detail
    report = tenancy.doctor(fix=True, destructive=True)
    assert [(f.problem, f.tenant) for f in report.findings] == [
        (Problem.CONNECTIONS_DISALLOWED, "ghost")]
    assert customers(tenancy, "shut") == 3  # reachable again, rows intact
    assert tenancy.get_tenant("failed").state == State.READY
    assert ghost in database_names(server_of(tenancy, "main"))  # never dropped unseen
    admin(tenancy, "main", f"DROP DATABASE {ghost}")


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_down_is_a_finding_and_the_rest_is_examined(
    make_tenancy: Callable[..., Tenancy], database_url: str,
) -> None:
    tenancy = make_tenancy(placement=lambda tenant, load: "second" if tenant == "far" else "main")
    for name in ("far", "near", "failed"):
        tenancy.create_tenant(name)
    fail(tenancy, "failed")
    down = f"postgresql+psycopg://nobody:sekrit@127.0.0.1:{closed_port()}/postgres"
    broken = Tenancy(  # the same fleet, seen while server "second" is down
        database_url, prefix=tenancy.prefix, servers={"second": down},
        tenant_migrations=TENANT_DB, shared_migrations=MIGRATIONS / "shared",
        strategy="database",
    )
    try:
        report = broken.doctor()
        assert {(f.problem, f.tenant) for f in report.findings} == {
            (Problem.SERVER_UNREACHABLE, None), (Problem.FAILED, "failed")}
        unreachable = report.findings[0]
        assert unreachable.subject == "second" and "far" in unreachable.detail
        assert "sekrit" not in json.dumps(report.as_dict())
        report = broken.doctor(fix=True, destructive=True)
        assert [f.problem for f in report.findings] == [Problem.SERVER_UNREACHABLE]
        assert broken.tenant_exists("far")  # its registry row is kept
    finally:
        broken.dispose()
    assert tenancy.get_tenant("failed").state == State.READY
    assert tenancy.doctor().ok


def test_a_server_that_never_answers_is_given_up_on(
    make_tenancy: Callable[..., Tenancy], database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenancy = make_tenancy(placement=lambda tenant, load: "main")
    tenancy.create_tenant("near")
    with socket.socket() as silent:  # accepts TCP connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        broken = Tenancy(
            database_url, prefix=tenancy.prefix,
            servers={"second": f"postgresql+psycopg://nobody@127.0.0.1:{port}/postgres"},
            tenant_migrations=TENANT_DB, shared_migrations=MIGRATIONS / "shared",
            strategy="database",
        )
        monkeypatch.setattr("tenantry.doctor.findings.PROBE_TIMEOUT", 1)
        reports: list[DoctorReport] = []
        worker = threading.Thread(target=lambda: reports.append(broken.doctor()), daemon=True)
        worker.start()
        worker.join(DEADLINE)
        broken.dispose()
    assert not worker.is_alive(), "doctor waited for a server that never answers"
    assert [(f.problem, f.subject) for f in reports[0].findings] == [
        (Problem.SERVER_UNREACHABLE, "second")]


def test_schemas_dropped_by_hand_are_findings_and_the_rest_is_examined(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    tenancy = make_tenancy(strategy="hybrid")
    tenancy.create_tenant("flat", strategy="schema")
    tenancy.create_tenant("own", strategy="database")
    tenancy.create_tenant("failed", strategy="schema")
    fail(tenancy, "failed")
    with tenancy.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {tenancy.get_tenant('flat').schema} CASCADE")
    own = tenancy.get_tenant("own")
    with tenancy.connection("own") as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {own.schema} CASCADE")
        conn.commit()
    report = tenancy.doctor()
    found = {f.tenant: f for f in report.findings}
    assert {(f.problem, f.tenant) for f in report.findings} == {
        (Problem.MISSING_STORAGE, "flat"), (Problem.MISSING_SCHEMA, "own"),
        (Problem.FAILED, "failed")}
    assert found["own"].fix == "" and "needs you" in found["own"].detail
    report = tenancy.doctor(fix=True, destructive=True)
    assert [(f.problem, f.tenant) for f in report.findings] == [(Problem.MISSING_SCHEMA, "own")]
    assert not tenancy.tenant_exists("flat")
    assert tenancy.get_tenant("failed").state == State.READY
    assert tenancy.get_tenant("own") == own  # kept as it was: the database may hold data


# -- what a killed online move leaves -----------------------------------------------------------

CHILD = """
import json, sys
from tenantry import Tenancy
args = json.loads(sys.argv[1])
Tenancy(args.pop("url"), **args).move_tenant("acme", to="second", online=True)
"""


def kill_a_move_at_its_slot(tenancy: Tenancy, database_url: str) -> None:
    """Run ``move_tenant`` in a child process and SIGKILL it while it creates its replication
    slot: after the marker table and publication, before the slot exists.

    A transaction holding an xid makes slot creation wait (it needs a snapshot no running
    transaction precedes); the child is killed while waiting and its backend terminated.
    """
    main = server_of(tenancy, "main")
    holder_engine = make_engine(main, poolclass=NullPool)
    watcher = make_engine(main, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    args = {"url": database_url, "prefix": tenancy.prefix, "strategy": "database",
            "servers": {"second": server_of(tenancy, "second")},
            "tenant_migrations": str(TENANT_DB), "shared_migrations": str(MIGRATIONS / "shared")}
    with holder_engine.connect() as holder, watcher.connect() as watch:
        holder.exec_driver_sql("SELECT pg_current_xact_id()")  # an xid, held open
        child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)],
                                 env={**os.environ, "PYTHONPATH": str(Path.cwd() / "src")})
        query = sa.text("SELECT pid FROM pg_stat_activity "
                        "WHERE query LIKE 'SELECT pg_create_logical_replication_slot%'")
        deadline = time.monotonic() + DEADLINE
        while (pid := watch.execute(query).scalar()) is None:
            assert child.poll() is None, "the move ended before creating its slot"
            assert time.monotonic() < deadline, "the move never reached its slot"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        watch.execute(sa.text("SELECT pg_terminate_backend(:p, 10000)"), {"p": pid})
        holder.rollback()
    holder_engine.dispose()
    watcher.dispose()
    deadline = time.monotonic() + DEADLINE
    while True:  # the child's sessions end once the server sees its sockets closed
        with tenancy.engine.begin() as conn:
            if registry.try_lock_tenant(conn, "acme"):
                return
        assert time.monotonic() < deadline, "the killed move's lock was never released"
        time.sleep(0.05)


def test_a_move_killed_between_its_marker_and_its_slot(
    make_tenancy: Callable[..., Tenancy], database_url: str,
) -> None:
    tenancy, _ = prepare(make_tenancy, "move")
    before = snapshot(tenancy, "acme")
    kill_a_move_at_its_slot(tenancy, database_url)
    name = move_name(tenancy.get_tenant("acme").schema)
    report = tenancy.doctor()
    found = {f.problem: f for f in report.findings}
    assert {(f.problem, f.tenant) for f in report.findings} == {
        (Problem.REPLICATION_LEFTOVER, "acme"),
        (Problem.UNFINISHED, "acme"),  # the move's intent: its half-made target is its own
    }
    assert found[Problem.REPLICATION_LEFTOVER].subject == name
    leftover = found[Problem.REPLICATION_LEFTOVER].detail
    assert "publication in database" in leftover and "marker table" in leftover
    assert "slot" not in leftover.replace("slot makes", "")  # none was made
    assert "the copy was not finished" in found[Problem.UNFINISHED].detail
    assert found[Problem.UNFINISHED].fix and not found[Problem.UNFINISHED].destructive
    report = tenancy.doctor(fix=True)  # safe fixes only
    assert report.ok, report.findings
    assert_no_replication(tenancy)
    assert tenancy.move_tenant("acme", to="second", online=True).location.server == "second"
    assert snapshot(tenancy, "acme") == before


def leave_marker_and_publication(tenancy: Tenancy) -> str:
    """What ``Replication.start`` made before it was killed: its marker table and publication
    in the source (the tenant's database)."""
    schema = tenancy.get_tenant("acme").schema
    name = move_name(schema)
    with tenancy.connection("acme") as conn:
        tables = conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
        ).scalars().all()
        conn.exec_driver_sql(f"CREATE TABLE {schema}.{name} (token text PRIMARY KEY)")
        published = ", ".join(f"{schema}.{t}" for t in [*tables, name])
        conn.exec_driver_sql(f"CREATE PUBLICATION {name} FOR TABLE {published}")
        conn.commit()
    return name


def markers(tenancy: Tenancy) -> int:
    with tenancy.connection("acme") as conn:
        return int(conn.exec_driver_sql(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tenantry_move%%'").scalar_one())


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
def test_the_next_move_clears_a_killed_moves_marker_and_publication(
    make_tenancy: Callable[..., Tenancy], online: bool,
) -> None:
    tenancy, _ = prepare(make_tenancy, "move")
    before = snapshot(tenancy, "acme")
    leave_marker_and_publication(tenancy)
    found = [f for f in tenancy.doctor().findings if f.problem == Problem.REPLICATION_LEFTOVER]
    assert len(found) == 1 and "marker table" in found[0].detail
    assert tenancy.move_tenant("acme", to="second", online=online).location.server == "second"
    assert snapshot(tenancy, "acme") == before
    assert markers(tenancy) == 0  # not copied as if it were a tenant table
    assert_no_replication(tenancy)
    report = tenancy.doctor()  # the template left on main is a cache, not a finding
    assert report.ok, report.findings


def test_the_copy_never_includes_a_move_marker(make_tenancy: Callable[..., Tenancy]) -> None:
    tenancy, _ = prepare(make_tenancy, "move")
    name = leave_marker_and_publication(tenancy)
    info = tenancy.get_tenant("acme")
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    move = Move(strategy, "acme", info.location, replace(info.location, server="second"))
    move._make_target()
    try:
        move._dump_restore()  # offline copy of schema and data, leftovers not cleared
        with move._connection(move.target) as conn:
            tables = set(conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": info.schema}
            ).scalars())
    finally:
        move.abort()
    assert "customers" in tables and name not in tables


def test_a_killed_moves_slot_makes_the_next_move_refuse_naming_doctor(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    tenancy, _ = prepare(make_tenancy, "move")
    name = leave_marker_and_publication(tenancy)
    with tenancy.connection("acme") as conn:
        conn.execute(sa.text("SELECT pg_create_logical_replication_slot(:n, 'pgoutput')"),
                     {"n": name})
        conn.commit()
    with pytest.raises(MoveError, match=r"interrupted move left slot.*tenantry doctor --fix"):
        tenancy.move_tenant("acme", to="second", online=True)
    assert tenancy.get_tenant("acme").location.server == "main"
    assert tenancy.get_tenant("acme").schema not in database_names(server_of(tenancy, "second"))
    report = tenancy.doctor(fix=True)
    assert report.ok, report.findings
    assert tenancy.move_tenant("acme", to="second", online=True).location.server == "second"
    assert_no_replication(tenancy)


# -- unregistered copies, template databases ----------------------------------------------------


def test_an_unregistered_copy_is_dropped_only_when_it_holds_the_same_rows(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    tenancy, _ = prepare(make_tenancy, "move")
    leave_an_interrupted_move(tenancy, "second")  # a full copy, still subscribed
    schema = tenancy.get_tenant("acme").schema
    copy = make_engine(server_of(tenancy, "second"), poolclass=NullPool).url.set(database=schema)
    report = tenancy.doctor()
    assert {f.problem for f in report.findings} == {
        Problem.REPLICATION_LEFTOVER, Problem.UNREGISTERED_COPY}
    engine = make_engine(copy, poolclass=NullPool)  # the copy gets a row the tenant lacks
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {schema}.customers (id, name, email) "  # noqa: S608
                             "VALUES (9999, 'only here', 'o@x')"))
    engine.dispose()
    report = tenancy.doctor(fix=True, destructive=True)
    (left,) = report.findings
    assert left.problem == Problem.UNREGISTERED_COPY and left.fix == ""
    assert f"{schema}.customers" in left.detail and "needs you" in left.detail
    assert schema in database_names(server_of(tenancy, "second"))  # kept
    engine = make_engine(copy, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {schema}.customers WHERE id = 9999")  # noqa: S608
    engine.dispose()
    report = tenancy.doctor(fix=True)  # the same rows again: a duplicate, dropped safely
    assert report.ok, report.findings
    assert schema not in database_names(server_of(tenancy, "second"))
    assert customers(tenancy, "acme") == 20


def test_unfinished_template_databases_are_found_and_dropped(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    tenancy = make_tenancy(placement=lambda tenant, load: "main")
    tenancy.create_tenant("a")
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    template = strategy.template_name()
    assert tenancy.doctor().ok  # a finished template where tenants live: as designed
    admin(tenancy, "second", f"CREATE DATABASE {template}")  # a build killed half way
    found = tenancy.doctor().findings
    assert [(f.problem, f.subject) for f in found] == [(Problem.TEMPLATE_LEFTOVER, template)]
    assert "never finished" in found[0].detail and "second" in found[0].detail
    assert tenancy.doctor(fix=True).ok
    assert template not in database_names(server_of(tenancy, "second"))
    assert template in database_names(server_of(tenancy, "main"))
    tenancy.drop_tenant("a", confirm=True)  # no tenant left on main: a cache, not a leftover
    assert tenancy.doctor().ok
    assert template in database_names(server_of(tenancy, "main"))
    tenancy.create_tenant("b")  # from that template
    assert tenancy.doctor().ok


@pytest.mark.parametrize("kind", ["promote", "demote"])
def test_a_killed_promotion_or_demotion_leaves_a_copy_doctor_drops_when_empty(
    make_tenancy: Callable[..., Tenancy], kind: str,
) -> None:
    tenancy, op = prepare(make_tenancy, kind)
    before = snapshot(tenancy, "acme")
    info = tenancy.get_tenant("acme")
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    if kind == "promote":  # killed after restoring the definitions into its new database
        main = Location(info.schema, tenancy.engine.url.database, "main")
        move: Move = Promotion(strategy, "acme", main, Location(info.schema, info.schema, "second"))
    else:  # killed after restoring the definitions into a schema of the main database
        main = Location(info.schema, tenancy.engine.url.database, "main")
        move = Demotion(strategy, "acme", info.location, main)
    move._make_target()
    move._dump_restore(schema_only=True)  # then killed: never registered, never removed
    found = tenancy.doctor().findings
    assert [(f.problem, f.tenant) for f in found] == [(Problem.UNREGISTERED_COPY, "acme")]
    assert "holds no rows" in found[0].detail
    assert tenancy.doctor(fix=True).ok
    assert op().name == "acme"  # and the operation itself now goes through
    assert snapshot(tenancy, "acme") == before


def test_the_cli_doctor_reports_and_fixes_a_broken_fleet(
    make_tenancy: Callable[..., Tenancy], database_url: str,
) -> None:
    tenancy = make_tenancy(placement=lambda tenant, load: "main")
    tenancy.create_tenant("shut")
    tenancy.create_tenant("failed")
    fail(tenancy, "failed")
    admin(tenancy, "main", f"ALTER DATABASE {tenancy.get_tenant('shut').schema} "
          "ALLOW_CONNECTIONS false")
    tenancy.dispose()
    down = f"postgresql+psycopg://nobody:sekrit@127.0.0.1:{closed_port()}/postgres"
    base = ["--url", database_url, "--strategy", "database", "--prefix", tenancy.prefix,
            "--server", f"second={down}", "--tenant-migrations", str(TENANT_DB),
            "--shared-migrations", str(MIGRATIONS / "shared")]
    runner = CliRunner()
    result = runner.invoke(app, [*base, "doctor", "--json"])
    assert result.exit_code == 1, result.output
    assert "sekrit" not in result.output
    found = {(f["problem"], f["tenant"]) for f in json.loads(result.output)["findings"]}
    assert found == {("server_unreachable", None), ("connections_disallowed", "shut"),
                     ("failed", "failed")}
    result = runner.invoke(app, [*base, "doctor", "--fix", "--yes", "--json"])
    assert result.exit_code == 1, result.output  # the server is still down
    report = json.loads(result.output)
    assert [f["problem"] for f in report["findings"]] == ["server_unreachable"]
    assert {f["problem"] for f in report["fixed"]} == {"connections_disallowed", "failed"}
    assert customers(tenancy, "shut") == 0  # reachable again

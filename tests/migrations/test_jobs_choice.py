"""jobs="auto": helpers only when the work left, at this process's pace, is worth their start-up."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantry import MigrationError, Tenancy
from tenantry.cli import app
from tenantry.migrations import executors
from tests.support.fleet import add_revision

WORTH = executors.HELPER_WORTH


@pytest.mark.parametrize(
    ("seconds_left", "cpus", "load", "expected"),
    [
        (0.0, 8, 0.0, 1), (WORTH * 0.99, 8, 0.0, 1),  # under a helper's worth: no helper
        (WORTH, 8, 0.0, 2), (WORTH * 2.5, 8, 4.0, 3),  # one more process per HELPER_WORTH s
        (WORTH * 100, 4, 0.0, 4), (WORTH * 100, 1, 0.0, 1),  # never more than the CPUs
        # a busy machine (load above the CPUs) needs proportionally more work left per helper
        (WORTH * 5.9, 2, 7.0, 1), (WORTH * 6, 2, 7.0, 2), (WORTH * 2, 2, 2.0, 2),
    ],
)
def test_auto_adds_a_process_per_helper_worth_of_work_up_to_the_cpus(
    seconds_left: float, cpus: int, load: float, expected: int
) -> None:
    assert executors.auto_processes(seconds_left, cpus=cpus, load=load) == expected


def test_jobs_are_checked() -> None:
    assert executors.checked(3) == 3 and executors.checked("auto") == "auto"
    for bad in (0, -1, True, 2.0, "two"):
        with pytest.raises(MigrationError, match="jobs must be"):
            executors.checked(bad)  # type: ignore[arg-type]
    assert executors.parse_jobs("auto") == "auto" and executors.parse_jobs("4") == 4
    for text in ("0", "x", ""):
        with pytest.raises(MigrationError, match="jobs must be"):
            executors.parse_jobs(text)


def notes_pids(t: Tenancy) -> set[str]:
    with t.engine.connect() as conn:
        return {conn.exec_driver_sql(f"SELECT body FROM {i.schema}.notes").scalar()  # noqa: S608
                for i in t.list_tenants()}


@pytest.mark.slow
def test_auto_starts_helpers_only_when_the_measured_pace_says_so(
    make_fleet_tenancy: Callable[..., Tenancy], fleet_migrations: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_fleet_tenancy()
    for i in range(8):
        first.create_tenant(f"a{i}")
    add_revision(fleet_migrations)
    t = make_fleet_tenancy()
    me = str(os.getpid())

    def migrate_auto() -> set[str]:
        report = t.migrate_all(jobs="auto")
        assert report.ok and len(report.by_result("upgraded")) == 8
        pids = notes_pids(t)
        t.migrate_all("f003", confirm=True)  # back down, for the next run
        return pids

    assert migrate_auto() == {me}  # 8 tenants: within the warm-up batch, no helper
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine
    monkeypatch.setattr(executors, "BATCH", 2)  # warm 2, time 2, then decide for the other 4
    monkeypatch.setattr(executors, "HELPER_WORTH", 1e6)  # the rest is never worth a helper
    assert migrate_auto() == {me}
    monkeypatch.setattr(executors, "HELPER_WORTH", 1e-9)  # always worth one
    pids = migrate_auto()
    assert me in pids and len(pids) == 2, pids


def test_cli_jobs_option(
    make_fleet_tenancy: Callable[..., Tenancy], fleet_migrations: Path
) -> None:
    t = make_fleet_tenancy()
    t.create_tenant("a1")
    env = {"TENANTRY_URL": t.engine.url.render_as_string(hide_password=False),
           "TENANTRY_TENANT_MIGRATIONS": str(fleet_migrations)}
    runner = CliRunner()
    result = runner.invoke(app, ["migrate", "--jobs", "auto"], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    for bad in ("0", "many"):
        result = runner.invoke(app, ["migrate", "--jobs", bad], env=env)
        assert result.exit_code == 1 and "jobs must be" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

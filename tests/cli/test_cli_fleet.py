"""The fleet side of the CLI: progress, summary, --json, exit codes, status drift, dry-run."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tenantry import Tenancy, TenantOutcome
from tenantry.cli import app
from tenantry.cli.progress import MigrationProgress
from tests.support.fleet import add_revision

MakeTenancy = Callable[..., Tenancy]


def run(url: str, migrations: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["--url", url, "--tenant-migrations", str(migrations), *args]
    )
    return result.exit_code, result.output


def setup_fleet(make_fleet_tenancy: MakeTenancy, migrations: Path) -> str:
    t = make_fleet_tenancy()
    for name in ("a1", "a2", "bad1"):
        t.create_tenant(name)
    add_revision(migrations)
    return t.engine.url.render_as_string(hide_password=False)


@pytest.mark.slow
def test_migrate_reports_and_fails(make_fleet_tenancy: MakeTenancy, fleet_migrations: Path) -> None:
    url = setup_fleet(make_fleet_tenancy, fleet_migrations)
    code, output = run(url, fleet_migrations, "migrate", "--dry-run", "--tenant", "a1")
    assert code == 0 and "CREATE TABLE notes" in output
    code, output = run(url, fleet_migrations, "migrate", "--jobs", "2")
    assert code == 1
    assert "migrating 3 tenant(s)" in output and "3/3 done, 1 failed" in output  # plain lines
    assert "migration summary" in output and "bad tenant" in output
    code, output = run(url, fleet_migrations, "migrate", "--json")
    assert code == 1
    data = json.loads(output)
    assert data["counts"] == {"upgraded": 0, "downgraded": 0, "current": 2, "failed": 1}
    code, output = run(url, fleet_migrations, "status")
    assert code == 0
    assert "head: f004" in output and "needs attention" in output and "bad1" in output
    assert "3 tenant(s), 1 behind, 1 failed or migrating" in output
    code, output = run(url, fleet_migrations, "downgrade", "f003", "--tenant", "a*")
    assert code == 1 and "--yes" in output
    code, output = run(url, fleet_migrations, "downgrade", "f003", "--tenant", "a*", "--yes")
    assert code == 0 and "downgraded" in output
    code, output = run(url, fleet_migrations, "migrate", "--tenant", "a*", "--json")
    assert code == 0 and json.loads(output)["counts"]["upgraded"] == 2
    code, output = run(url, fleet_migrations, "migrate", "--tenant", "a*")
    assert code == 0 and "nothing to do" in output


def test_progress_bar_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with MigrationProgress(console) as progress:
        progress.plan(2)
        progress.advance(TenantOutcome("a", "upgraded", "x", "y"))
        progress.advance(TenantOutcome("b", "failed", "x", "x", "boom"))
    text = buffer.getvalue()
    assert "migrating" in text and "2/2" in text and "1 failed" in text and "boom" in text

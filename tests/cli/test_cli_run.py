"""``tenantry run module:fn --all-tenants``: from the project folder, progress on stderr,
outcomes on stdout, exit 1 on failure, resumable with --run."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from tenantry import EachOutcome, Tenancy
from tenantry.cli import app
from tenantry.cli.running import EachProgress

JOB = '''
import os
from pathlib import Path

import sqlalchemy as sa
from tenantry import TENANT_SCHEMA, Tenancy, current_tenant

tenancy = Tenancy(os.environ["APP_DATABASE"])
settings = sa.Table("settings", sa.MetaData(), sa.Column("key", sa.Text, primary_key=True),
                    sa.Column("value", sa.Text), schema=TENANT_SCHEMA)


def stamp(name):
    """Fails for a tenant while a file fail-<name> exists in the working directory."""
    if Path("fail-" + name).exists():
        raise RuntimeError("asked to fail " + name)
    with tenancy.session() as session:
        session.execute(settings.insert().values(key="stamp", value=f"{name}/{current_tenant()}"))
        session.commit()


async def not_here(name):
    pass
'''


def tenantry_cli() -> str:
    found = shutil.which("tenantry", path=str(Path(sys.executable).parent))
    assert found is not None, "the tenantry console script is not installed"
    return found


@pytest.fixture
def project(tenancy: Tenancy, tmp_path: Path) -> Path:
    for name in ("acme", "globex", "initech"):
        tenancy.create_tenant(name)
    (tmp_path / "nightly.py").write_text(JOB)
    return tmp_path


def stamps(tenancy: Tenancy) -> dict[str, str | None]:
    found = {}
    with tenancy.engine.connect() as conn:  # suspended tenants too: not routed
        for info in tenancy.list_tenants():
            settings = sa.table("settings", sa.column("key"), sa.column("value"),
                                schema=info.schema)
            found[info.name] = conn.execute(
                sa.select(settings.c.value).where(settings.c.key == "stamp")).scalar()
    return found


def run_in(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TENANTRY_URL"}
    env["APP_DATABASE"] = url
    return subprocess.run([tenantry_cli(), "--url", url, *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_run_calls_the_function_for_every_tenant(
    tenancy: Tenancy, project: Path, database_url: str
) -> None:
    tenancy.suspend_tenant("initech")
    (project / "fail-globex").touch()
    done = run_in(project, database_url, "run", "nightly:stamp", "--all-tenants", "-j", "2")
    assert done.returncode == 1, done.stderr
    assert "running for 3 tenant(s)" in done.stderr and "3/3 done, 1 failed" in done.stderr
    assert "failed globex: RuntimeError: asked to fail globex" in done.stderr
    assert "run summary" in done.stdout and "suspended" in done.stdout
    assert "Traceback" not in done.stderr
    assert stamps(tenancy) == {"acme": "acme/acme", "globex": None, "initech": None}
    (project / "fail-globex").unlink()
    again = run_in(project, database_url, "run", "nightly:stamp", "--tenant", "g*", "--json")
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["ok"] and [t["tenant"] for t in data["tenants"]] == ["globex"]
    assert stamps(tenancy)["globex"] == "globex/globex"


def test_run_resumes_a_named_run(
    tenancy: Tenancy, project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("APP_DATABASE", database_url)
    (project / "fail-acme").touch()

    def invoke(*args: str) -> tuple[int, dict[str, object]]:
        result = CliRunner().invoke(app, ["--url", database_url, "run", "nightly:stamp", *args])
        return result.exit_code, json.loads(result.stdout)

    code, first = invoke("--all-tenants", "--run", "n1", "--json")
    assert code == 1 and first["counts"] == {"ok": 2, "failed": 1, "skipped": 0,
                                             "suspended": 0}
    (project / "fail-acme").unlink()
    code, second = invoke("--all-tenants", "--run", "n1", "--json")
    assert code == 0 and second["run"] == "n1"
    assert second["counts"] == {"ok": 1, "failed": 0, "skipped": 2, "suspended": 0}


def test_run_refuses_what_it_cannot_run(project: Path, database_url: str) -> None:
    no_scope = run_in(project, database_url, "run", "nightly:stamp")
    assert no_scope.returncode == 1 and "--all-tenants" in no_scope.stderr
    missing = run_in(project, database_url, "run", "nightly:nothing", "--all-tenants")
    assert missing.returncode == 1 and "cannot load run 'nightly:nothing'" in missing.stderr
    coroutine = run_in(project, database_url, "run", "nightly:not_here", "--all-tenants")
    assert coroutine.returncode == 1 and "coroutine function" in coroutine.stderr
    unknown = run_in(project, database_url, "run", "nightly:stamp", "--tenant", "nobody")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
    assert all("Traceback" not in r.stderr for r in (no_scope, missing, coroutine, unknown))


def test_progress_bar_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with EachProgress(console, 3) as progress:
        progress.advance(EachOutcome("a", "ok", duration=0.1))
        progress.advance(EachOutcome("b", "failed", "RuntimeError: boom"))
        progress.advance(EachOutcome("c", "suspended", "tenant 'c' is suspended"))
    text = buffer.getvalue()
    assert "running" in text and "3/3" in text and "1 failed" in text
    assert " b: RuntimeError: boom" in text

"""``--app`` as an application's own project uses it: from the project folder, sync or async."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

APP = '''
import os
from tenantry import Tenancy
from tenantry.aio import AsyncTenancy
tenancy = Tenancy(os.environ["APP_DATABASE"], prefix="co_")
tenancy.migrate_shared()
async_tenancy = AsyncTenancy(tenancy)
'''


def tenantry_cli() -> str:
    found = shutil.which("tenantry", path=str(Path(sys.executable).parent))
    assert found is not None, "the tenantry console script is not installed"
    return found


def run_in(folder: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TENANTRY_URL")}
    env["APP_DATABASE"] = database_url
    return subprocess.run([tenantry_cli(), *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("attribute", ["tenancy", "async_tenancy"])
def test_app_is_found_in_the_project_folder(
    database_url: str, tmp_path: Path, attribute: str
) -> None:
    """The console script puts the working directory on sys.path (as uvicorn, flask and
    alembic do), and an AsyncTenancy is accepted: the CLI uses the Tenancy it wraps."""
    (tmp_path / "saas").mkdir()
    (tmp_path / "saas" / "__init__.py").write_text("")
    (tmp_path / "saas" / "db.py").write_text(APP)
    created = run_in(tmp_path, database_url, "--app", f"saas.db:{attribute}", "create", "acme")
    assert created.returncode == 0, created.stderr
    assert "co_acme" in created.stdout
    listed = run_in(tmp_path, database_url, "--app", f"saas.db:{attribute}", "list")
    assert listed.returncode == 0 and "acme" in listed.stdout, listed.stderr


def test_app_that_is_neither_is_refused(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "notapp.py").write_text("thing = 42\n")
    result = run_in(tmp_path, database_url, "--app", "notapp:thing", "list")
    assert result.returncode == 1
    assert "not a Tenancy or an AsyncTenancy" in result.stderr
    assert "Traceback" not in result.stderr

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.strategies import DatabaseStrategy, SchemaStrategy
from tenantry.strategies.hybrid import HybridStrategy
from tests.support.cli import run

runner = CliRunner()




def test_create_list_status_migrate_drop(env: dict[str, str]) -> None:
    code, out, _ = run(env, "migrate")  # shared stream first; no tenants yet
    assert code == 0, out
    code, out, _ = run(env, "create", "acme", "globex")
    assert code == 0 and "tenant acme: ready in tenant_acme (revision t002)" in out
    code, out, _ = run(env, "list", "--json")
    assert code == 0
    assert [(t["name"], t["schema"], t["revision"]) for t in json.loads(out)] == [
        ("acme", "tenant_acme", "t002"),
        ("globex", "tenant_globex", "t002"),
    ]
    code, out, _ = run(env, "status", "--json")
    assert code == 0 and all(r["current"] for r in json.loads(out))
    code, out, _ = run(env, "migrate", "--tenant", "acme", "--json")
    assert code == 0 and json.loads(out)["tenants"] == [
        {"tenant": "acme", "result": "current", "before": "t002", "after": "t002", "error": None}
    ]
    code, out, _ = run(env, "rename", "globex", "globex2")
    assert code == 0 and "globex2" in out
    code, _, err = run(env, "drop", "acme")
    assert code == 1 and "--yes" in err
    code, out, _ = run(env, "drop", "acme", "--yes")
    assert code == 0 and "dropped" in out
    code, out, _ = run(env, "list")
    assert code == 0 and "globex2" in out and "acme" not in out


def test_migrate_exit_code_when_a_tenant_fails(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "migrate")[0] == 0
    assert run(env, "create", "acme")[0] == 0
    engine = sa.create_engine(env["TENANTRY_URL"])
    with engine.begin() as c:  # sabotage: the tenant's version table names a missing revision
        c.exec_driver_sql("UPDATE tenant_acme.alembic_version SET version_num = 'zzz'")
        c.exec_driver_sql("UPDATE public.tenantry_tenants SET revision = 'zzz'")
    engine.dispose()
    code, out, err = run(env, "migrate", "--json")
    assert code == 1, err
    assert out, err
    assert json.loads(out)["tenants"][0]["result"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "Bad-Name"], "invalid tenant name"),
        (["drop", "nobody", "--yes"], None),
        (["rename", "nobody", "somebody"], "unknown tenant 'nobody'"),
        (["migrate", "--tenant", "nobody"], "unknown tenant 'nobody'"),
    ],
)
def test_bad_input_is_a_clear_error(
    env: dict[str, str], args: list[str], message: str | None
) -> None:
    code, out, err = run(env, *args)
    if message is None:
        assert code == 0 and "no such tenant" in out
    else:
        assert code == 1 and message in err and "Traceback" not in err


def test_unreachable_database_hides_the_password() -> None:
    env = {"TENANTRY_URL": "postgresql://app:s3cret-pw@127.0.0.1:1/app"}
    code, _, err = run(env, "list")
    assert code == 1
    assert "cannot reach the database postgresql+psycopg://app:***@127.0.0.1:1/app" in err or (
        "cannot reach the database postgresql://app:***@127.0.0.1:1/app" in err
    )
    assert "s3cret-pw" not in err


def test_missing_url() -> None:
    code, _, err = run({"TENANTRY_URL": ""}, "list")
    assert code == 1 and "TENANTRY_URL" in err


def test_app_option_loads_a_tenancy(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "myapp.py").write_text(
        "from tenantry import Tenancy\n"
        f"tenancy = Tenancy({database_url!r}, prefix='co_')\n"
        "tenancy.migrate_shared()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run({}, "--app", "myapp:tenancy", "create", "acme")
    assert code == 0, err
    assert "co_acme" in out
    code, _, err = run({}, "--app", "myapp:nothing", "list")
    assert code == 1 and "cannot load --app" in err


def test_console_script_entry_point(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from tenantry.cli import main; main()", "create", "Nope!"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "invalid tenant name" in proc.stderr and "Traceback" not in proc.stderr


def test_strategy_help_names_every_strategy() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    help_text = " ".join(result.stdout.split())
    assert "Isolation: schema, database or hybrid." in help_text
    for kind in (SchemaStrategy.kind, DatabaseStrategy.kind, HybridStrategy.kind):
        assert kind in help_text.split("Isolation:")[1].split(".")[0]


def test_piped_tables_are_not_cut(env: dict[str, str]) -> None:
    """Results written to a pipe keep every column whole (rich would cut them at 80)."""
    long = "a_tenant_with_a_rather_long_name_for_the_table_x"
    assert run(env, "migrate")[0] == 0
    assert run(env, "create", long)[0] == 0
    code, out, _ = run(env, "list")
    assert code == 0
    assert any(f"tenant_{long}" in line and long in line for line in out.splitlines()), out


def test_import_takes_the_exported_name_without_as(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "migrate")[0] == 0
    assert run(env, "create", "acme")[0] == 0
    assert run(env, "export", "acme", str(tmp_path / "acme"))[0] == 0
    assert run(env, "drop", "acme", "--yes")[0] == 0
    code, out, err = run(env, "import", str(tmp_path / "acme"))
    assert code == 0, err
    assert "tenant acme: imported" in out


def test_status_without_a_tenant_stream_reports_no_one_behind(env: dict[str, str]) -> None:
    assert run(env, "migrate")[0] == 0
    assert run(env, "create", "acme")[0] == 0  # at t002
    bare = {"TENANTRY_URL": env["TENANTRY_URL"]}
    code, out, err = run(bare, "status", "--each")
    assert code == 0
    assert "head unknown" in out and "behind" not in out
    assert "no tenant migrations configured" in err
    code, out, _ = run(bare, "status", "--json")
    assert json.loads(out)[0]["current"] is None
    code, out, _ = run(env, "status")
    assert "0 behind" in out

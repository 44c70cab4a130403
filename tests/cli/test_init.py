"""``tenantry init``: the files it writes, the next commands it prints, and no overwriting."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.cli.init_files import Layout
from tenantry.cli.revision import project_app

runner = CliRunner()

STREAM_FILES = [
    f"migrations/{stream}/{name}"
    for stream in ("tenant", "shared")
    for name in ("env.py", "script.py.mako", "versions/.gitkeep")
]


def test_init_writes_the_streams_models_and_settings(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in [*STREAM_FILES, "alembic.ini", "app/__init__.py", "app/models.py",
                 "app/tenancy.py"]:
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "app" / "main.py").exists()
    env = (tmp_path / "migrations" / "tenant" / "env.py").read_text()
    assert 'run_environment(context, tenancy, "tenant")' in env
    assert "from app.tenancy import tenancy" in env
    settings = (tmp_path / "app" / "tenancy.py").read_text()
    assert "tenancy = Tenancy(" in settings and "TENANTRY_URL" in settings
    models = (tmp_path / "app" / "models.py").read_text()
    assert "(SharedBase)" in models and "(TenantBase)" in models
    # the CLI finds the settings from the folder; the next commands are printed
    assert project_app(tmp_path / "alembic.ini") == "app.tenancy:tenancy"
    assert "tenantry revision --autogenerate" in result.output
    assert "tenantry migrate" in result.output and "tenantry create acme" in result.output
    for path in tmp_path.rglob("*.py"):  # what init writes compiles
        compile(path.read_text(), str(path), "exec")


def test_init_async_fastapi(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--fastapi", "--package", "saas"])
    assert result.exit_code == 0, result.output
    settings = (tmp_path / "saas" / "tenancy.py").read_text()
    assert "from tenantry.aio import AsyncTenancy" in settings
    assert "tenancy = AsyncTenancy(" in settings
    main = (tmp_path / "saas" / "main.py").read_text()
    assert "TenantMiddleware" in main and "tenant_session(tenancy)" in main
    assert "uvicorn saas.main:app" in result.output
    assert project_app(tmp_path / "alembic.ini") == "saas.tenancy:tenancy"
    for path in tmp_path.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_init_async_alone_has_no_web_app(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path), "--async"]).exit_code == 0
    assert "AsyncTenancy(" in (tmp_path / "app" / "tenancy.py").read_text()
    assert not (tmp_path / "app" / "main.py").exists()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    models = tmp_path / "app" / "models.py"
    models.write_text("# mine\n")
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 1
    assert "refused" in again.output and "app/models.py" in again.output
    assert "--force" in again.output
    assert models.read_text() == "# mine\n"  # nothing was written
    forced = runner.invoke(app, ["init", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "TenantBase" in models.read_text()


def test_init_refuses_one_existing_file_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 1 and "alembic.ini" in result.output
    assert not (tmp_path / "migrations").exists()


def test_init_refuses_a_package_that_is_not_a_module_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--package", "my-app"])
    assert result.exit_code == 1 and "Python module name" in result.output
    assert not any(tmp_path.iterdir())


def test_layout_files_cover_both_streams() -> None:
    files = Layout(package="shop").files()
    assert set(STREAM_FILES) <= set(files)
    assert "app = shop.tenancy:tenancy" in files["alembic.ini"]
    assert "[tenant]" in files["alembic.ini"] and "[shared]" in files["alembic.ini"]


def test_revision_without_alembic_ini_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["revision", "-m", "x", "-c", str(tmp_path / "alembic.ini")])
    assert result.exit_code == 1
    assert "tenantry init" in result.output


def test_the_cli_finds_the_app_of_alembic_ini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """From a project folder the CLI uses alembic.ini's [tenantry] app; --url overrides it."""
    (tmp_path / "alembic.ini").write_text("[tenantry]\napp = missing_pkg.tenancy:tenancy\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TENANTRY_APP", raising=False)
    monkeypatch.setenv("TENANTRY_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    found = runner.invoke(app, ["list"])
    assert found.exit_code == 1 and "missing_pkg.tenancy:tenancy" in found.output
    given = runner.invoke(app, ["--url", "postgresql+psycopg://nobody@127.0.0.1:1/none", "list"])
    assert given.exit_code == 1 and "missing_pkg" not in given.output
    assert "cannot reach the database" in given.output

"""Running the command line in-process, on a test database with the test streams."""

from __future__ import annotations

from typer.testing import CliRunner

from tenantry.cli import app
from tests.support.databases import MIGRATIONS

runner = CliRunner()


def cli_env(database_url: str) -> dict[str, str]:
    """The environment that points the CLI at ``database_url`` and the test streams."""
    return {
        "TENANTRY_URL": database_url,
        "TENANTRY_TENANT_MIGRATIONS": str(MIGRATIONS / "tenant"),
        "TENANTRY_SHARED_MIGRATIONS": str(MIGRATIONS / "shared"),
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``tenantry ARGS`` with ``env``: exit code, stdout, stderr."""
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr

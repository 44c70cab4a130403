"""CLI: --strategy database, --server name=URL, move, drop needing --yes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import Tenancy
from tenantry.cli import app
from tests.support.databases import MIGRATIONS, TENANT_DB, cleanup


def test_cli_creates_moves_and_drops_database_tenants(
    database_url: str, second_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    prefix = f"c{tmp_path.name[-6:].replace('-', '_').lower()}_"
    prefix = "".join(ch for ch in prefix if ch.isalnum() or ch == "_")
    base = [
        "--url", database_url, "--strategy", "database", "--prefix", prefix,
        "--server", f"second={second_url}",
        "--tenant-migrations", str(TENANT_DB), "--shared-migrations", str(MIGRATIONS / "shared"),
    ]
    try:
        result = runner.invoke(app, [*base, "create", "acme"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, [*base, "list", "--json"])
        assert '"server": "main"' in result.output and '"strategy": "database"' in result.output
        result = runner.invoke(app, [*base, "move", "acme", "--to", "second"])
        assert result.exit_code == 0, result.output
        assert "now on server second" in result.output
        result = runner.invoke(app, [*base, "drop", "acme"])
        assert result.exit_code == 1 and "--yes" in result.output
        result = runner.invoke(app, [*base, "--server", "broken", "list"])
        assert result.exit_code == 1 and "name=URL" in result.output
        result = runner.invoke(app, [*base, "drop", "acme", "--yes"])
        assert result.exit_code == 0, result.output
    finally:
        tenancy = Tenancy(database_url, strategy="database", prefix=prefix,
                          servers={"second": sa.make_url(second_url)})
        cleanup(tenancy)


def test_servers_and_strategy_from_the_environment(
    database_url: str, second_url: str, tmp_path: Path
) -> None:
    """TENANTRY_STRATEGY and TENANTRY_SERVERS (several name=URL, separated by spaces)."""
    prefix = "e" + "".join(ch for ch in tmp_path.name[-6:].lower() if ch.isalnum()) + "_"
    env = {
        "TENANTRY_URL": database_url,
        "TENANTRY_STRATEGY": "database",
        "TENANTRY_PREFIX": prefix,
        "TENANTRY_SERVERS": f"second={second_url} spare={second_url}",
        "TENANTRY_TENANT_MIGRATIONS": str(TENANT_DB),
        "TENANTRY_SHARED_MIGRATIONS": str(MIGRATIONS / "shared"),
    }
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["create", "acme"], env=env).exit_code == 0
        result = runner.invoke(app, ["move", "acme", "--to", "spare"], env=env)
        assert result.exit_code == 0, result.output
        assert "now on server spare" in result.output
    finally:
        with Tenancy(database_url, strategy="database", prefix=prefix,
                     servers={"second": second_url, "spare": second_url}) as t:
            cleanup(t)

"""Every bad database URL is one line from every CLI command: exit 1, no traceback, no password.

An asyncio driver's URL (an async application's) is converted to psycopg 3 for the CLI.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import ConfigurationError, Tenancy, TenantBase, make_engine
from tenantry.cli import app
from tests.support.databases import MIGRATIONS

runner = CliRunner()
PASSWORD = "pw-s3cret"


@pytest.fixture(autouse=True)
def shared_metadata_unchanged() -> Iterator[None]:
    """The ``demo`` command imports the demo's models onto the shared TenantBase metadata:
    take them off again, so later tests in this process see only the test models."""
    before = set(TenantBase.metadata.tables)
    yield
    for key in set(TenantBase.metadata.tables) - before:
        TenantBase.metadata.remove(TenantBase.metadata.tables[key])

BAD_URLS = {
    "port not a number": f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/db",
    "unbalanced IPv6 bracket": f"postgresql://u:{PASSWORD}@[::1/db",
    "unknown driver": f"postgresql+nosuchdriver://u:{PASSWORD}@127.0.0.1/db",
    "not a URL": f"u:{PASSWORD} at localhost",
    # an asyncpg URL is converted for the CLI: then the (refused) connection is the one line
    "asyncpg, server down": f"postgresql+asyncpg://u:{PASSWORD}@127.0.0.1:1/db",
}
if importlib.util.find_spec("psycopg2") is None:
    BAD_URLS["psycopg2 not installed"] = f"postgresql+psycopg2://u:{PASSWORD}@127.0.0.1/db"

# every command that builds a Tenancy from --url / TENANTRY_URL, with its required arguments
COMMANDS = [
    ["create", "acme"], ["drop", "acme", "--yes"], ["rename", "acme", "other"], ["list"],
    ["migrate"], ["status"], ["downgrade", "base", "--yes"], ["export", "acme", "out"],
    ["import", "in", "--as", "acme"], ["query", "SELECT 1", "--all-tenants"],
    ["move", "acme", "--to", "eu"], ["doctor"], ["promote", "acme"], ["demote", "acme"],
    ["demo"], ["run", "tenantry.names:check_syntax", "--all-tenants"],
]


def run(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"TENANTRY_URL": url})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception)
    )
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, out: str, err: str) -> None:
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err + out and PASSWORD not in err + out, err


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_bad_url_is_one_line_for_every_command(url: str) -> None:
    for command in COMMANDS:
        assert_one_line_error(*run(url, *command))
    # an extra server's URL (database strategy) too
    assert_one_line_error(*run("postgresql://u@127.0.0.1:1/db", "--strategy", "database",
                               "--server", f"eu={url}", "list"))


def test_console_script_prints_one_line(tmp_path: Path) -> None:
    for url in (BAD_URLS["port not a number"], BAD_URLS["unbalanced IPv6 bracket"]):
        proc = subprocess.run(
            [sys.executable, "-c", "from tenantry.cli import main; main()", "list"],
            env={**os.environ, "TENANTRY_URL": url}, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and "cannot parse the database URL" in proc.stderr
        assert PASSWORD not in proc.stderr


def test_asyncpg_url_works_for_cli_admin_work(database_url: str) -> None:
    url = sa.make_url(database_url).set(drivername="postgresql+asyncpg")
    env = {
        "TENANTRY_URL": url.render_as_string(hide_password=False),
        "TENANTRY_TENANT_MIGRATIONS": str(MIGRATIONS / "tenant"),
        "TENANTRY_SHARED_MIGRATIONS": str(MIGRATIONS / "shared"),
    }
    for command in (["migrate"], ["create", "acme"], ["list"]):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "acme" in result.stdout


def test_library_refuses_async_and_missing_drivers_with_a_typed_error() -> None:
    with pytest.raises(ConfigurationError, match=r"asyncio driver.*AsyncTenancy") as caught:
        Tenancy(BAD_URLS["asyncpg, server down"])
    assert PASSWORD not in str(caught.value)
    for name in ("port not a number", "unbalanced IPv6 bracket", "unknown driver"):
        with pytest.raises(ConfigurationError) as caught:
            make_engine(BAD_URLS[name])
        assert PASSWORD not in str(caught.value)
    if "psycopg2 not installed" in BAD_URLS:
        with pytest.raises(ConfigurationError, match="not installed"):
            make_engine(BAD_URLS["psycopg2 not installed"])

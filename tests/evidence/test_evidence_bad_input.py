"""Evidence: bad input gives a clear typed error, and the CLI never shows a driver traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import ConfigurationError, InvalidTenantName, Tenancy, UnknownTenant
from tenantry.cli import app
from tests.app.models import Customer
from tests.support.databases import MIGRATIONS
from tests.support.evidence import Tally

runner = CliRunner()
tally = Tally()


def cli(url: str, *args: str) -> tuple[int, str]:
    env = {
        "TENANTRY_URL": url,
        "TENANTRY_TENANT_MIGRATIONS": str(MIGRATIONS / "tenant"),
        "TENANTRY_SHARED_MIGRATIONS": str(MIGRATIONS / "shared"),
    }
    result = runner.invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    tally.add("CLI runs")
    return result.exit_code, result.stdout + result.stderr


def assert_clean_error(code: int, output: str, *expected: str) -> None:
    assert code == 1, output
    assert output.startswith("error:"), output
    assert "Traceback" not in output and "sqlalche.me" not in output and "secret" not in output
    for text in expected:
        assert text in output, output
    tally.add("clean errors")


def test_unknown_and_invalid_tenants(database_url: str) -> None:
    assert cli(database_url, "migrate")[0] == 0
    assert_clean_error(*cli(database_url, "migrate", "--tenant", "nope"), "unknown tenant 'nope'")
    assert_clean_error(*cli(database_url, "rename", "nope", "other"), "unknown tenant 'nope'")
    assert_clean_error(
        *cli(database_url, "create", 'a"; DROP SCHEMA public; --'), "invalid tenant name"
    )
    assert_clean_error(*cli(database_url, "drop", "Bad Name", "--yes"), "invalid tenant name")
    code, out = cli(database_url, "drop", "nope", "--yes")
    assert code == 0 and "no such tenant" in out
    tally.publish("bad input: tenants")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u:secret@localhost/db", "needs PostgreSQL"),
        ("this is not a url", "URL"),
        ("postgresql+psycopg://u:secret@/db?host=/nonexistent/socket/dir", "cannot reach"),
        ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "cannot reach"),
    ],
)
def test_wrong_url_or_server_down(url: str, expected: str) -> None:
    for command in (["list"], ["doctor"], ["create", "acme"], ["migrate"]):
        assert_clean_error(*cli(url, *command), expected)
    tally.publish(f"bad input: {expected}")


def test_missing_database_is_named_without_password(database_url: str) -> None:
    url = sa.make_url(database_url).set(database="no_such_db", password="secret")
    code, out = cli(url.render_as_string(hide_password=False), "list")
    assert_clean_error(code, out, "no_such_db", "***")


def test_api_errors_are_typed(tenancy: Tenancy, tmp_path: Path) -> None:
    with pytest.raises(UnknownTenant):
        tenancy.session("nope")
    with pytest.raises(InvalidTenantName):
        tenancy.create_tenant("x'; --")
    with pytest.raises(ConfigurationError):
        Tenancy("not a url")
    tenancy.create_tenant("busy")
    with tenancy.session("busy") as s:
        s.add(Customer(name="x"))
        s.commit()
        tenancy.drop_tenant("busy", confirm=True)  # dropped while the session is in use
        with pytest.raises(UnknownTenant, match="busy"):
            s.scalars(sa.select(Customer.name)).all()

"""Records in an application as ``tenantry init`` writes it: the shared stream's autogenerate
writes the record table, and the CLI sets, shows and filters records (``--app`` from
alembic.ini, in subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.project import new_revision, revisions, run, upgrade_body
from tests.support.records import run_cli

COLUMNS = '''    shared_migrations=MIGRATIONS / "shared",
    tenant_columns=[
        sa.Column("plan", sa.Text, nullable=False, server_default="free"),
        sa.Column("owner_email", sa.Text),
        sa.Column("paid_until", sa.Date),
    ],
)
'''


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Path:
    """``tenantry init``, its Tenancy given record columns, both streams generated and run."""
    result = run(tmp_path, None, "tenantry", "init")
    assert result.returncode == 0, result.stderr
    tenancy = tmp_path / "app" / "tenancy.py"
    text = tenancy.read_text()
    assert 'shared_migrations=MIGRATIONS / "shared",\n)\n' in text
    text = text.replace('    shared_migrations=MIGRATIONS / "shared",\n)\n', COLUMNS)
    tenancy.write_text(text.replace("\nimport os\n", "\nimport os\n\nimport sqlalchemy as sa\n", 1))
    return tmp_path


def revise(project: Path, url: str, stream: str) -> str:
    versions = project / "migrations" / stream / "versions"
    before = revisions(versions)
    flags = ["--shared"] if stream == "shared" else []
    result = run_cli(project, url, "revision", "--autogenerate", "-m", stream, *flags)
    assert result.returncode == 0, result.stderr
    return upgrade_body(new_revision(versions, before))


def cli(project: Path, url: str, *args: str) -> str:
    result = run_cli(project, url, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_autogenerate_and_the_cli(project: Path, database_url: str) -> None:
    shared = revise(project, database_url, "shared")
    assert "op.create_table('tenant_records'" in shared
    for column in ("sa.Column('name', sa.Text()", "sa.Column('plan', sa.Text(), "
                   "server_default='free', nullable=False)", "sa.Column('owner_email'",
                   "sa.Column('paid_until', sa.Date()"):
        assert column in shared, shared
    assert "['public.tenantry_tenants.name']" in shared
    assert "onupdate='CASCADE'" in shared and "ondelete='CASCADE'" in shared
    tenant = revise(project, database_url, "tenant")
    assert "tenant_records" not in tenant and "op.create_table('projects'" in tenant
    cli(project, database_url, "migrate")
    assert "op." not in revise(project, database_url, "shared")  # at the head: nothing to say

    cli(project, database_url, "create", "acme", "--set", "plan=pro",
        "--set", "paid_until=2027-01-31", "--set", "owner_email=a@acme.test")
    cli(project, database_url, "create", "globex", "initech")
    updated = cli(project, database_url, "update", "globex", "--set", "plan=enterprise",
                  "--set", "owner_email=g@globex.test")
    assert "plan=enterprise" in updated and "owner_email=g@globex.test" in updated
    cli(project, database_url, "update", "acme", "--set", "owner_email=")  # NULL

    listed = json.loads(cli(project, database_url, "list", "--json"))
    assert {t["name"]: t["record"] for t in listed} == {
        "acme": {"plan": "pro", "owner_email": None, "paid_until": "2027-01-31"},
        "globex": {"plan": "enterprise", "owner_email": "g@globex.test", "paid_until": None},
        "initech": {"plan": "free", "owner_email": None, "paid_until": None},
    }
    table = cli(project, database_url, "list", "--where", "plan=pro", "--where", "plan=free")
    assert "acme" in table and "initech" in table and "globex" not in table
    assert "paid_until" in table and "2027-01-31" in table
    dated = json.loads(cli(project, database_url, "list", "--json", "--where",
                           "paid_until=2027-01-31"))
    assert [t["name"] for t in dated] == ["acme"]

    status = json.loads(cli(project, database_url, "status", "--json", "--where",
                            "plan=enterprise"))
    assert [(s["tenant"], s["record"]["plan"]) for s in status] == [("globex", "enterprise")]
    each = cli(project, database_url, "status", "--each", "--where", "owner_email=")
    assert "acme" in each and "initech" in each and "globex" not in each and "plan" in each
    migrated = json.loads(cli(project, database_url, "migrate", "--json", "--where",
                              "plan=pro"))
    assert [t["tenant"] for t in migrated["tenants"]] == ["acme"]
    queried = cli(project, database_url, "query", "--all-tenants", "--json", "--where",
                  "plan=free", "SELECT count(*) AS n FROM __tenant__.projects")
    assert [json.loads(line)["tenant"] for line in queried.splitlines()] == ["initech"]


def test_cli_refuses_bad_records(project: Path, database_url: str) -> None:
    revise(project, database_url, "shared")
    revise(project, database_url, "tenant")
    cli(project, database_url, "migrate")
    for args, message in (
        (("create", "acme", "--set", "colour=red"), "unknown record field(s) ['colour']"),
        (("create", "acme", "--set", "paid_until=soon"), "refused"),
        (("create", "acme", "--set", "plan"), "FIELD=VALUE"),
        (("list", "--where", "colour=red"), "colour"),
    ):
        result = run_cli(project, database_url, *args)
        assert result.returncode == 1, (args, result.stdout)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert json.loads(cli(project, database_url, "list", "--json")) == []
    no_set = run_cli(project, database_url, "update", "acme")
    assert no_set.returncode == 2 and "--set" in no_set.stderr

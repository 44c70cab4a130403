"""CLI: tenantry adopt NAME --schema S, and adopt --all --pattern (with --dry-run)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import Tenancy
from tenantry.names import quote
from tenantry.strategies.base import prepared
from tests.app.models import Customer
from tests.support.cli import run
from tests.support.databases import MIGRATIONS

runner = CliRunner()
UUID_SCHEMA = "0b6f3c2e-91d4-4c57-a0f1-5e2d7c9b8a61"



@pytest.fixture
def legacy(env: dict[str, str]) -> Iterator[Tenancy]:
    """The main database of an existing deployment: the shared stream run, no tenants yet."""
    t = Tenancy(env["TENANTRY_URL"], tenant_migrations=MIGRATIONS / "tenant",
                shared_migrations=MIGRATIONS / "shared")
    t.migrate_shared()
    yield t
    t.dispose()


def build_schema(t: Tenancy, schema: str) -> None:
    assert t.tenant_stream is not None
    with t.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {quote(schema)}")
        t.tenant_stream.upgrade(prepared(conn, "legacy", schema), schema)
        customers = sa.table("customers", sa.column("name"), schema=schema)
        conn.execute(customers.insert(), [{"name": "Ada"}])



def test_adopt_one_schema(env: dict[str, str], legacy: Tenancy) -> None:
    build_schema(legacy, UUID_SCHEMA)
    code, out, err = run(env, "adopt", "acme", "--schema", UUID_SCHEMA)
    assert code == 0, err
    assert f"tenant acme: adopted, ready in {UUID_SCHEMA} (revision t002)" in out
    code, out, _ = run(env, "adopt", "acme", "--schema", UUID_SCHEMA)  # idempotent
    assert code == 0
    code, _, err = run(env, "adopt", "other", "--schema", UUID_SCHEMA)
    assert code == 1 and "registered already, as tenant 'acme'" in err
    code, _, err = run(env, "adopt", "ghost", "--schema", "no-such-schema")
    assert code == 1 and "does not exist" in err
    code, _, err = run(env, "adopt", "ghost")
    assert code == 1 and "--schema" in err
    code, out, _ = run(env, "list", "--json")
    assert [(t["name"], t["schema"]) for t in json.loads(out)] == [("acme", UUID_SCHEMA)]
    with legacy.session("acme") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["Ada"]


def test_adopt_all_by_pattern_with_a_dry_run_first(env: dict[str, str], legacy: Tenancy) -> None:
    for schema in ("tenant_north", "tenant_south", UUID_SCHEMA):
        build_schema(legacy, schema)
    code, out, err = run(env, "adopt", "--all", "--pattern", "tenant_*", "--dry-run")
    assert code == 0, err
    assert "would adopt tenant_north as tenant north" in out
    assert "would adopt tenant_south as tenant south" in out
    assert "2 to adopt, 0 skipped (dry run: nothing changed)" in out
    assert legacy.list_tenants() == []
    code, out, err = run(env, "adopt", "--all", "--pattern", "tenant_*")
    assert code == 0, err
    assert "tenant north: adopted tenant_north" in out and "2 adopted, 0 skipped" in out
    # a UUID is no tenant name: one is derived, and the output says so
    code, out, err = run(env, "adopt", "--all", "--pattern", "0b6f*", "--rename", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    derived = UUID_SCHEMA.replace("-", "_")
    assert (row["tenant"], row["schema"], row["revision"]) == (
        derived, f"tenant_{derived}", "t002"
    )
    assert "not a valid tenant name" in row["note"]
    code, out, err = run(env, "adopt", "--all", "--pattern", "*", "--dry-run")
    assert code == 0 and "0 to adopt" in out  # everything is registered now
    assert sorted(i.name for i in legacy.list_tenants()) == [derived, "north", "south"]
    code, out, _ = run(env, "migrate", "--json")
    assert code == 0 and {t["result"] for t in json.loads(out)["tenants"]} == {"current"}


def test_adopt_all_exits_1_when_something_is_skipped(
    env: dict[str, str], legacy: Tenancy
) -> None:
    with legacy.engine.begin() as conn:
        conn.exec_driver_sql('CREATE SCHEMA "legacy_x"; CREATE TABLE "legacy_x".t (id int)')
    code, out, err = run(env, "adopt", "--all", "--pattern", "legacy_*", "--strip", "legacy_")
    assert code == 1 and "skipped legacy_x:" in err and "records no revision" in err
    assert "0 adopted, 1 skipped" in out
    code, _, err = run(env, "adopt", "x", "--all")
    assert code == 1 and "--all finds the storage itself" in err

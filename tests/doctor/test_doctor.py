"""tenantry doctor: a finding per inconsistency; safe repairs; destructive ones only on --yes."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import Problem, State, Tenancy, TenantFilter, use
from tenantry.cli import app
from tenantry.core.registry import update
from tests.app.models import Customer
from tests.support.databases import MIGRATIONS
from tests.support.strict import drop_roles

runner = CliRunner()


def problems(t: Tenancy) -> set[tuple[Problem, str | None]]:
    return {(f.problem, f.tenant) for f in t.doctor().findings}


def sql(t: Tenancy, statement: str) -> None:
    with t.engine.begin() as conn:
        conn.exec_driver_sql(statement)


def set_state(t: Tenancy, name: str, **values: object) -> None:
    with t.engine.begin() as conn:
        update(conn, name, **values)


def test_healthy_tenancy_has_no_findings(tenancy: Tenancy) -> None:
    tenancy.create_tenant("a")
    assert tenancy.doctor().ok


def test_every_registry_inconsistency_is_found_and_fixed(tenancy: Tenancy) -> None:
    for name in ("gone", "stuck", "failed", "behind", "mismatch", "kept"):
        tenancy.create_tenant(name)
    with tenancy.session("kept") as s:
        s.add(Customer(name="precious"))
        s.commit()
    sql(tenancy, "DROP SCHEMA tenant_gone CASCADE")
    set_state(tenancy, "stuck", state=State.MIGRATING)
    set_state(tenancy, "failed", state=State.FAILED, error="boom")
    tenancy.migrate_tenant("behind", "t001")
    set_state(tenancy, "mismatch", revision="t001")
    sql(tenancy, "CREATE SCHEMA tenant_orphan")  # no version table: unknown content
    found = problems(tenancy)
    assert found == {
        (Problem.MISSING_STORAGE, "gone"),
        (Problem.STUCK, "stuck"),
        (Problem.FAILED, "failed"),
        (Problem.BEHIND_HEAD, "behind"),
        (Problem.REVISION_MISMATCH, "mismatch"),
        (Problem.ORPHAN_STORAGE, "orphan"),
    }
    report = tenancy.doctor(fix=True)  # safe fixes only
    assert {(f.problem, f.tenant) for f in report.findings} == {(Problem.ORPHAN_STORAGE, "orphan")}
    assert report.findings[0].destructive
    assert not tenancy.tenant_exists("gone")
    assert all(i.state == State.READY and i.revision == "t002" for i in tenancy.list_tenants())
    report = tenancy.doctor(fix=True, destructive=True)
    assert report.ok, report.findings
    with tenancy.session("kept") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["precious"]


def test_orphan_schema_at_known_revision_is_registered(tenancy: Tenancy) -> None:
    tenancy.create_tenant("lost")
    with tenancy.session("lost") as s:
        s.add(Customer(name="kept"))
        s.commit()
    sql(tenancy, "DELETE FROM tenantry_tenants WHERE name = 'lost'")
    report = tenancy.doctor()
    assert [(f.problem, f.destructive) for f in report.findings] == [
        (Problem.ORPHAN_STORAGE, False)
    ]
    assert tenancy.doctor(fix=True).ok
    assert tenancy.get_tenant("lost").revision == "t002"
    with tenancy.session("lost") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["kept"]


def test_busy_tenant_is_not_reported_stuck(tenancy: Tenancy) -> None:
    tenancy.create_tenant("busy")
    set_state(tenancy, "busy", state=State.MIGRATING)
    from tenantry.core.registry import lock_tenants

    with tenancy.engine.begin() as conn:
        lock_tenants(conn, ["busy"])  # an operation is running on it
        assert (Problem.STUCK, "busy") not in problems(tenancy)
    assert (Problem.STUCK, "busy") in problems(tenancy)


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        "TENANTRY_URL": database_url,
        "TENANTRY_TENANT_MIGRATIONS": str(MIGRATIONS / "tenant"),
        "TENANTRY_SHARED_MIGRATIONS": str(MIGRATIONS / "shared"),
    }


def test_cli_doctor_exit_codes_prompt_and_yes(env: dict[str, str], tenancy: Tenancy) -> None:
    tenancy.create_tenant("a")
    result = runner.invoke(app, ["doctor"], env=env)
    assert result.exit_code == 0 and "no problems" in result.stdout
    tenancy.migrate_tenant("a", "t001")
    sql(tenancy, "CREATE SCHEMA tenant_junk")
    result = runner.invoke(app, ["doctor", "--json"], env=env)
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert {(f["problem"], f["tenant"]) for f in body["findings"]} == {
        ("behind_head", "a"), ("orphan_storage", "junk")
    }
    result = runner.invoke(app, ["doctor", "--fix"], env=env, input="n\n")  # declined
    assert result.exit_code == 1 and "behind_head" in result.stdout
    assert tenancy.get_tenant("a").revision == "t001"
    result = runner.invoke(app, ["doctor", "--fix"], env=env, input="y\n")
    assert result.exit_code == 1  # the orphan schema needs --yes
    assert "fixed: behind_head a" in result.stdout and "orphan_storage" in result.stdout
    assert "--yes" in result.stdout
    with tenancy.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_junk'"))\
            .first() is not None
    result = runner.invoke(app, ["doctor", "--fix", "--yes"], env=env)
    assert result.exit_code == 0, result.stdout
    assert "no problems" in result.stdout
    assert tenancy.doctor().ok


def test_tenant_filter_adds_the_tenant(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.tenant_filter")
    caplog.handler.addFilter(TenantFilter())
    with caplog.at_level(logging.INFO, logger="test.tenant_filter"):
        logger.info("none")
        with use("acme"):
            logger.info("inside")
        logger.info("explicit", extra={"tenant": "other"})
    assert [getattr(r, "tenant", None) for r in caplog.records] == ["-", "acme", "other"]


def test_provisioning_and_migration_steps_are_logged(
    tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(TenantFilter())
    with caplog.at_level(logging.INFO, logger="tenantry"):
        tenancy.create_tenant("logged")
        tenancy.migrate_tenant("logged", "t001")
        tenancy.rename_tenant("logged", "logged2")
        tenancy.drop_tenant("logged2", confirm=True)
    lines = [(r.name, getattr(r, "tenant", None), r.getMessage()) for r in caplog.records]
    assert ("tenantry", "logged", "filled tenant_logged from the template at t002") in lines
    assert any(m.startswith("created tenant logged") and t == "logged" for _, t, m in lines)
    assert ("tenantry.fleet", "logged", "tenant logged: t002 -> t001") in lines
    assert any(m.startswith("renamed tenant logged to logged2") for _, _, m in lines)
    assert any(m.startswith("dropped tenant logged2") and t == "logged2" for _, t, m in lines)
    url = tenancy.engine.url
    assert all(str(url.password or "\0") not in m for _, _, m in lines)


def test_cli_doctor_strict_adopts_normal_tenants(env: dict[str, str], tenancy: Tenancy) -> None:

    tenancy.create_tenant("plain")
    result = runner.invoke(app, ["doctor", "--strict", "--json"], env=env)
    assert result.exit_code == 1
    assert [f["problem"] for f in json.loads(result.stdout)["findings"]] == ["role_missing"]
    result = runner.invoke(app, ["doctor", "--strict", "--fix", "--yes"], env=env)
    assert result.exit_code == 0, result.stdout
    tenancy.enable_strict()
    try:
        with tenancy.session("plain") as s:
            assert s.execute(sa.text("SELECT current_user")).scalar() == tenancy.tenant_role(
                "plain"
            )
    finally:
        drop_roles(tenancy)


def test_a_table_dropped_by_hand_is_found(tenancy: Tenancy) -> None:
    for name in ("a", "b", "c"):
        tenancy.create_tenant(name)
    tenancy.migrate_tenant("c", "t001")  # at another revision: compared with nobody
    sql(tenancy, "DROP TABLE tenant_b.orders")
    report = tenancy.doctor()
    assert [(f.problem, f.tenant) for f in report.findings] == [
        (Problem.BEHIND_HEAD, "c"), (Problem.MISSING_TABLES, "b")]
    lost = report.findings[1]
    assert "lacks orders" in lost.detail and "needs you" in lost.detail and lost.fix == ""
    report = tenancy.doctor(fix=True, destructive=True)
    assert [(f.problem, f.tenant) for f in report.findings] == [(Problem.MISSING_TABLES, "b")]


def test_an_interrupted_drop_is_finished_only_when_nothing_is_left_to_lose(
    tenancy: Tenancy,
) -> None:
    tenancy.create_tenant("leaving")
    with tenancy.session("leaving") as s:
        s.add(Customer(name="still here"))
        s.commit()
    set_state(tenancy, "leaving", state=State.DROPPING)
    (finding,) = tenancy.doctor().findings
    assert finding.problem == Problem.STUCK and finding.fix == ""
    assert "needs you (to drop it: tenantry drop leaving --yes)" in finding.detail
    assert not tenancy.doctor(fix=True, destructive=True).ok
    with tenancy.session("leaving") as s:  # kept
        assert s.scalars(sa.select(Customer.name)).all() == ["still here"]
    sql(tenancy, "DELETE FROM tenant_leaving.customers; DELETE FROM tenant_leaving.settings")
    (finding,) = tenancy.doctor().findings
    assert finding.destructive and finding.fix == "finish the drop"
    assert tenancy.doctor(fix=True, destructive=True).ok
    assert not tenancy.tenant_exists("leaving")


def test_a_lone_tenant_missing_a_table_is_found_against_the_template(tenancy: Tenancy) -> None:
    """With one tenant there is no other tenant to compare with: the template (kept at the
    head) is the reference."""
    assert tenancy.core.templates is not None  # the default provisioning: from the template
    tenancy.create_tenant("solo")
    assert tenancy.doctor().findings == []
    sql(tenancy, "DROP TABLE tenant_solo.orders")
    findings = tenancy.doctor().findings
    assert [(f.problem, f.tenant) for f in findings] == [(Problem.MISSING_TABLES, "solo")]
    assert "lacks orders" in findings[0].detail and "template" in findings[0].detail

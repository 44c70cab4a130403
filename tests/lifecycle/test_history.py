"""The tenants' history: every lifecycle event written after it commits, a fleet run in one
statement, readable from the API and the CLI; losing a history row never undoes a change."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from tenantry import Tenancy
from tests.support.cli import cli_env, run


def test_every_event_is_written_newest_first(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    tenancy.suspend_tenant("acme", reason="unpaid")
    tenancy.resume_tenant("acme")
    tenancy.rename_tenant("acme", "initech")
    tenancy.drop_tenant("globex", confirm=True)
    events = [(e.tenant, e.event) for e in tenancy.history()]
    assert events == [("globex", "dropped"), ("initech", "renamed"), ("acme", "resumed"),
                      ("acme", "suspended"), ("globex", "created"), ("acme", "created")]
    renamed = tenancy.history("initech")[0]
    assert renamed.details == {"old": "acme"} and renamed.at is not None
    assert tenancy.history("acme", limit=1)[0].details == {"reason": None}
    dropped = tenancy.history("globex")[0].details["location"]
    assert dropped["schema"] == "tenant_globex"  # a location, as JSON


def test_a_fleet_run_is_written_in_one_statement(tenancy: Tenancy) -> None:
    for name in ("a1", "a2", "a3"):
        tenancy.create_tenant(name)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "tenantry_history" in statement:
            statements.append(statement)

    sa.event.listen(tenancy.engine, "before_cursor_execute", count)
    try:
        tenancy.migrate_all("t001", confirm=True)
    finally:
        sa.event.remove(tenancy.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    latest = tenancy.history(limit=4)
    assert latest[0].tenant is None and latest[0].event == "fleet_migrated"
    assert latest[0].details["results"] == {"downgraded": 3}
    assert sorted(e.tenant or "" for e in latest[1:]) == ["a1", "a2", "a3"]
    assert latest[1].details == {"before": "t002", "after": "t001"}


def test_losing_the_history_never_undoes_a_change(
    tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    tenancy.setup()
    with tenancy.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE tenantry_history"))
    with caplog.at_level(logging.ERROR, logger="tenantry.events"):
        tenancy.create_tenant("acme")
    assert tenancy.tenant_exists("acme")
    assert "cannot write 1 history row" in caplog.text


def test_the_history_command(database_url: str) -> None:
    env = cli_env(database_url)
    for args in (["migrate"], ["create", "acme"], ["suspend", "acme", "--reason", "late"]):
        assert run(env, *args)[0] == 0
    code, out, err = run(env, "history", "acme", "--json")
    assert code == 0, err
    assert [(e["event"], e["details"]) for e in json.loads(out)] == [
        ("suspended", {"reason": "late"}), ("created", {"revision": "t002"})]
    code, out, _ = run(env, "history")
    assert code == 0 and "suspended" in out and "late" in out

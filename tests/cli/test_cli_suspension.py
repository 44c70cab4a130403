"""`tenantry suspend` / `tenantry resume`."""

from __future__ import annotations

import json

from tests.support.cli import run as run_cli


def test_suspend_and_resume_from_the_command_line(env: dict[str, str]) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        return run_cli(env, *args)

    assert run("migrate")[0] == 0
    assert run("create", "acme", "globex")[0] == 0
    code, out, _ = run("suspend", "acme", "--reason", "unpaid")
    assert code == 0 and "tenant acme: suspended (unpaid)" in out
    code, out, _ = run("list", "--json")
    assert {t["name"]: (t["state"], t["reason"]) for t in json.loads(out)} == {
        "acme": ("suspended", "unpaid"), "globex": ("ready", None)}
    code, out, _ = run("list")
    assert "suspended (unpaid)" in out
    code, out, _ = run("migrate", "--json")  # suspended tenants are migrated too
    assert code == 0
    code, out, _ = run("resume", "acme")
    assert code == 0 and "tenant acme: ready" in out
    code, _, err = run("suspend", "nope")
    assert code != 0 and "nope" in err

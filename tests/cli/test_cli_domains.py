"""``tenantry domains add/remove/primary/list``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.support.cli import run

runner = CliRunner()




def listed(env: dict[str, str], *tenant: str) -> list[tuple[str, str, bool]]:
    code, out, err = run(env, "domains", "list", *tenant, "--json")
    assert code == 0, err
    return [(d["domain"], d["tenant"], d["primary"]) for d in json.loads(out)]


def test_domains_commands(env: dict[str, str]) -> None:
    assert run(env, "migrate")[0] == 0
    assert run(env, "create", "acme", "globex")[0] == 0
    code, out, err = run(env, "domains", "add", "acme", "ACME.com")
    assert (code, out.strip()) == (0, "domain acme.com: tenant acme (primary)"), err
    code, out, _ = run(env, "domains", "add", "acme", "bücher.example")
    assert (code, out.strip()) == (0, "domain xn--bcher-kva.example: tenant acme")
    code, out, _ = run(env, "domains", "add", "acme", "shop.acme.com", "--primary")
    assert (code, out.strip()) == (0, "domain shop.acme.com: tenant acme (primary)")
    assert run(env, "domains", "add", "globex", "globex.com")[0] == 0
    assert listed(env) == [
        ("shop.acme.com", "acme", True), ("acme.com", "acme", False),
        ("xn--bcher-kva.example", "acme", False), ("globex.com", "globex", True),
    ]
    assert listed(env, "globex") == [("globex.com", "globex", True)]
    code, out, _ = run(env, "domains", "list", "acme")
    assert code == 0 and "bücher.example (xn--bcher-kva.example)" in out
    assert "3 domain(s)" in out and "globex" not in out

    code, out, _ = run(env, "domains", "primary", "acme", "Acme.Com")
    assert (code, out.strip()) == (0, "domain acme.com: primary of tenant acme")
    assert listed(env, "acme")[0] == ("acme.com", "acme", True)
    code, out, _ = run(env, "domains", "remove", "acme.com")
    assert (code, out.strip()) == (0, "domain acme.com: removed")
    assert listed(env, "acme")[0] == ("xn--bcher-kva.example", "acme", True)  # the oldest left
    code, out, _ = run(env, "domains", "remove", "ACME.com.")
    assert (code, out.strip()) == (0, "domain acme.com: not registered")

    assert run(env, "rename", "acme", "acme2")[0] == 0
    assert {t for _, t, _ in listed(env)} == {"acme2", "globex"}
    assert run(env, "drop", "globex", "--yes")[0] == 0
    assert {t for _, t, _ in listed(env)} == {"acme2"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["domains", "add", "acme", "acme.com:8080"], "has a port"),
        (["domains", "add", "acme", "https://acme.com"], "URL"),
        (["domains", "add", "globex", "taken.com"], "belongs to tenant 'acme'"),
        (["domains", "add", "nobody", "nobody.com"], "unknown tenant 'nobody'"),
        (["domains", "primary", "globex", "taken.com"], "not registered to tenant 'globex'"),
        (["domains", "list", "nobody"], "unknown tenant 'nobody'"),
        (["domains", "remove", "*.acme.com"], "wildcard"),
    ],
)
def test_domains_errors(env: dict[str, str], args: list[str], message: str) -> None:
    assert run(env, "migrate")[0] == 0
    assert run(env, "create", "acme", "globex")[0] == 0
    assert run(env, "domains", "add", "acme", "taken.com")[0] == 0
    code, out, err = run(env, *args)
    assert code == 1 and message in err, (out, err)
    assert "Traceback" not in err


def test_domains_help_lists_the_verbs(env: dict[str, str]) -> None:
    code, out, _ = run(env, "domains", "--help")
    assert code == 0
    assert all(verb in out for verb in ("add", "remove", "primary", "list"))

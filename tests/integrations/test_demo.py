import os
import subprocess
import sys


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantry.demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def check(out: str) -> None:
    assert "acme sees only its own rows: ['rockets (pro)', 'anvils (pro)']" in out
    assert "globex sees only its own rows: ['world domination (pro)']" in out
    assert "NoTenantSelected" in out and "UnknownTenant" in out
    assert out.rstrip().endswith("done.")


def test_demo_against_a_given_database(database_url: str) -> None:
    proc = run_demo(database_url)
    assert proc.returncode == 0, proc.stderr
    check(proc.stdout)


def test_demo_starts_its_own_embedded_server() -> None:
    if os.environ.get("TENANTRY_TEST_URL"):
        import pytest

        pytest.skip("uses the embedded server only when no server is configured")
    proc = run_demo()
    assert proc.returncode == 0, proc.stderr
    assert "starting an embedded PostgreSQL server" in proc.stdout
    check(proc.stdout)

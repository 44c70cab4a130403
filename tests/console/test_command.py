"""``tenantry console``: serves the console with uvicorn, prints a generated token once, and
warns when listening beyond this machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.console.support import free_port
from tests.support.databases import MIGRATIONS

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-c", "from tenantry.cli import main; main()"]


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return dict(os.environ, TENANTRY_URL=database_url,
                TENANTRY_TENANT_MIGRATIONS=str(MIGRATIONS / "tenant"),
                TENANTRY_SHARED_MIGRATIONS=str(MIGRATIONS / "shared"),
                PYTHONPATH=str(ROOT / "src"))


def started(proc: subprocess.Popen[str]) -> str:
    """The first line the console printed (its URL), once it answers."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"(http://\S+)", line)
    assert match, line
    base = match.group(1).split("/?")[0]
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base, timeout=1)
            return line
        except httpx.TransportError:
            assert time.monotonic() < deadline and proc.poll() is None, "the console died"
            time.sleep(0.1)


@pytest.fixture
def serving(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen([*COMMAND, "console", "--port", str(port)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_command_serves_with_a_generated_token_printed_once(
    serving: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = serving
    line = started(proc)
    assert "read-only" in line and "warning" not in line
    token = re.search(r"\?token=(\S+)", line).group(1)  # type: ignore[union-attr]
    assert len(token) >= 40  # token_urlsafe(32)
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/").status_code == 401
    with httpx.Client(base_url=base, follow_redirects=True) as client:
        page = client.get(f"/?token={token}")
        assert page.status_code == 200 and "Fleet overview" in page.text
        assert "<form method=\"post\"" not in client.get("/tenants").text


def test_a_given_token_is_not_printed_and_other_hosts_warn(env: dict[str, str]) -> None:
    # 192.0.2.1 (TEST-NET-1) is nobody's address: the warning is printed, then binding fails
    proc = subprocess.run(
        [*COMMAND, "console", "--host", "192.0.2.1", "--port", str(free_port()),
         "--token", "my-secret-token", "--writable"],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "warning: listening on 192.0.2.1" in proc.stderr
    assert "writable" in proc.stderr and "my-secret-token" not in proc.stderr + proc.stdout
    assert proc.returncode != 0

"""docs/your-own-app.md runs as written: its commands, files and diffs, in a temporary folder,
on a fresh database of the test server (see tests/support/guide.py for what is run).

The guide's install and database lines are what this environment already did: ``pip install``
is checked (its extras exist) but not run, ``export TENANTRY_URL=...`` points at the test
database. ``uvicorn`` runs in the background on a free port, which the ``curl`` commands after it
use instead of 8000. The guide's own ``pytest`` runs in a subprocess on the test server.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.guide import Step, apply_diff, missing_lines, steps

ROOT = Path(__file__).resolve().parent.parent.parent
GUIDE = ROOT / "docs" / "your-own-app.md"
DEFAULT_PORT = "8000"
#: Commands that set up what this environment already has.
ALREADY_DONE = ("python3 -m venv ", "pip install ")


def guide_steps() -> list[Step]:
    return steps(GUIDE.read_text(encoding="utf-8"))


def commands() -> list[str]:
    return [step.text for step in guide_steps() if step.kind == "command"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Shell:
    """Runs the guide's commands one by one, keeping the working folder between them."""

    def __init__(self, folder: Path, database_url: str, server_url: str) -> None:
        self.cwd = folder
        self.state = folder / ".guide-cwd"
        self.database_url = database_url
        self.port = str(free_port())
        self.server: subprocess.Popen[str] | None = None
        self.server_log = folder / ".uvicorn.log"
        hidden = ("PYTHONPATH", "DATABASE_URL", "VIRTUAL_ENV")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in hidden and not k.startswith(("TENANTRY_", "PYTEST_"))}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env['PATH']}"
        self.env["TENANTRY_TEST_URL"] = server_url  # the guide's pytest: this suite's server

    def run(self, step: Step) -> None:
        command = step.text
        if command.startswith(ALREADY_DONE):
            return
        if command.startswith("export TENANTRY_URL="):
            self.env["TENANTRY_URL"] = self.database_url
            return
        if command.startswith("uvicorn "):
            self.start_server(command, step.expected)
            return
        command = command.replace(f"localhost:{DEFAULT_PORT}", f"localhost:{self.port}")
        script = f"{command}\nstatus=$?\npwd > {shlex.quote(str(self.state))}\nexit $status\n"
        proc = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180,
                              check=False)
        assert proc.returncode == 0, f"$ {command}\nexit {proc.returncode}\n{proc.stdout}"
        self.cwd = Path(self.state.read_text().strip())
        missing = missing_lines(step.expected, proc.stdout)
        assert not missing, f"$ {command}\nnot printed: {missing}\n{proc.stdout}"

    def start_server(self, command: str, expected: list[str]) -> None:
        assert self.server is None, "one uvicorn at a time"
        log = self.server_log.open("w")
        self.server = subprocess.Popen(
            ["bash", "-c", f"exec {command} --port {self.port}"], cwd=self.cwd, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while "Application startup complete" not in self.server_log.read_text():
            assert self.server.poll() is None, f"$ {command}\n{self.server_log.read_text()}"
            assert time.monotonic() < deadline, f"$ {command}\n{self.server_log.read_text()}"
            time.sleep(0.1)
        shown = [line.replace(DEFAULT_PORT, self.port) for line in expected]
        missing = missing_lines(shown, self.server_log.read_text())
        assert not missing, f"$ {command}\nnot printed: {missing}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=20)


@pytest.fixture
def shell(tmp_path: Path, database_url: str, pg_url: str) -> Iterator[Shell]:
    runner = Shell(tmp_path, database_url, pg_url)
    yield runner
    runner.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the guide calls its app with curl")
def test_the_guide_runs(shell: Shell) -> None:
    for step in guide_steps():
        if step.kind == "command":
            shell.run(step)
        elif step.kind == "file":
            target = shell.cwd / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.text, encoding="utf-8")
        else:
            target = shell.cwd / step.path
            target.write_text(apply_diff(target.read_text(), step.text), encoding="utf-8")
    assert shell.server is not None  # the app ran


def test_the_guide_covers_the_whole_flow() -> None:
    """From an empty folder to tests: removing a step from the guide fails here."""
    found = commands()
    wanted = [
        "tenantry init --fastapi",
        "export TENANTRY_URL=",
        "tenantry revision --autogenerate -m \"shared tables\" --shared",
        "tenantry revision --autogenerate -m \"tenant tables\"",
        "tenantry migrate",
        "tenantry create acme",
        "tenantry create globex",
        "uvicorn app.main:app",
        "curl ",
        "tenantry revision --autogenerate -m",
        "tenantry migrate",
        "tenantry status",
        "pytest",
    ]
    position = 0
    for want in wanted:
        later = [i for i, command in enumerate(found) if i >= position and
                 command.startswith(want)]
        assert later, f"the guide has no {want!r} after step {position}: {found}"
        position = later[0] + 1
    kinds = {(step.kind, step.path) for step in guide_steps()}
    assert {("file", "tests/test_app.py"), ("diff", "app/models.py")} <= kinds


def test_the_guide_installs_extras_that_exist() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    installs = [command for command in commands() if command.startswith("pip install ")]
    assert installs, "the guide says what to install"
    for command in installs:
        named = re.findall(r"tenantry\[([^\]]+)\]", command)
        assert named, command
        for extra in ",".join(named).split(","):
            assert extra.strip() in extras, f"{command}: no extra {extra!r}"

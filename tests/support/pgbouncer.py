"""Start PgBouncer (transaction pooling, a tiny pool) in front of the test server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

#: PgBouncer refuses to run as root; the embedded server's OS user is used instead.
UNPRIVILEGED_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def pgbouncer(server_url: str, pool_size: int = 2) -> Iterator[sa.URL]:
    """Run PgBouncer for ``server_url``'s server; yields the URL of the same database via it."""
    program = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(program).exists():
        raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    url = sa.make_url(server_url)
    host = str(url.query.get("host") or url.host or "127.0.0.1")
    server_port = url.port or 5432
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-pgbouncer-"))
    user = url.username or "postgres"
    # trust for clients; the password (if any) is what PgBouncer sends to the server
    (workdir / "users.txt").write_text(f'"{user}" "{url.password or ""}"\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={server_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmin_pool_size = 0\n"
        "reserve_pool_size = 0\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {workdir / 'pgbouncer.log'}\npidfile =\n"
    )
    command = [program, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        shutil.chown(workdir, UNPRIVILEGED_USER)
        for f in workdir.iterdir():
            shutil.chown(f, UNPRIVILEGED_USER)
        command = ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (workdir / "pgbouncer.log")
                    raise RuntimeError(
                        f"pgbouncer did not start: {proc.stdout.read() if proc.stdout else ''}"
                        f"{log.read_text() if log.exists() else ''}"
                    ) from None
                time.sleep(0.05)
        yield sa.URL.create(
            "postgresql+psycopg", username=user, host="127.0.0.1", port=port,
            database=url.database,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)

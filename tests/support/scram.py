"""Test support: make a test server demand SCRAM passwords from login-mode tenant roles."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

#: Tenant prefixes of login-mode tests start with this; the server asks such roles for a
#: password (every other role keeps the server's own rules).
PREFIX_START = "ul"
_RULES = "local all /^ul scram-sha-256\nhost all /^ul all scram-sha-256\n"


def require_scram(url: str | sa.URL) -> bool:
    """Put the rules first in the ``pg_hba.conf`` of the (superuser) ``url``'s server, reload,
    and wait until a wrong password is refused. ``False``: the file is not ours to write (an
    external test server), passwords may go unchecked there."""
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    probe = f"{PREFIX_START}_probe_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            hba = conn.exec_driver_sql("SHOW hba_file").scalar_one()
            if not os.access(hba, os.W_OK):
                return False
            text = Path(hba).read_text()
            if not text.startswith(_RULES):
                Path(hba).write_text(_RULES + text)
            conn.exec_driver_sql("SELECT pg_reload_conf()")
            conn.exec_driver_sql(f"CREATE ROLE {probe} LOGIN PASSWORD 'right'")
        wrong = admin.url.set(username=probe, password="wrong")
        deadline = time.monotonic() + 10
        while True:  # the reload is asynchronous: poll until the new rules apply
            try:
                sa.create_engine(wrong, poolclass=NullPool).connect().close()
            except sa.exc.OperationalError as exc:
                assert "password authentication failed" in str(exc)
                return True
            assert time.monotonic() < deadline, "pg_hba.conf reload not seen"
            time.sleep(0.05)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {probe}")
        admin.dispose()

"""What the console tests share: a token, a small fleet with a failed and a suspended tenant."""

from __future__ import annotations

import socket

import sqlalchemy as sa

from tenantry import Tenancy
from tenantry.core.registry import tenants

TOKEN = "test-token-0123456789"
#: Text an attacker might get into a registry row (an error message quoting their input).
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def set_row(tenancy: Tenancy, name: str, **values: object) -> None:
    """Write registry columns directly (a state or error the test needs)."""
    with tenancy.engine.begin() as conn:
        conn.execute(sa.update(tenants).where(tenants.c.name == name).values(**values))


def small_fleet(tenancy: Tenancy) -> None:
    """acme and globex ready, initech failed with an error, umbrella suspended."""
    for name in ("acme", "globex", "initech", "umbrella"):
        tenancy.create_tenant(name)
    set_row(tenancy, "initech", state="failed",
            error="relation \"invoices\" already exists (revision 0002)")
    tenancy.suspend_tenant("umbrella", reason="unpaid invoice")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

"""Strict-mode Tenancies for tests, and the cleanup of their cluster-wide roles."""

from __future__ import annotations

import sqlalchemy as sa

from tenantry import Tenancy
from tenantry.strict.roles import role_exists
from tests.app.models import User

from .databases import MIGRATIONS


def strict_tenancy(url: str) -> Tenancy:
    t = Tenancy(
        url,
        strict=True,
        tenant_migrations=MIGRATIONS / "tenant",
        shared_migrations=MIGRATIONS / "shared",
    )
    t.migrate_shared()
    t.grant_shared(User.__table__)  # read: tenant orders reference users
    return t


def drop_roles(t: Tenancy, engine: sa.Engine | None = None) -> None:
    """Roles are cluster-wide: remove this database's so the shared test server stays clean."""
    assert t.strict_roles is not None
    with (engine or t.engine).begin() as conn:
        for role in [*t.strict_roles.roles(conn), t.strict_roles.group(conn)]:
            if role_exists(conn, role):
                conn.exec_driver_sql(f'DROP OWNED BY "{role}" CASCADE')
                conn.exec_driver_sql(f'DROP ROLE "{role}"')

"""Test databases: the migration streams of the test app, databases made and dropped, and
queries on what a server holds (databases, tenant schemas, backends)."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import DatabaseStrategy, Tenancy, make_engine
from tenantry.names import quote
from tests.app.models import Customer

TESTS = Path(__file__).resolve().parents[1]
MIGRATIONS = TESTS / "app" / "migrations"
#: The tenant stream without the FK to the shared ``users`` table (another database).
TENANT_DB = MIGRATIONS / "tenant_db"
#: The fleet tests' tenant stream (seed rows, an enum, a trigger and a view).
FLEET_MIGRATIONS = TESTS / "app" / "fleet_migrations" / "tenant"


def new_database(admin_engine: sa.Engine) -> str:
    """Create an empty database; returns its URL."""
    name = f"tenantry_test_{uuid.uuid4().hex[:12]}"
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
    return admin_engine.url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin_engine: sa.Engine, url: str) -> None:
    name = sa.make_url(url).database
    assert name is not None
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")


def tenant_schemas(t: Tenancy) -> set[str]:
    """Schemas named like tenant schemas (``tenant_...``; not tenantry's template)."""
    with t.engine.connect() as conn:
        query = sa.text(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\_%'")
        return set(conn.scalars(query))


def cleanup(tenancy: Tenancy) -> None:
    """Drop every tenant database and template the Tenancy made."""
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    for info in tenancy.list_tenants():
        tenancy.drop_tenant(info.name, confirm=True)
    strategy.drop_templates()
    tenancy.dispose()


def connections_to(url: str, like: str) -> int:
    """Backends on the server of ``url`` connected to databases named LIKE ``like``."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            query = sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE :p "
                "AND pid <> pg_backend_pid()"
            )
            return int(conn.execute(query, {"p": like}).scalar_one())
    finally:
        engine.dispose()


def database_names(url: str) -> set[str]:
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def backend_pids(url: str, like: str) -> set[int]:
    """Pids of the backends on the server of ``url`` connected to databases LIKE ``like``."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            query = sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname LIKE :p "
                "AND pid <> pg_backend_pid()"
            )
            return set(conn.scalars(query, {"p": like}))
    finally:
        engine.dispose()


def seeded(tenancy: Tenancy, *names: str) -> Tenancy:
    """Create tenants ``names``, each with one customer named ``<tenant>-seed``."""
    for name in names:
        tenancy.create_tenant(name)
        with tenancy.session(name) as s:
            s.add(Customer(name=f"{name}-seed"))
            s.commit()
    return tenancy

"""Fixtures for database-per-tenant tests: a second PostgreSQL server, database Tenancies."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import DatabaseStrategy, Tenancy, make_engine
from tenantry.embedded import server_url

MIGRATIONS = Path(__file__).parent.parent / "app" / "migrations"
#: The tenant stream without the FK to the shared ``users`` table (another database).
TENANT_DB = MIGRATIONS / "tenant_db"


@pytest.fixture(scope="session")
def second_url() -> Iterator[str]:
    """URL of a second server's maintenance database (``TENANTRY_TEST_URL2`` or embedded)."""
    with server_url("TENANTRY_TEST_URL2") as url:
        yield url


def cleanup(tenancy: Tenancy) -> None:
    """Drop every tenant database and template the Tenancy made."""
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    for info in tenancy.list_tenants():
        tenancy.drop_tenant(info.name, confirm=True)
    strategy.drop_templates()
    tenancy.dispose()


@pytest.fixture
def make_tenancy(
    database_url: str, second_url: str
) -> Iterator[Callable[..., Tenancy]]:
    """Build database-strategy (or ``strategy=...``) Tenancies on a fresh main database and
    the second server."""
    made: list[Tenancy] = []

    def make(**options: Any) -> Tenancy:
        options.setdefault("prefix", f"t{uuid.uuid4().hex[:6]}_")  # servers outlive main dbs
        options.setdefault("servers", {"second": second_url})
        options.setdefault("tenant_migrations", TENANT_DB)
        options.setdefault("shared_migrations", MIGRATIONS / "shared")
        options.setdefault("strategy", "database")
        tenancy = Tenancy(database_url, **options)
        tenancy.migrate_shared()
        made.append(tenancy)
        return tenancy

    yield make
    for tenancy in reversed(made):
        cleanup(tenancy)


@pytest.fixture
def dbt(make_tenancy: Callable[..., Tenancy]) -> Tenancy:
    """A database-per-tenant Tenancy with servers ``main`` and ``second``."""
    return make_tenancy()


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

"""Fixtures: one real PostgreSQL server per test session, a fresh database per test.

``TENANTRY_TEST_URL`` points the suite at an existing server (it needs CREATEDB); otherwise an
embedded server is started once for the session (once per xdist worker).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import Tenancy
from tenantry.embedded import server_url
from tests.app import models  # noqa: F401  (registers the test models)
from tests.support.databases import (
    FLEET_MIGRATIONS,
    MIGRATIONS,
    TENANT_DB,
    cleanup,
    drop_database,
    new_database,
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of the test server's maintenance database."""
    with server_url("TENANTRY_TEST_URL") as url:
        yield url


@pytest.fixture(scope="session")
def admin_engine(pg_url: str) -> Iterator[sa.Engine]:
    """AUTOCOMMIT engine on the maintenance database (CREATE/DROP DATABASE)."""
    from tenantry import make_engine

    engine = make_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def database_url(admin_engine: sa.Engine) -> Iterator[str]:
    """A fresh, empty database for one test."""
    url = new_database(admin_engine)
    yield url
    drop_database(admin_engine, url)


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """A private copy of the test migration streams, for tests that add revisions."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def tenancy(database_url: str) -> Iterator[Tenancy]:
    """A schema-per-tenant Tenancy on a fresh database, shared stream migrated."""
    t = Tenancy(
        database_url,
        tenant_migrations=MIGRATIONS / "tenant",
        shared_migrations=MIGRATIONS / "shared",
    )
    t.migrate_shared()
    yield t
    t.dispose()


# -- database per tenant: a second server, database Tenancies --


@pytest.fixture(scope="session")
def second_url() -> Iterator[str]:
    """URL of a second server's maintenance database (``TENANTRY_TEST_URL2`` or embedded)."""
    with server_url("TENANTRY_TEST_URL2") as url:
        yield url


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


# -- fleet migrations: a tenant stream with seed rows, an enum, a trigger and a view --


@pytest.fixture
def fleet_migrations(tmp_path: Path) -> Path:
    """A private copy of the fleet tenant stream (tests may add revisions)."""
    target = tmp_path / "fleet_tenant"
    shutil.copytree(FLEET_MIGRATIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def make_fleet_tenancy(
    database_url: str, fleet_migrations: Path
) -> Iterator[Callable[..., Tenancy]]:
    """Build Tenancy objects on one fresh database with the fleet stream; all disposed after."""
    made: list[Tenancy] = []

    def make(**options: object) -> Tenancy:
        options.setdefault("tenant_migrations", fleet_migrations)
        t = Tenancy(database_url, **options)  # type: ignore[arg-type]
        made.append(t)
        return t

    yield make
    for t in made:
        t.dispose()

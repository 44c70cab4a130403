"""Fixtures: one real PostgreSQL server per test session, a fresh database per test.

``TENANTRY_TEST_URL`` points the suite at an existing server (it needs CREATEDB); otherwise an
embedded server is started once for the session (once per xdist worker).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import Tenancy
from tenantry.embedded import server_url

from .app import models  # noqa: F401  (registers the test models)
from .support.databases import MIGRATIONS, drop_database, new_database


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



"""Fixtures for database-per-tenant tests: a second PostgreSQL server, database Tenancies."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tenantry import Tenancy
from tenantry.embedded import server_url

from ..support.databases import MIGRATIONS, TENANT_DB, cleanup


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



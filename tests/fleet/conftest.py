"""Fixtures of the fleet tests: a tenant stream with seed rows, an enum, a trigger and a view."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenantry import Tenancy

from ..support.databases import FLEET_MIGRATIONS


@pytest.fixture
def fleet_migrations(tmp_path: Path) -> Path:
    """A private copy of the fleet tenant stream (tests may add revisions)."""
    target = tmp_path / "fleet_tenant"
    shutil.copytree(FLEET_MIGRATIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def make_tenancy(database_url: str, fleet_migrations: Path) -> Iterator[Callable[..., Tenancy]]:
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

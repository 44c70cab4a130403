"""Evidence: a state machine over the tenant lifecycle, checked against an in-memory model.

Runs in strict mode, so every step also exercises role creation, renaming and dropping, and
every read checks that another tenant's schema is out of reach.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenantry import (
    Tenancy,
)
from tests.support.lifecycle import run_lifecycle, tally
from tests.support.strict import drop_roles, strict_tenancy


@pytest.fixture
def lifecycle_tenancy(database_url: str) -> Iterator[Tenancy]:
    t = strict_tenancy(database_url)
    yield t
    drop_roles(t)
    t.dispose()


@pytest.mark.slow
def test_lifecycle_matches_the_model(lifecycle_tenancy: Tenancy) -> None:
    run_lifecycle(lifecycle_tenancy)
    tally.publish("lifecycle model")

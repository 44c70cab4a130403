"""Evidence: threads and asyncio tasks hammer several tenants at once (strict mode).

Invariants: every row a session reads belongs to that session's tenant (rows carry their
tenant's name), another tenant's schema is always refused, nothing deadlocks (bounded joins),
and every pooled connection comes back (``checkedout() == 0``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tenantry import Tenancy
from tests.support.soak import TENANTS, run_soak, tally
from tests.support.strict import drop_roles, strict_tenancy


@pytest.fixture
def soak(database_url: str) -> Iterator[Tenancy]:
    t = strict_tenancy(database_url)
    for name in TENANTS:
        t.create_tenant(name)
    yield t
    drop_roles(t)
    t.dispose()


@pytest.mark.slow
def test_soak_threads_and_tasks(soak: Tenancy) -> None:
    run_soak(soak)
    checked_out = soak.engine.pool.checkedout()  # type: ignore[attr-defined]
    tally.add("leaked connections", checked_out)
    assert checked_out == 0
    with soak.engine.connect() as conn:  # and nothing is left behind by the churn
        schemas = conn.execute(
            sa.text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_tmp%'")
        ).scalar()
    assert schemas == 0
    tally.publish("concurrency soak")

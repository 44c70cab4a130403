"""Evidence on database tenants: the lifecycle state machine and the concurrency soak of
tests/lifecycle.py and tests/soak.py, run with ``strategy="database"``
in strict mode, tenants spread over two PostgreSQL servers.

A session reading another tenant's schema must fail: that schema is not in its database
(``ProgrammingError``: schema does not exist), or strict mode's permission error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from tenantry import DatabaseStrategy, Tenancy, TenantIsolationError
from tests.support import lifecycle, soak
from tests.support.databases import database_names

REFUSED = (TenantIsolationError, sa.exc.ProgrammingError)
TENANTS = soak.TENANTS[:4]  # 4 databases over 2 servers (creating one is slow)


@pytest.fixture
def sdb(make_tenancy: Callable[..., Tenancy]) -> Iterator[Tenancy]:
    t = make_tenancy(strict=True)
    yield t
    for info in t.list_tenants():  # roles are cluster-wide: drop the tenants (and roles) first
        t.drop_tenant(info.name, confirm=True)


@pytest.mark.slow
def test_lifecycle_matches_the_model_on_database_tenants(sdb: Tenancy) -> None:
    lifecycle.run_lifecycle(sdb, refused=REFUSED, max_examples=6, steps=25)
    lifecycle.tally.publish("lifecycle model (database tenants)")


@pytest.mark.slow
def test_soak_threads_and_tasks_on_database_tenants(sdb: Tenancy, second_url: str) -> None:
    for name in TENANTS:
        sdb.create_tenant(name)
    strategy = sdb.strategy
    assert isinstance(strategy, DatabaseStrategy)
    assert {i.location.server for i in sdb.list_tenants()} == {"main", "second"}
    soak.run_soak(sdb, seconds=4.0, refused=REFUSED, tenants=TENANTS)
    pools = [sdb.engine.pool, *(slot.pool for slot in strategy.engines._engines.values())]
    checked_out = sum(pool.checkedout() for pool in pools)  # type: ignore[attr-defined]
    soak.tally.add("leaked connections", checked_out)
    assert checked_out == 0
    main_url = sdb.engine.url.render_as_string(hide_password=False)
    for url in (main_url, second_url):  # the churn left no tenant database behind
        assert not {d for d in database_names(url) if d.startswith(f"{sdb.prefix}tmp")}
    soak.tally.publish("concurrency soak (database tenants)")

"""Background jobs keep the tenant: threads, processes, Celery with a real worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry import ContextExecutor, NoTenantSelected, Tenancy, current_tenant, use
from tenantry.jobs import TenantProcessPool
from tests.app.models import Customer


def tenant_and_pid() -> tuple[str | None, int]:
    return current_tenant(), os.getpid()


def count_customers_in_process(url: str) -> tuple[str | None, int]:
    """Runs in a worker process: builds its own Tenancy, routes by the carried tenant."""
    with Tenancy(url) as tenancy, tenancy.session() as session:
        return current_tenant(), session.scalar(sa.select(sa.func.count()).select_from(Customer))


def test_thread_executor_carries_tenant() -> None:
    with use("acme"), ContextExecutor(max_workers=2) as pool:
        futures = [pool.submit(current_tenant) for _ in range(4)]
    assert [f.result() for f in futures] == ["acme"] * 4
    with use("acme"), ThreadPoolExecutor(max_workers=1) as plain:  # the pitfall, for contrast
        assert plain.submit(current_tenant).result() is None


def test_process_pool_carries_tenant_by_name() -> None:
    with TenantProcessPool(max_workers=2) as pool:
        with use("acme"):
            acme = pool.submit(tenant_and_pid)
            mapped = list(pool.map(current_tenant_of, range(3)))
        with use("globex"):
            globex = pool.submit(tenant_and_pid)
        none = pool.submit(tenant_and_pid)
    assert acme.result()[0] == "acme" and acme.result()[1] != os.getpid()
    assert globex.result()[0] == "globex"
    assert none.result()[0] is None
    assert mapped == ["acme"] * 3


def current_tenant_of(_: int) -> str | None:
    return current_tenant()


def test_process_pool_routes_database_work(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    with tenancy.session("acme") as s:
        s.add_all([Customer(name="a1"), Customer(name="a2")])
        s.commit()
    url = tenancy.engine.url.render_as_string(hide_password=False)
    with TenantProcessPool(max_workers=1) as pool:
        with use("acme"):
            acme = pool.submit(count_customers_in_process, url)
        with use("globex"):
            globex = pool.submit(count_customers_in_process, url)
        orphan = pool.submit(count_customers_in_process, url)
        assert acme.result() == ("acme", 2)
        assert globex.result() == ("globex", 0)
        with pytest.raises(NoTenantSelected):
            orphan.result()


# -- Celery ----------------------------------------------------------------------------------

celery = pytest.importorskip("celery")

from tests.support import celery_app as celery_support  # noqa: E402

celery_worker_app = celery_support.celery_worker_app  # the fixture, shared
using = celery_support.using


@pytest.fixture
def celery_app(tenancy: Tenancy, celery_worker_app: Any) -> Iterator[Any]:
    with using(tenancy):
        yield celery_worker_app


def test_celery_task_runs_in_the_sending_tenant(tenancy: Tenancy, celery_app: Any) -> None:
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    add = celery_app.tasks["tenantry_test.add_customer"]
    with use("acme"):
        r1 = add.delay("alice")
    with use("globex"):
        r2 = add.delay("bob")
    with use("acme"):
        r3 = celery_app.send_task("tenantry_test.add_customer", args=["carol"])  # by name too
    assert r1.get(timeout=30) == {"tenant": "acme", "names": ["alice"]}
    assert r2.get(timeout=30) == {"tenant": "globex", "names": ["bob"]}
    assert r3.get(timeout=30) == {"tenant": "acme", "names": ["alice", "carol"]}
    # the worker thread is left with no tenant between tasks
    assert celery_app.tasks["tenantry_test.whoami"].delay().get(timeout=30) is None


def test_celery_task_without_tenant_fails_loudly(tenancy: Tenancy, celery_app: Any) -> None:
    tenancy.create_tenant("acme")
    add = celery_app.tasks["tenantry_test.add_customer"]
    with use("acme"):
        assert add.delay("alice").get(timeout=30)["tenant"] == "acme"
    result = add.delay("nobody")
    with pytest.raises(NoTenantSelected):
        result.get(timeout=30)
    with tenancy.session("acme") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["alice"]


def test_celery_explicit_header_wins(tenancy: Tenancy, celery_app: Any) -> None:
    whoami = celery_app.tasks["tenantry_test.whoami"]
    with use("acme"):
        assert whoami.apply_async(headers={"tenantry_tenant": "globex"}).get(timeout=30) == "globex"


def test_celery_eager_apply_keeps_the_callers_tenant(celery_app: Any) -> None:
    whoami = celery_app.tasks["tenantry_test.whoami"]
    with use("acme"):
        assert whoami.apply().get() == "acme"
    assert whoami.apply().get() is None
    with use("acme"):
        assert whoami.apply(headers={"tenantry_tenant": "globex"}).get() == "globex"

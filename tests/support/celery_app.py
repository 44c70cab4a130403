"""A Celery app on an in-memory broker with a real worker, and the Tenancy its tasks use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry import Tenancy, current_tenant
from tests.app.models import Customer

celery = pytest.importorskip("celery")

_TENANCY: list[Tenancy] = []  # the tenancy tasks use (set by using())


@contextmanager
def using(tenancy: Tenancy) -> Iterator[None]:
    """Let the tasks of :func:`celery_worker_app` use ``tenancy`` within the block."""
    _TENANCY.append(tenancy)
    try:
        yield
    finally:
        _TENANCY.remove(tenancy)


@pytest.fixture(scope="module")
def celery_worker_app() -> Iterator[Any]:
    """A Celery app on an in-memory broker, with a real worker running in a thread."""
    from celery.contrib.testing.worker import start_worker

    from tenantry.jobs import celery as tenantry_celery

    app = celery.Celery(
        "tenantry_test", broker="memory://", backend="cache+memory://", set_as_current=False
    )
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

    @app.task(name="tenantry_test.add_customer", shared=False)  # not in later apps
    def add_customer(name: str) -> dict[str, Any]:
        assert _TENANCY, "no Tenancy set: use tests.support.celery_app.using()"
        with _TENANCY[-1].session() as session:
            session.add(Customer(name=name))
            session.commit()
            names = session.scalars(sa.select(Customer.name).order_by(Customer.name)).all()
        return {"tenant": current_tenant(), "names": list(names)}

    @app.task(name="tenantry_test.whoami", shared=False)
    def whoami() -> str | None:
        return current_tenant()

    tenantry_celery.install()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
            yield app
    finally:
        tenantry_celery.uninstall()

"""Celery fan-out: one message per tenant, filters, beat entries, and tasks refusing a tenant
suspended between the fan-out and their execution (a real worker on an in-memory broker)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry import NoTenantSelected, Tenancy, TenantSuspended, current_tenant, use
from tenantry.errors import ConfigurationError
from tests.app.models import Customer

celery = pytest.importorskip("celery")

from celery.contrib.testing.worker import start_worker  # noqa: E402

from tenantry.jobs import celery as tenantry_celery  # noqa: E402
from tenantry.jobs import fanout  # noqa: E402

NAMES = ("acme", "globex", "initech")
#: Tenants whose task body started (before it touches the database, which would refuse a
#: suspended tenant by itself): a refused task never appears here.
STARTED: list[str | None] = []


@pytest.fixture
def app(tenancy: Tenancy) -> Iterator[Any]:
    """A Celery app on an in-memory broker, registered with ``tenancy``; no worker yet."""
    app = celery.Celery("fanout_test", broker="memory://", backend="cache+memory://",
                        set_as_current=False)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

    @app.task(name="fanout_test.stamp", base=fanout.TenantTask, shared=False)
    def stamp(label: str) -> str | None:
        STARTED.append(current_tenant())
        with fanout.tenancy_of(app).session() as session:
            session.add(Customer(name=label))
            session.commit()
        return current_tenant()

    @app.task(name="fanout_test.plain", shared=False)
    def plain() -> None:
        pass

    for name in NAMES:
        tenancy.create_tenant(name)
    fanout.register(app, tenancy)
    STARTED.clear()
    try:
        yield app
    finally:
        tenantry_celery.uninstall()


def worker(app: Any) -> Any:
    return start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING")


def stamped(tenancy: Tenancy, name: str) -> list[str]:
    with tenancy.engine.connect() as conn:  # suspended tenants too: not routed
        table = sa.table("customers", sa.column("name"), schema=f"tenant_{name}")
        return list(conn.scalars(sa.select(table.c.name).order_by(table.c.name)))


def test_fan_out_sends_one_task_per_usable_tenant(tenancy: Tenancy, app: Any) -> None:
    tenancy.suspend_tenant("initech")
    stamp = app.tasks["fanout_test.stamp"]
    with worker(app):
        result = fanout.fan_out(stamp, tenancy, args=("nightly",))
        assert sorted(result.get(timeout=30)) == ["acme", "globex"]
        picked = fanout.fan_out(stamp, tenancy, ["g*"], kwargs={"label": "by-glob"})
        assert picked.get(timeout=30) == ["globex"]
        chosen = fanout.fan_out(stamp, tenancy, lambda info: info.name.endswith("me"),
                                args=("by-predicate",))
        assert chosen.get(timeout=30) == ["acme"]
        assert fanout.fan_out(stamp, tenancy, ["nobody*"]).get(timeout=30) == []
    assert stamped(tenancy, "acme") == ["by-predicate", "nightly"]
    assert stamped(tenancy, "globex") == ["by-glob", "nightly"]
    assert stamped(tenancy, "initech") == []


def test_a_tenant_suspended_after_the_fan_out_is_refused(tenancy: Tenancy, app: Any) -> None:
    result = fanout.fan_out(app.tasks["fanout_test.stamp"], tenancy, args=("late",))
    tenancy.suspend_tenant("globex", reason="unpaid")  # the messages wait in the broker
    with worker(app):
        acme, globex, initech = result.results
        assert acme.get(timeout=30) == "acme" and initech.get(timeout=30) == "initech"
        with pytest.raises(TenantSuspended):
            globex.get(timeout=30)
    assert sorted(STARTED) == ["acme", "initech"]  # the body never ran for globex
    assert stamped(tenancy, "globex") == []
    assert stamped(tenancy, "acme") == ["late"]


def test_a_beat_entry_fans_out_on_schedule(tenancy: Tenancy, app: Any) -> None:
    stamp = app.tasks["fanout_test.stamp"]
    entry = fanout.beat_entry(stamp, timedelta(minutes=5), ["a*", "i*"], args=("beat",))
    assert entry == {
        "task": "tenantry.fan_out", "schedule": timedelta(minutes=5),
        "args": ("fanout_test.stamp",),
        "kwargs": {"tenants": ["a*", "i*"], "args": ["beat"], "kwargs": {}},
    }
    assert fanout.beat_entry("fanout_test.stamp", 60)["args"] == ("fanout_test.stamp",)
    with worker(app):  # what beat sends when the entry is due
        sent = app.send_task(entry["task"], args=entry["args"], kwargs=entry["kwargs"])
        assert sent.get(timeout=30)["tenants"] == ["acme", "initech"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                stamped(tenancy, "acme") and stamped(tenancy, "initech")):
            time.sleep(0.1)
    assert (stamped(tenancy, "acme"), stamped(tenancy, "globex"),
            stamped(tenancy, "initech")) == (["beat"], [], ["beat"])


def test_tenant_tasks_refuse_without_a_usable_tenant(tenancy: Tenancy, app: Any) -> None:
    stamp = app.tasks["fanout_test.stamp"]
    tenancy.suspend_tenant("globex")
    with use("globex"), pytest.raises(TenantSuspended):
        stamp.apply(args=("eager",)).get()
    with pytest.raises(NoTenantSelected):
        stamp.apply(args=("nobody",)).get()
    with use("acme"):
        assert stamp.apply(args=("eager",)).get() == "acme"
    assert STARTED == ["acme"]
    assert stamped(tenancy, "globex") == [] and stamped(tenancy, "acme") == ["eager"]


def test_misuse_is_refused(tenancy: Tenancy, app: Any) -> None:
    with pytest.raises(ConfigurationError, match="TenantTask"):
        fanout.fan_out(app.tasks["fanout_test.plain"], tenancy)
    with pytest.raises(ConfigurationError, match="glob"):
        fanout.beat_entry(app.tasks["fanout_test.stamp"], 60, lambda info: True)  # type: ignore[arg-type]
    other = celery.Celery("unregistered", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="register"):
        fanout.tenancy_of(other)

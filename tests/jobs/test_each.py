"""Tenancy.each / AsyncTenancy.each: every tenant, selected in the context, with outcomes,
concurrency, suspension and resumable named runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from tenantry import (
    EachOutcome,
    Tenancy,
    TenantSuspended,
    UnknownTenant,
    current_tenant,
)
from tenantry.aio import AsyncTenancy
from tenantry.errors import ConfigurationError
from tenantry.jobs.runs import runs
from tests.app.models import Customer

NAMES = ("acme", "globex", "initech")


@pytest.fixture
def three(tenancy: Tenancy) -> Iterator[Tenancy]:
    for name in NAMES:
        tenancy.create_tenant(name)
    yield tenancy


def add_customer(tenancy: Tenancy, name: str) -> int:
    """Runs inside each(): the implicit session reaches the tenant being visited."""
    with tenancy.session() as session:
        session.add(Customer(name=f"for-{name}-{current_tenant()}"))
        session.commit()
        return len(session.scalars(sa.select(Customer)).all())


def test_each_calls_fn_once_per_tenant_with_it_selected(three: Tenancy) -> None:
    seen: list[EachOutcome] = []
    report = three.each(lambda name: add_customer(three, name), on_outcome=seen.append)
    assert report.ok and report.run is None
    assert [(o.tenant, o.outcome, o.value) for o in report.tenants] == [
        (n, "ok", 1) for n in NAMES]
    assert all(o.duration > 0 and o.error is None for o in report.tenants)
    assert sorted(o.tenant for o in seen) == list(NAMES)
    for name in NAMES:
        with three.session(name) as s:
            assert s.scalars(sa.select(Customer.name)).all() == [f"for-{name}-{name}"]
    assert current_tenant() is None


def test_each_filters_by_glob_and_refuses_unknown_names(three: Tenancy) -> None:
    report = three.each(lambda name: current_tenant(), ["g*", "initech"])
    assert [(o.tenant, o.value) for o in report.tenants] == [("globex", "globex"),
                                                             ("initech", "initech")]
    assert three.each(lambda name: None, ["nobody*"]).tenants == []
    with pytest.raises(UnknownTenant):
        three.each(lambda name: None, ["nobody"])


def test_a_failing_tenant_does_not_stop_the_others(three: Tenancy) -> None:
    def fn(name: str) -> str:
        if name == "globex":
            raise RuntimeError("boom in globex")
        return name

    for jobs in (1, 3):
        report = three.each(fn, jobs=jobs)
        assert not report.ok
        assert [o.tenant for o in report.failed] == ["globex"]
        assert report.failed[0].error == "RuntimeError: boom in globex"
        assert report.counts() == {"ok": 2, "failed": 1, "skipped": 0, "suspended": 0}


def test_suspended_tenants_are_never_called(three: Tenancy) -> None:
    three.suspend_tenant("globex", reason="unpaid")
    called: list[str] = []
    report = three.each(called.append)
    assert called == ["acme", "initech"]
    (outcome,) = report.by_outcome("suspended")
    assert outcome.tenant == "globex" and "unpaid" in (outcome.error or "")
    assert report.ok  # a suspended tenant is not a failure


def test_a_tenant_suspended_during_the_run_is_not_called(three: Tenancy) -> None:
    called: list[str] = []

    def fn(name: str) -> None:
        called.append(name)
        if name == "acme":
            three.suspend_tenant("initech")

    report = three.each(fn)
    assert called == ["acme", "globex"]
    assert [o.outcome for o in report.tenants] == ["ok", "ok", "suspended"]


def test_jobs_run_that_many_calls_at_once(three: Tenancy) -> None:
    """Three calls meet at a barrier: they can only pass it if they run at the same time."""
    barrier = threading.Barrier(3, timeout=20)
    report = three.each(lambda name: barrier.wait() >= 0 and add_customer(three, name), jobs=3)
    assert report.ok, report.failed
    sequential = threading.Barrier(2, timeout=0.5)
    report = three.each(lambda name: sequential.wait(), ["acme", "globex"], jobs=1)
    assert [o.outcome for o in report.tenants] == ["failed", "failed"]  # never met


def test_a_named_run_resumes_where_it_failed(three: Tenancy) -> None:
    calls: list[str] = []
    flaky = {"globex"}

    def fn(name: str) -> None:
        calls.append(name)
        if name in flaky:
            raise RuntimeError("transient")

    first = three.each(fn, run="nightly-2026-12-04", jobs=2)
    assert [o.tenant for o in first.failed] == ["globex"]
    with three.engine.connect() as conn:
        rows = conn.execute(sa.select(runs.c.run, runs.c.tenant, runs.c.outcome, runs.c.error)
                            .order_by(runs.c.tenant)).all()
    assert [tuple(r) for r in rows] == [
        ("nightly-2026-12-04", "acme", "ok", None),
        ("nightly-2026-12-04", "globex", "failed", "RuntimeError: transient"),
        ("nightly-2026-12-04", "initech", "ok", None),
    ]
    flaky.clear()
    calls.clear()
    second = three.each(fn, run="nightly-2026-12-04")
    assert calls == ["globex"]
    assert [(o.tenant, o.outcome) for o in second.tenants] == [
        ("acme", "skipped"), ("globex", "ok"), ("initech", "skipped")]
    assert second.ok
    calls.clear()
    assert three.each(fn, run="nightly-2026-12-04").counts()["skipped"] == 3 and calls == []
    assert three.each(fn, run="nightly-2026-12-05").counts()["ok"] == 3  # another run: all


def test_bad_arguments_are_refused(three: Tenancy) -> None:
    for jobs in (0, -1, True, "2"):
        with pytest.raises(ConfigurationError, match="jobs"):
            three.each(lambda name: None, jobs=jobs)  # type: ignore[arg-type]
    for run in ("", "   ", "a\nb", "x" * 201, 7):
        with pytest.raises(ConfigurationError, match="run"):
            three.each(lambda name: None, run=run)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        three.each("not callable")  # type: ignore[arg-type]

    async def coroutine(name: str) -> None:
        pass

    with pytest.raises(ConfigurationError, match="coroutine function"):
        three.each(coroutine)


def test_async_each_awaits_coroutines_with_the_tenant_selected(three: Tenancy) -> None:
    three.suspend_tenant("initech")

    async def main() -> None:
        async with AsyncTenancy(three) as at:

            async def count(name: str) -> tuple[str | None, int]:
                await asyncio.sleep(0.01)
                async with at.session() as s:
                    s.add(Customer(name=name))
                    await s.commit()
                    return current_tenant(), len((await s.scalars(sa.select(Customer))).all())

            report = await at.each(count, jobs=2, run="r1")
            assert [(o.tenant, o.outcome, o.value) for o in report.tenants] == [
                ("acme", "ok", ("acme", 1)), ("globex", "ok", ("globex", 1)),
                ("initech", "suspended", None)]
            with pytest.raises(TenantSuspended):
                await at.route("initech")
            again = await at.each(count, run="r1")
            assert again.counts() == {"ok": 0, "failed": 0, "skipped": 2, "suspended": 1}
            # a plain function runs on worker threads, with the sync facade's sessions
            plain = await at.each(lambda name: add_customer(three, name), ["acme"])
            assert [(o.tenant, o.value) for o in plain.tenants] == [("acme", 2)]

    asyncio.run(main())


def test_each_reaches_database_tenants(make_tenancy: Callable[..., Tenancy]) -> None:
    """Database per tenant, on two servers: each() routes by the registry as sessions do."""
    dbt = make_tenancy(placement=lambda tenant, load: "second" if tenant == "initech" else "main")
    for name in ("acme", "globex", "initech"):
        dbt.create_tenant(name)
    dbt.suspend_tenant("globex")
    report = dbt.each(lambda name: add_customer(dbt, name), jobs=2, run="db-1")
    assert [(o.tenant, o.outcome, o.value) for o in report.tenants] == [
        ("acme", "ok", 1), ("globex", "suspended", None), ("initech", "ok", 1)]
    with dbt.session("initech") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["for-initech-initech"]
    assert dbt.locate("initech").server == "second"

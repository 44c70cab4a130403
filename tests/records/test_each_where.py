"""each() keeps the tenants whose record matches ``where``, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tenantry import Tenancy, current_tenant
from tenantry.aio import AsyncTenancy
from tests.support.records import record_tenancy


@pytest.fixture
def rt(database_url: str) -> Iterator[Tenancy]:
    t = record_tenancy(database_url)
    for name, plan in (("acme", "pro"), ("globex", "free"), ("initech", "pro")):
        t.create_tenant(name, record={"plan": plan})
    yield t
    t.dispose()


def test_each_where(rt: Tenancy) -> None:
    report = rt.each(lambda name: current_tenant(), where={"plan": "pro"})
    assert {o.tenant: o.value for o in report.tenants} == {"acme": "acme",
                                                            "initech": "initech"}
    report = rt.each(lambda name: name, ["a*", "g*"], where=rt.records.c.plan == "free")
    assert [o.tenant for o in report.tenants] == ["globex"]

    async def main() -> None:
        async with AsyncTenancy(rt) as at:
            async def visit(name: str) -> str:
                return name
            found = await at.each(visit, where={"plan": "pro"})
            assert sorted(o.tenant for o in found.tenants) == ["acme", "initech"]

    asyncio.run(main())

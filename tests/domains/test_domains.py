"""Tenants' domains: the verbs, their rules, and how the registry's changes carry them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tenantry import (
    Domain,
    DomainTaken,
    InvalidDomain,
    Tenancy,
    TenantryError,
    UnknownDomain,
    UnknownTenant,
)
from tenantry.aio import AsyncTenancy
from tenantry.core import generation
from tenantry.domains import DomainMap


def listing(tenancy: Tenancy, tenant: str | None = None) -> list[tuple[str, str, bool]]:
    return [(d.domain, d.tenant, d.primary) for d in tenancy.domains(tenant)]


def generation_of(tenancy: Tenancy) -> int:
    with tenancy.core.store.begin() as conn:
        return generation.read(conn)


@pytest.fixture
def two(tenancy: Tenancy) -> Tenancy:
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    return tenancy


def test_first_domain_is_primary_and_primary_moves_atomically(two: Tenancy) -> None:
    assert two.primary_domain("acme") is None
    assert two.add_domain("acme", "ACME.com") == "acme.com"
    assert two.add_domain("acme", "shop.acme.com") == "shop.acme.com"
    assert two.add_domain("acme", "Bücher.Example.") == "xn--bcher-kva.example"
    assert listing(two, "acme") == [
        ("acme.com", "acme", True), ("shop.acme.com", "acme", False),
        ("xn--bcher-kva.example", "acme", False),
    ]
    assert two.domains("acme")[2].unicode == "bücher.example"
    assert two.add_domain("acme", "www.acme.com", primary=True) == "www.acme.com"
    assert two.primary_domain("acme") == "www.acme.com"
    assert [d.domain for d in two.domains("acme") if d.primary] == ["www.acme.com"]
    two.set_primary_domain("acme", "Shop.Acme.Com")
    assert two.primary_domain("acme") == "shop.acme.com"
    two.add_domain("acme", "acme.com", primary=True)  # one it has: made primary
    assert two.primary_domain("acme") == "acme.com"
    assert two.primary_domain("globex") is None
    assert two.add_domain("globex", "globex.com", primary=False) == "globex.com"
    assert two.primary_domain("globex") == "globex.com"  # its first, whatever was asked
    everything = two.domains()
    assert all(isinstance(d, Domain) for d in everything)
    assert [d.tenant for d in everything] == ["acme"] * 4 + ["globex"]
    assert everything[0] == Domain("acme.com", "acme", True, everything[0].created_at)
    with pytest.raises(Exception):  # noqa: B017 - a frozen dataclass
        everything[0].primary = False  # type: ignore[misc]


def test_adding_again_is_idempotent_and_another_tenants_domain_is_refused(two: Tenancy) -> None:
    two.add_domain("acme", "acme.com")
    two.add_domain("acme", "shop.acme.com")
    before = generation_of(two)
    assert two.add_domain("acme", "Shop.ACME.com.") == "shop.acme.com"
    assert generation_of(two) == before  # nothing changed: no process needs to hear of it
    assert listing(two, "acme") == [("acme.com", "acme", True), ("shop.acme.com", "acme", False)]
    with pytest.raises(DomainTaken, match=r"'acme\.com' belongs to tenant 'acme'") as taken:
        two.add_domain("globex", "ACME.COM", primary=True)
    assert (taken.value.domain, taken.value.tenant) == ("acme.com", "acme")
    assert listing(two, "globex") == []
    assert two.tenant_for_host("acme.com") == "acme"


def test_every_change_moves_the_generation(two: Tenancy) -> None:
    seen = [generation_of(two)]

    def moved() -> bool:
        seen.append(generation_of(two))
        return seen[-1] > seen[-2]

    two.add_domain("acme", "acme.com")
    assert moved()
    two.add_domain("acme", "b.acme.com")
    assert moved()
    two.add_domain("acme", "b.acme.com", primary=True)
    assert moved()
    two.set_primary_domain("acme", "acme.com")
    assert moved()
    two.set_primary_domain("acme", "acme.com")
    assert not moved()
    assert two.remove_domain("b.acme.com")
    assert moved()


def test_removing_the_primary_promotes_the_oldest_remaining(two: Tenancy) -> None:
    for name in ("a.example", "c.example", "b.example"):  # one transaction each: in this order
        two.add_domain("acme", name)
    two.add_domain("acme", "d.example", primary=True)
    assert two.remove_domain("D.example") is True
    assert two.primary_domain("acme") == "a.example"  # the oldest, not the first by name
    assert two.remove_domain("c.example") is True
    assert two.primary_domain("acme") == "a.example"  # removing another keeps the primary
    assert two.remove_domain("a.example") is True
    assert two.primary_domain("acme") == "b.example"
    assert two.remove_domain("b.example") is True
    assert two.primary_domain("acme") is None and two.domains("acme") == []
    assert two.remove_domain("b.example") is False


def test_bad_input_raises_typed_errors(two: Tenancy) -> None:
    two.add_domain("acme", "acme.com")
    with pytest.raises(InvalidDomain, match="port"):
        two.add_domain("acme", "acme.com:8080")
    with pytest.raises(InvalidDomain, match="wildcard"):
        two.add_domain("acme", "*.acme.com")
    with pytest.raises(InvalidDomain):
        two.remove_domain("https://acme.com/")
    with pytest.raises(UnknownTenant):
        two.add_domain("nobody", "nobody.com")
    with pytest.raises(UnknownTenant):
        two.domains("nobody")
    with pytest.raises(UnknownTenant):
        two.primary_domain("nobody")
    with pytest.raises(UnknownDomain, match="not registered to tenant 'globex'") as unknown:
        two.set_primary_domain("globex", "acme.com")
    assert isinstance(unknown.value, LookupError) and isinstance(unknown.value, TenantryError)
    with pytest.raises(UnknownDomain):
        two.set_primary_domain("acme", "other.com")
    assert listing(two) == [("acme.com", "acme", True)]
    assert two.tenant_for_host("acme.com:8080") is None  # not a domain: no tenant
    assert two.tenant_for_host("") is None


def test_the_database_keeps_one_primary_per_tenant_and_one_tenant_per_domain(two: Tenancy) -> None:
    two.add_domain("acme", "acme.com")
    two.add_domain("acme", "b.acme.com")
    with two.engine.connect() as conn:
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text("UPDATE tenantry_domains SET is_primary = true"))
        conn.rollback()
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text("INSERT INTO tenantry_domains (domain, tenant) "
                                 "VALUES ('acme.com', 'globex')"))
        conn.rollback()
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text("INSERT INTO tenantry_domains (domain, tenant) "
                                 "VALUES ('x.com', 'nobody')"))


@pytest.mark.parametrize("kind", ["schema", "database"])
def test_rename_keeps_the_domains_and_drop_removes_them(
    kind: str, request: pytest.FixtureRequest
) -> None:
    tenancy: Tenancy = request.getfixturevalue("tenancy" if kind == "schema" else "dbt")
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    tenancy.add_domain("acme", "acme.com")
    tenancy.add_domain("acme", "shop.acme.com")
    tenancy.add_domain("globex", "globex.com")
    assert tenancy.tenant_for_host("shop.acme.com") == "acme"  # cached now
    tenancy.rename_tenant("acme", "acme2")
    assert listing(tenancy, "acme2") == [("acme.com", "acme2", True),
                                         ("shop.acme.com", "acme2", False)]
    assert tenancy.tenant_for_host("shop.acme.com") == "acme2"  # at once, in this process
    assert tenancy.drop_tenant("acme2", confirm=True)
    assert listing(tenancy) == [("globex.com", "globex", True)]
    assert tenancy.tenant_for_host("shop.acme.com") is None
    assert tenancy.tenant_for_host("acme.com") is None
    tenancy.create_tenant("acme2")
    assert tenancy.domains("acme2") == []
    tenancy.add_domain("acme2", "acme.com")  # free again
    assert tenancy.tenant_for_host("acme.com") == "acme2"


def test_the_map_is_bounded_remembers_misses_and_forgets_on_change(two: Tenancy) -> None:
    hosts = DomainMap(two.core.store, size=3)
    two.add_domain("acme", "acme.com")
    assert hosts.tenant_of("acme.com") == "acme"
    assert hosts.tenant_of("unknown.com") is None
    with two.engine.begin() as conn:  # behind the map's back: it answers from its cache
        conn.execute(sa.text("INSERT INTO tenantry_domains (domain, tenant) "
                             "VALUES ('unknown.com', 'globex')"))
        conn.execute(sa.text("DELETE FROM tenantry_domains WHERE domain = 'acme.com'"))
    assert hosts.tenant_of("unknown.com") is None  # the miss is remembered
    assert hosts.tenant_of("acme.com") == "acme"
    for n in range(5):
        assert hosts.tenant_of(f"h{n}.example") is None
        assert len(hosts) <= 3
    assert hosts.tenant_of("unknown.com") == "globex"  # forgotten (least recently used)
    assert hosts.tenant_of("acme.com") is None
    hosts.clear()
    assert len(hosts) == 0
    with pytest.raises(ValueError):
        DomainMap(two.core.store, size=0)


def test_the_tenancys_map_forgets_at_once_what_this_process_changes(two: Tenancy) -> None:
    two.core.store.freshness.interval = 3600.0  # other processes' changes: not in this test
    assert two.tenant_for_host("acme.com") is None
    two.add_domain("acme", "acme.com")
    assert two.tenant_for_host("acme.com") == "acme"
    assert two.remove_domain("acme.com")
    assert two.tenant_for_host("acme.com") is None
    two.add_domain("globex", "acme.com")
    assert two.tenant_for_host("ACME.com.") == "globex"
    assert two.tenant_for_host("acme.com") == "globex"
    assert len(two.domain_map) == 2  # hosts as asked: each spelling once


def test_another_process_sees_changes_within_the_interval(database_url: str,
                                                          two: Tenancy) -> None:
    other = Tenancy(database_url)  # a second process: its own caches
    try:
        other.core.store.freshness.interval = 0.05
        two.add_domain("acme", "acme.com")
        assert other.tenant_for_host("acme.com") == "acme"
        assert other.tenant_for_host("globex.com") is None
        two.remove_domain("acme.com")
        two.add_domain("globex", "acme.com")
        two.add_domain("globex", "globex.com")
        time.sleep(0.1)
        assert other.tenant_for_host("acme.com") == "globex"
        assert other.tenant_for_host("globex.com") == "globex"
        two.rename_tenant("globex", "initech")
        time.sleep(0.1)
        assert other.tenant_for_host("globex.com") == "initech"
        other.add_domain("acme", "acme.org")  # and the other way round
        two.core.store.freshness.interval = 0.05
        time.sleep(0.1)
        assert two.tenant_for_host("acme.org") == "acme"
    finally:
        other.dispose()


def test_a_map_that_is_never_told_stays_stale(database_url: str, two: Tenancy) -> None:
    """What the test above relies on: without a moved generation, answers are cached."""
    other = Tenancy(database_url)
    try:
        other.core.store.freshness.interval = 0.05
        two.add_domain("acme", "acme.com")
        assert other.tenant_for_host("acme.com") == "acme"
        with two.engine.begin() as conn:  # no generation bump
            conn.execute(sa.text("DELETE FROM tenantry_domains"))
        time.sleep(0.1)
        assert other.tenant_for_host("acme.com") == "acme"
    finally:
        other.dispose()


def test_concurrent_claims_of_one_domain_give_it_to_one_tenant(two: Tenancy) -> None:
    names = ["acme", "globex"] * 4
    start = threading.Barrier(len(names))
    outcomes: list[str] = []

    def claim(tenant: str) -> None:
        start.wait()
        try:
            two.add_domain(tenant, "contested.com", primary=True)
            outcomes.append(tenant)
        except DomainTaken as exc:
            outcomes.append(f"taken:{exc.tenant}")

    threads = [threading.Thread(target=claim, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (owner,) = [d.tenant for d in two.domains()]
    assert sorted(outcomes) == sorted([owner] * 4 + [f"taken:{owner}"] * 4)


def test_concurrent_primary_changes_leave_one_primary(two: Tenancy) -> None:
    names = [f"d{n}.example" for n in range(8)]
    start = threading.Barrier(len(names))
    failures: list[BaseException] = []

    def add(name: str) -> None:
        start.wait()
        try:
            two.add_domain("acme", name, primary=True)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sum(d.primary for d in two.domains("acme")) == 1
    assert len(two.domains("acme")) == 8


def test_async_verbs(two: Tenancy) -> None:
    async def main(run: Callable[..., object] = asyncio.run) -> None:
        aio = AsyncTenancy(two)
        assert await aio.add_domain("acme", "Acme.com") == "acme.com"
        assert await aio.add_domain("acme", "b.acme.com", primary=True) == "b.acme.com"
        assert await aio.primary_domain("acme") == "b.acme.com"
        await aio.set_primary_domain("acme", "acme.com")
        assert [d.domain for d in await aio.domains("acme")] == ["acme.com", "b.acme.com"]
        assert await aio.tenant_for_host("b.acme.com") == "acme"
        assert await aio.remove_domain("b.acme.com") is True
        assert await aio.tenant_for_host("b.acme.com") is None
        assert two.tenant_for_host("acme.com") == "acme"  # the admin Tenancy's cache
        await aio.dispose()

    asyncio.run(main())


def test_an_answer_read_across_a_change_is_not_remembered(two: Tenancy) -> None:
    two.add_domain("acme", "acme.com")

    class ChangedMeanwhile(DomainMap):
        def _read(self, host: str) -> str | None:
            found = super()._read(host)
            self.clear()  # as a change committing in another thread between read and store
            return found

    hosts = ChangedMeanwhile(two.core.store)
    assert hosts.tenant_of("acme.com") == "acme"
    assert len(hosts) == 0


def test_a_registry_made_before_domains_gets_the_table(database_url: str, two: Tenancy) -> None:
    with two.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE tenantry_domains"))
    older = Tenancy(database_url)  # as a process of the new version meeting an older registry
    try:
        assert older.add_domain("acme", "acme.com") == "acme.com"
        assert older.tenant_for_host("acme.com") == "acme"
    finally:
        older.dispose()

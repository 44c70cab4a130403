"""The concurrency soak of the evidence tests: threads and asyncio tasks on several tenants.

Invariants: every row a session reads belongs to that session's tenant (rows carry their
tenant's name), another tenant's schema is always refused, nothing deadlocks (bounded joins),
and every pooled connection comes back (``checkedout() == 0``).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest
import sqlalchemy as sa

from tenantry import Tenancy, TenantIsolationError
from tenantry.names import quote
from tests.app.models import Customer
from tests.support.evidence import Tally

TENANTS = [f"s{i}" for i in range(6)]
SECONDS = 8.0
tally = Tally()


def one_operation(
    t: Tenancy,
    rng: random.Random,
    worker: str,
    refused: tuple[type[BaseException], ...] = (TenantIsolationError,),
    tenants: list[str] = TENANTS,
) -> None:
    tenant = rng.choice(tenants)
    op = rng.choices(["write", "read", "spy", "churn", "migrate"], [4, 4, 1, 1, 1])[0]
    tally.add("operations")
    if op == "write":
        with t.session(tenant) as s:
            s.add_all(Customer(name=f"{tenant}:{worker}") for _ in range(rng.randint(1, 3)))
            s.commit()
    elif op == "read":
        with t.session(tenant) as s:
            names = s.scalars(sa.select(Customer.name)).all()
        assert all(n.split(":")[0] == tenant for n in names), (tenant, set(names))
        tally.add("rows checked", len(names))
    elif op == "spy":
        other = t.get_tenant(rng.choice([n for n in tenants if n != tenant])).schema
        with t.session(tenant) as s, pytest.raises(refused):
            s.execute(sa.text(f"SELECT name FROM {quote(other)}.customers")).all()  # noqa: S608
        tally.add("cross-tenant reads refused")
    elif op == "churn":  # a short-lived tenant of this worker: create, use, drop
        temp = f"tmp_{worker}"
        t.create_tenant(temp)
        with t.session(temp) as s:
            s.add(Customer(name=f"{temp}:x"))
            s.commit()
            assert s.scalars(sa.select(Customer.name)).all() == [f"{temp}:x"]
        tally.add("rows checked")
        assert t.drop_tenant(temp, confirm=True)
    else:
        assert t.migrate_tenant(tenant).ok


def worker_loop(
    t: Tenancy,
    seed: int,
    deadline: float,
    refused: tuple[type[BaseException], ...] = (TenantIsolationError,),
    tenants: list[str] = TENANTS,
) -> None:
    rng, name = random.Random(seed), f"w{seed}"
    while time.monotonic() < deadline:
        one_operation(t, rng, name, refused, tenants)


def run_soak(
    t: Tenancy,
    seconds: float = SECONDS,
    refused: tuple[type[BaseException], ...] = (TenantIsolationError,),
    tenants: list[str] = TENANTS,
) -> None:
    """4 threads and 3 asyncio tasks for ``seconds`` over the (existing) ``tenants``; no error,
    no stuck worker, a clean doctor. The caller checks pools and leftovers (per strategy)."""
    deadline = time.monotonic() + seconds
    errors: list[BaseException] = []

    def guarded(seed: int) -> None:
        try:
            worker_loop(t, seed, deadline, refused, tenants)
        except BaseException as exc:  # reported below, with the worker's seed
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(4)]
    for th in threads:
        th.start()

    async def tasks() -> None:
        await asyncio.wait_for(
            asyncio.gather(*(asyncio.to_thread(guarded, 100 + i) for i in range(3))),
            timeout=seconds + 60,
        )

    asyncio.run(tasks())
    for th in threads:
        th.join(timeout=60)
        assert not th.is_alive(), "a worker is stuck (deadlock?)"
    assert not errors, errors[:3]
    assert t.doctor().ok
    tally.add("workers", 7)

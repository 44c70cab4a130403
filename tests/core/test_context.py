import asyncio
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

import tenantry
from tenantry import ContextExecutor, InvalidTenantName, carry, current_tenant, run_in_thread, use


def test_use_sets_and_restores() -> None:
    assert current_tenant() is None
    with use("acme"):
        assert current_tenant() == "acme"
        with use("globex"):
            assert current_tenant() == "globex"
        assert current_tenant() == "acme"
    assert current_tenant() is None


def test_use_validates_name() -> None:
    with pytest.raises(InvalidTenantName), use("Bad Name"):
        pass


def test_asyncio_tasks_inherit_and_isolate() -> None:
    async def inner(name: str) -> tuple[str | None, str | None]:
        with use(name):
            await asyncio.sleep(0.01)
            child = await asyncio.create_task(asyncio.sleep(0, current_tenant()))
            return current_tenant(), child

    async def main() -> list[tuple[str | None, str | None]]:
        return await asyncio.gather(*(inner(f"t{i}") for i in range(20)))

    assert asyncio.run(main()) == [(f"t{i}", f"t{i}") for i in range(20)]


def test_plain_threads_do_not_inherit_but_helpers_carry() -> None:
    seen: list[str | None] = []
    with use("acme"):
        t = threading.Thread(target=lambda: seen.append(current_tenant()))
        t.start()
        t.join()
        assert run_in_thread(current_tenant) == "acme"
        with ContextExecutor(max_workers=2) as pool:
            assert pool.submit(current_tenant).result() == "acme"
        carried = carry(current_tenant)
    assert seen == [None]
    assert carried() == "acme"  # runs with the tenant captured at wrap time
    assert current_tenant() is None


def test_carry_crosses_processes() -> None:
    with use("acme"):
        job = carry(current_tenant)
    assert pickle.loads(pickle.dumps(job))() == "acme"
    with ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(job).result() == "acme"


def test_public_api_exports() -> None:
    for name in tenantry.__all__:
        assert hasattr(tenantry, name), name


def test_use_accepts_names_that_are_only_reserved_without_a_prefix() -> None:
    with use("pg_x"):  # schema tenant_pg_x is a valid tenant; only "pg_x" itself is reserved
        assert current_tenant() == "pg_x"

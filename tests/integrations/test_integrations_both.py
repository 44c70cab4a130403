"""Issue 6 integrations on both strategies: asyncio, web middleware, export/import, jobs,
pytest plugin. The database strategy places tenants on two servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenantry import NoTenantSelected, Tenancy, UnknownTenant, current_tenant, use
from tenantry.aio import AsyncTenancy
from tenantry.jobs import TenantProcessPool
from tenantry.pgtools import find_program
from tenantry.web import TenantMiddleware, WSGITenantMiddleware, header
from tests.app.models import Customer, Order, Setting
from tests.support import celery_app as celery_support
from tests.support.databases import MIGRATIONS, TENANT_DB, connections_to, database_names

pytest_plugins = ["pytester"]

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(params=["schema", "database"])
def any_tenancy(request: pytest.FixtureRequest) -> Tenancy:
    """A schema Tenancy or a database Tenancy (servers ``main`` and ``second``)."""
    if request.param == "schema":
        return request.getfixturevalue("tenancy")  # type: ignore[no-any-return]
    make: Callable[..., Tenancy] = request.getfixturevalue("make_tenancy")
    return make(template=False)


@pytest.fixture
def seeded(any_tenancy: Tenancy) -> Iterator[Tenancy]:
    for name in ("acme", "globex"):
        any_tenancy.create_tenant(name)
        with any_tenancy.session(name) as s:
            s.add(Customer(name=f"{name}-seed"))
            s.commit()
    yield any_tenancy


# -- asyncio -----------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_sessions_stay_in_their_tenant(seeded: Tenancy, driver: str) -> None:
    tenants = ["acme", "globex", "third", "fourth"]
    for name in tenants[2:]:
        seeded.create_tenant(name)

    async def worker(at: AsyncTenancy, n: int) -> list[str]:
        name = tenants[n % len(tenants)]
        mine = f"{name}:{n}"
        if n % 2:
            async with at.use(name), at.session() as s:
                s.add(Customer(name=mine))
                await s.commit()
                await asyncio.sleep(0.001 * (n % 5))
                seen = list((await s.scalars(sa.select(Customer.name))).all())
        else:
            async with at.session(name) as s:
                s.add(Customer(name=mine))
                await s.flush()
                await asyncio.sleep(0.001 * (n % 5))
                seen = list((await s.scalars(sa.select(Customer.name))).all())
                await s.commit()
        assert mine in seen
        return [row for row in seen if not row.startswith(f"{name}:") and row != f"{name}-seed"]

    async def main() -> None:
        async with AsyncTenancy(seeded, driver=driver) as at:  # type: ignore[arg-type]
            foreign = await asyncio.gather(*(worker(at, n) for n in range(40)))
            assert [row for rows in foreign for row in rows] == []
            async with at.session() as s:
                with pytest.raises(NoTenantSelected, match="customers"):
                    await s.execute(sa.select(Customer))
            async with at.session("acme") as s:
                assert await s.scalar(sa.select(sa.func.count()).select_from(Customer)) == 11

    asyncio.run(main())


# -- web ---------------------------------------------------------------------------------------


def test_asgi_and_wsgi_middleware(seeded: Tenancy) -> None:
    async def names(request: Request) -> JSONResponse:
        with seeded.session() as s:  # the middleware selected the tenant
            return JSONResponse(list(s.scalars(sa.select(Customer.name))))

    async def main() -> None:
        for tenancy in (seeded, AsyncTenancy(seeded)):
            app = TenantMiddleware(Starlette(routes=[Route("/n", names)]), tenancy, header())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
                results = await asyncio.gather(*(
                    http.get("/n", headers={"X-Tenant": ("acme", "globex")[n % 2]})
                    for n in range(20)
                ))
                for n, r in enumerate(results):
                    assert r.json() == [f"{('acme', 'globex')[n % 2]}-seed"]
                assert (await http.get("/n", headers={"X-Tenant": "nope"})).status_code == 404
                assert (await http.get("/n")).status_code == 400
            if isinstance(tenancy, AsyncTenancy):
                await tenancy.dispose()

    asyncio.run(main())

    flask = Flask(__name__)

    @flask.get("/n")
    def flask_names() -> Any:
        with seeded.session() as s:
            return list(s.scalars(sa.select(Customer.name)))

    flask.wsgi_app = WSGITenantMiddleware(flask.wsgi_app, seeded, header())  # type: ignore[method-assign]
    client = flask.test_client()
    assert client.get("/n", headers={"X-Tenant": "globex"}).json == ["globex-seed"]
    assert client.get("/n", headers={"X-Tenant": "acme"}).json == ["acme-seed"]
    assert client.get("/n", headers={"X-Tenant": "nope"}).status_code == 404


# -- export / import ---------------------------------------------------------------------------


def snapshot(tenancy: Tenancy, name: str) -> dict[str, Any]:
    """Every row (in PostgreSQL's text form) and every sequence state of tenant ``name``."""
    schema = tenancy.get_tenant(name).schema
    out: dict[str, Any] = {}
    with tenancy.connection(name) as conn:
        tables = conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> "
            "'alembic_version' ORDER BY 1", (schema,)
        ).scalars().all()
        for table in tables:
            out[table] = conn.exec_driver_sql(
                f'SELECT t::text FROM "{schema}"."{table}" AS t ORDER BY 1'  # noqa: S608
            ).scalars().all()
        for seq in conn.exec_driver_sql(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = %s ORDER BY 1", (schema,)
        ).scalars():
            out[f"seq:{seq}"] = tuple(conn.exec_driver_sql(
                f'SELECT last_value, is_called FROM "{schema}"."{seq}"'  # noqa: S608
            ).one())
    return out


def test_export_import_round_trip(seeded: Tenancy, tmp_path: Path) -> None:
    for name in ("acme", "globex"):
        marker = name.upper()
        with seeded.session(name) as s:
            customers = [Customer(name=f"{marker} {i}", email=f"{i}@{marker}") for i in range(4)]
            s.add_all(customers)
            s.add(Setting(key="theme", value=f"{marker} dark"))
            s.flush()
            s.add_all(Order(customer_id=c.id, total=f"{i}.25") for i, c in enumerate(customers))
            s.execute(sa.delete(Order).where(Order.customer_id == customers[-1].id))
            s.delete(customers[-1])  # a gap in the ids
            s.commit()
    dest = tmp_path / "acme"
    manifest = seeded.export_tenant("acme", dest, pg_dump=True)
    assert {t.name: t.rows for t in manifest.tables} == {
        "customers": 4, "orders": 3, "settings": 2}
    for path in (dest / "tables").iterdir():
        assert "GLOBEX" not in path.read_text() and "globex" not in path.read_text()

    schema = seeded.get_tenant("acme").schema
    major = seeded.engine.dialect.server_version_info[0]  # type: ignore[index]
    pg_restore = str(Path(find_program("pg_dump", major)).with_name("pg_restore"))
    listing = subprocess.run(
        [pg_restore, "--list", str(dest / "tenant.dump")], capture_output=True, text=True,
        check=True,
    ).stdout
    assert f"TABLE DATA {schema} customers" in listing and "globex" not in listing
    sql = subprocess.run(
        [pg_restore, "--data-only", "--file=-", str(dest / "tenant.dump")],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "ACME 0" in sql and "GLOBEX" not in sql

    seeded.import_tenant(dest, "copy")
    assert snapshot(seeded, "copy") == snapshot(seeded, "acme")
    with seeded.session("copy") as s:  # sequences continue where the original's were
        s.add(Customer(name="next"))
        s.flush()
        assert s.scalar(sa.select(sa.func.max(Customer.id))) == 6


# -- jobs --------------------------------------------------------------------------------------


def count_in_process(url: str, options: dict[str, Any]) -> tuple[str | None, int]:
    """Runs in a worker process: builds its own Tenancy, routes by the carried tenant."""
    with Tenancy(url, **options) as tenancy, tenancy.session() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(Customer))
        return current_tenant(), count or 0


def options_of(tenancy: Tenancy, second_url: str) -> dict[str, Any]:
    if tenancy.strategy.kind == "schema":
        return {}
    return {"strategy": "database", "prefix": tenancy.prefix, "servers": {"second": second_url}}


def test_process_pool_selects_the_tenant(seeded: Tenancy, second_url: str) -> None:
    with seeded.session("acme") as s:
        s.add(Customer(name="a2"))
        s.commit()
    url = seeded.engine.url.render_as_string(hide_password=False)
    options = options_of(seeded, second_url)
    with TenantProcessPool(max_workers=1) as pool:
        with use("acme"):
            acme = pool.submit(count_in_process, url, options)
        with use("globex"):
            globex = pool.submit(count_in_process, url, options)
        orphan = pool.submit(count_in_process, url, options)
        assert acme.result() == ("acme", 2)
        assert globex.result() == ("globex", 1)
        with pytest.raises(NoTenantSelected):
            orphan.result()


def test_celery_task_runs_in_the_sending_tenant(
    seeded: Tenancy, celery_worker_app: Any
) -> None:
    with celery_support.using(seeded):
        add = celery_worker_app.tasks["tenantry_test.add_customer"]
        with use("acme"):
            r1 = add.delay("alice")
        with use("globex"):
            r2 = add.delay("bob")
        r3 = add.delay("orphan")
        assert r1.get(timeout=30) == {"tenant": "acme", "names": ["acme-seed", "alice"]}
        assert r2.get(timeout=30) == {"tenant": "globex", "names": ["bob", "globex-seed"]}
        with pytest.raises(NoTenantSelected):
            r3.get(timeout=30)



celery_worker_app = celery_support.celery_worker_app  # the fixture, shared

# -- pytest plugin -----------------------------------------------------------------------------

MYAPP = '''
import os
from tenantry import Tenancy

def make_tenancy(url):
    return Tenancy(url, strategy="database", servers={"second": os.environ["SECOND_URL"]},
                   tenant_migrations=os.environ["TENANT_DB"],
                   shared_migrations=os.environ["SHARED"])
'''

INNER_TESTS = '''
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import current_tenant
from tests.app.models import Customer

COUNT = sa.select(sa.func.count()).select_from(Customer)


@pytest.mark.parametrize("run", [1, 2])
def test_rolled_back(tenantry_session, tenantry_tenancy, run):
    Path(f"prefix-{os.getpid()}.txt").write_text(tenantry_tenancy.prefix)
    assert current_tenant() == "test"
    assert tenantry_tenancy.get_tenant("test").location.database is not None
    assert tenantry_session.scalar(COUNT) == 0
    tenantry_session.add(Customer(name="x"))
    tenantry_session.commit()
    with tenantry_tenancy.session() as other:  # code under test sees the same transaction
        assert other.scalar(COUNT) == 1


def test_make_tenant(tenantry_make_tenant, tenantry_tenancy):
    first, second = tenantry_make_tenant(), tenantry_make_tenant()
    with tenantry_tenancy.session(first) as s:
        s.add(Customer(name="first"))
        s.commit()
    with tenantry_tenancy.session(second) as s:
        assert s.scalar(COUNT) == 0
    servers = {t.location.server for t in tenantry_tenancy.list_tenants()}
    assert servers == {"main", "second"}
'''


PLUGIN_ARGS = ("-p", "no:tenantry", "-p", "tenantry.pytest_plugin", "-p", "no:cacheprovider")


@pytest.fixture
def plugin_project(
    pytester: pytest.Pytester, pg_url: str, second_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.Pytester]:
    """A project whose tenantry_app is a database-strategy Tenancy on two servers."""
    pytester.makepyfile(myapp=MYAPP, test_inner=INNER_TESTS)
    pytester.makeini("[pytest]\ntenantry_app = myapp:make_tenancy\n")
    monkeypatch.setenv("TENANTRY_TEST_URL", pg_url)
    monkeypatch.setenv("SECOND_URL", second_url)
    monkeypatch.setenv("TENANT_DB", str(TENANT_DB))
    monkeypatch.setenv("SHARED", str(MIGRATIONS / "shared"))
    root = SRC.parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), str(root), str(pytester.path)]))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    yield pytester
    prefixes = tuple(p.read_text() for p in pytester.path.glob("prefix-*.txt"))
    assert prefixes and all(p.startswith(("tenant_main_", "tenant_gw")) for p in prefixes)
    for url in (pg_url, second_url):  # every tenant database was dropped
        assert {n for n in database_names(url) if n.startswith(prefixes)} == set()


def test_pytest_plugin_with_database_tenancy(plugin_project: pytest.Pytester) -> None:
    for _ in range(2):  # a second session on the same servers finds nothing left behind
        result = plugin_project.runpytest_subprocess(*PLUGIN_ARGS)
        result.assert_outcomes(passed=3)


@pytest.mark.slow
def test_pytest_plugin_database_tenancy_under_xdist(plugin_project: pytest.Pytester) -> None:
    result = plugin_project.runpytest_subprocess(*PLUGIN_ARGS, "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=6)


# -- asyncio on the database strategy: tenants dropped or moved ---------------------------------


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_tenant_dropped_elsewhere_or_moved(
    dbt: Tenancy, second_url: str, driver: str
) -> None:
    for name in ("acme", "globex"):
        dbt.create_tenant(name)
        with dbt.session(name) as s:
            s.add(Customer(name=f"{name}-seed"))
            s.commit()

    async def names(at: AsyncTenancy, tenant: str) -> list[str]:
        async with at.session(tenant) as s:
            return list((await s.scalars(sa.select(Customer.name))).all())

    async def main() -> None:
        async with AsyncTenancy(dbt, driver=driver) as at:  # type: ignore[arg-type]
            assert await names(at, "acme") == ["acme-seed"]
            assert await names(at, "globex") == ["globex-seed"]
            source = dbt.get_tenant("acme").location.server
            target = "second" if source == "main" else "main"
            moved = await at.move_tenant("acme", to=target)
            assert moved.location.server == target
            assert await names(at, "acme") == ["acme-seed"]
            other = Tenancy(dbt.engine.url, strategy="database", prefix=dbt.prefix,
                            servers={"second": second_url})
            try:  # another process drops one tenant and moves the other back
                other.drop_tenant("globex", confirm=True)
                other.move_tenant("acme", to=source)
            finally:
                other.dispose()
            await at.engine.dispose()  # no pooled connection survives; a new one is refused
            await at._dispose_tenant_engines()
            with pytest.raises(UnknownTenant, match="globex"):
                await names(at, "globex")
            with pytest.raises(UnknownTenant, match="acme"):
                await names(at, "acme")
            assert await names(at, "acme") == ["acme-seed"]  # the registry was read again

    asyncio.run(main())


def test_async_tenant_engines_are_bounded(
    make_tenancy: Callable[..., Tenancy], second_url: str
) -> None:
    tenancy = make_tenancy(template=False, max_engines=2, pool_size=1)
    tenants = ["a", "b", "c", "d"]
    for name in tenants:
        tenancy.create_tenant(name)
        with tenancy.session(name) as s:
            s.add(Customer(name=f"{name}-seed"))
            s.commit()
    tenancy.strategy.engines.dispose()  # type: ignore[attr-defined]  # only async ones below

    async def main() -> None:
        async with AsyncTenancy(tenancy) as at:

            async def one(n: int) -> None:
                name = tenants[n % len(tenants)]
                async with at.session(name) as s:
                    seen = (await s.scalars(sa.select(Customer.name))).all()
                    assert list(seen) == [f"{name}-seed"]
                assert tenancy.engine_metrics().open_engines <= 2

            def backends() -> int:
                """Backends on tenant databases, once closed ones have exited (<= 5 s)."""
                for _ in range(50):
                    count = sum(connections_to(url, f"{tenancy.prefix}%") for url in servers)
                    if count <= 2:
                        break
                    time.sleep(0.1)
                return count

            servers = [tenancy.engine.url.render_as_string(hide_password=False), second_url]
            for n in range(8):  # one after another, round robin: every route evicts
                await one(n)
                assert backends() <= 2  # evicted engines closed their idle connections
            await asyncio.gather(*(one(n) for n in range(12)))
            await one(0)  # evicted engines lending connections are disposed once returned
            assert backends() <= 2

    asyncio.run(main())

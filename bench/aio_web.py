"""Overhead of tenantry's async routing and web middlewares, as ratios to a baseline.

    PYTHONPATH=src python bench/aio_web.py      # embedded PostgreSQL, or TENANTRY_BENCH_URL

Each figure is measured against a baseline run in the same process on the same machine:
* async session: ``tenancy.session(name)`` + query vs a plain ``AsyncSession`` on an engine
  routed by hand with the same ``schema_translate_map`` (tenantry's cost: lookup, guard);
* ASGI: a Starlette endpoint behind ``TenantMiddleware`` vs the bare app (in-process);
* WSGI: a WSGI app behind ``WSGITenantMiddleware`` vs the bare app (werkzeug test client).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import httpx
import sqlalchemy as sa
from _common import server, sized
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.test import Client

from tenantry import TENANT_SCHEMA, Tenancy, current_tenant
from tenantry.aio import AsyncTenancy, async_url
from tenantry.names import quote
from tenantry.web import TenantMiddleware, WSGITenantMiddleware, header

N = int(os.environ.get("BENCH_N", sized(2000, 10)))


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=TENANT_SCHEMA)


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)


ROUNDS = sized(5, 2)
WARM_UP = sized(50, 2)


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n


async def compare(
    base: Callable[[], Awaitable[Any]], ours: Callable[[], Awaitable[Any]]
) -> tuple[float, float]:
    """Best per-call time of each over interleaved rounds (the machine is shared)."""
    await timed(base, WARM_UP)
    await timed(ours, WARM_UP)
    rounds = [
        (await timed(base, N // ROUNDS), await timed(ours, N // ROUNDS)) for _ in range(ROUNDS)
    ]
    return min(r[0] for r in rounds), min(r[1] for r in rounds)


def timed_sync(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def compare_sync(base: Callable[[], Any], ours: Callable[[], Any]) -> tuple[float, float]:
    timed_sync(base, WARM_UP)
    timed_sync(ours, WARM_UP)
    rounds = [(timed_sync(base, N // ROUNDS), timed_sync(ours, N // ROUNDS)) for _ in range(ROUNDS)]
    return min(r[0] for r in rounds), min(r[1] for r in rounds)


def report(label: str, times: tuple[float, float]) -> None:
    base, ours = times
    print(
        f"{label:<34} baseline {base * 1e6:8.1f} us  tenantry {ours * 1e6:8.1f} us"
        f"  ratio {ours / base:5.2f}"
    )


async def bench_async(url: str) -> None:
    tenancy = AsyncTenancy(url, metadata=Base.metadata)
    await tenancy.create_tenant("acme")
    plain = create_async_engine(async_url(url))
    by_hand = plain.execution_options(schema_translate_map={TENANT_SCHEMA: "tenant_acme"})

    async def baseline() -> None:
        async with AsyncSession(by_hand) as s:
            (await s.execute(sa.select(Item.id))).all()

    async def routed() -> None:
        async with tenancy.session("acme") as s:
            (await s.execute(sa.select(Item.id))).all()

    report("async session + SELECT", await compare(baseline, routed))

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(current_tenant() or "-")

    app = Starlette(routes=[Route("/", hello)])
    bare = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x")
    wrapped = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=TenantMiddleware(app, tenancy, header())),
        base_url="http://x",
    )
    headers = {"X-Tenant": "acme"}

    async def get_bare() -> None:
        await bare.get("/", headers=headers)

    async def get_wrapped() -> None:
        await wrapped.get("/", headers=headers)

    report("ASGI request (Starlette, httpx)", await compare(get_bare, get_wrapped))
    await bare.aclose()
    await wrapped.aclose()
    await plain.dispose()
    await tenancy.dispose()


def bench_wsgi(url: str) -> None:
    tenancy = Tenancy(url, metadata=Base.metadata)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [(current_tenant() or "-").encode()]

    bare, wrapped = Client(app), Client(WSGITenantMiddleware(app, tenancy, header()))
    headers = {"X-Tenant": "acme"}
    report(
        "WSGI request (werkzeug client)",
        compare_sync(
            lambda: bare.get("/", headers=headers), lambda: wrapped.get("/", headers=headers)
        ),
    )
    tenancy.dispose()


def main() -> None:
    with server() as root:
        admin = sa.create_engine(sa.make_url(root), isolation_level="AUTOCOMMIT")
        name = "tenantry_bench_aio_web"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
        url = sa.make_url(root).set(database=name).render_as_string(hide_password=False)
        try:
            print(f"{N} iterations each, best of {ROUNDS} interleaved rounds")
            asyncio.run(bench_async(url))
            bench_wsgi(url)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
            admin.dispose()


if __name__ == "__main__":
    main()

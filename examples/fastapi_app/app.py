"""A small FastAPI app on tenantry: the same endpoints serve each tenant its own notes.

The tenant comes from the path (``/t/acme/notes``), the ``X-Tenant`` header, or the subdomain
(``acme.localhost``). No ``from __future__ import annotations`` here: FastAPI reads the
``Annotated`` dependency types at runtime.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from examples.models import Note
from tenantry import current_tenant
from tenantry.aio import AsyncTenancy
from tenantry.web import TenantMiddleware, header, path_prefix, subdomain
from tenantry.web.dependencies import require_tenant, tenant_session


class NoteIn(BaseModel):
    text: str


SEED = {"acme": ["Acme: order more anvils"], "globex": ["Globex: world domination, phase 2"]}


def connect(url: str, driver: str = "psycopg") -> AsyncTenancy:
    """The example's tenancy: tenant tables come from the models (``TenantBase.metadata``,
    the default; an application with migrations passes ``tenant_migrations=...``)."""
    return AsyncTenancy(url, driver=driver)  # type: ignore[arg-type]


async def provision(tenancy: AsyncTenancy) -> None:
    """Create tenants ``acme`` and ``globex`` with one note each (idempotent)."""
    await tenancy.migrate_shared()
    for name, notes in SEED.items():
        await tenancy.create_tenant(name)
        async with tenancy.session(name) as session:
            if await session.scalar(sa.select(sa.func.count()).select_from(Note)) == 0:
                session.add_all(Note(text=text) for text in notes)
                await session.commit()


def create_app(tenancy: AsyncTenancy) -> FastAPI:
    """The FastAPI application, routed per request by tenantry's ASGI middleware."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await tenancy.dispose()

    app = FastAPI(title="tenantry FastAPI example", lifespan=lifespan)
    app.add_middleware(
        TenantMiddleware,
        tenancy=tenancy,
        resolvers=[path_prefix("/t"), header("X-Tenant"), subdomain("localhost")],
        required=lambda request: request.path != "/health",
    )
    Session = Annotated[AsyncSession, Depends(tenant_session(tenancy))]
    Tenant = Annotated[str, Depends(require_tenant)]

    @app.get("/notes")
    async def list_notes(session: Session, tenant: Tenant) -> dict[str, Any]:
        texts = await session.scalars(sa.select(Note.text).order_by(Note.id))
        return {"tenant": tenant, "notes": list(texts)}

    @app.post("/notes", status_code=201)
    async def add_note(note: NoteIn, session: Session, tenant: Tenant) -> dict[str, Any]:
        row = Note(text=note.text)
        session.add(row)
        await session.commit()
        return {"tenant": tenant, "id": row.id, "text": row.text}

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:  # a sync endpoint: Starlette runs it in a threadpool
        return {"tenant": current_tenant()}

    @app.get("/health")
    async def health() -> dict[str, Any]:  # needs no tenant
        return {"ok": True, "tenant": current_tenant()}

    return app

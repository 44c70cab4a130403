"""A small Flask app on tenantry: the same endpoints serve each tenant its own notes.

The tenant comes from the path (``/t/acme/notes``), the ``X-Tenant`` header, or the subdomain
(``acme.localhost``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, request

from examples.models import Note
from tenantry import Tenancy, current_tenant
from tenantry.web import WSGITenantMiddleware, header, path_prefix, subdomain

SEED = {"acme": ["Acme: order more anvils"], "globex": ["Globex: world domination, phase 2"]}


def connect(url: str) -> Tenancy:
    """The example's tenancy: tenant tables come from the models (``TenantBase.metadata``,
    the default; an application with migrations passes ``tenant_migrations=...``)."""
    return Tenancy(url)


def provision(tenancy: Tenancy) -> None:
    """Create tenants ``acme`` and ``globex`` with one note each (idempotent)."""
    tenancy.migrate_shared()
    for name, notes in SEED.items():
        tenancy.create_tenant(name)
        with tenancy.session(name) as session:
            if session.scalar(sa.select(sa.func.count()).select_from(Note)) == 0:
                session.add_all(Note(text=text) for text in notes)
                session.commit()


def create_app(tenancy: Tenancy) -> Flask:
    """The Flask application, routed per request by tenantry's WSGI middleware."""
    app = Flask(__name__)
    app.wsgi_app = WSGITenantMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        tenancy,
        [path_prefix("/t"), header("X-Tenant"), subdomain("localhost")],
        required=lambda req: req.path != "/health",
    )

    @app.get("/notes")
    def list_notes() -> dict[str, Any]:
        with tenancy.session() as session:  # the tenant the middleware selected
            texts = session.scalars(sa.select(Note.text).order_by(Note.id)).all()
        return {"tenant": current_tenant(), "notes": list(texts)}

    @app.post("/notes")
    def add_note() -> tuple[dict[str, Any], int]:
        text = str((request.get_json(silent=True) or {}).get("text", ""))
        with tenancy.session() as session:
            row = Note(text=text)
            session.add(row)
            session.commit()
            return {"tenant": current_tenant(), "id": row.id, "text": text}, 201

    @app.get("/health")
    def health() -> dict[str, Any]:  # needs no tenant
        return {"ok": True, "tenant": current_tenant()}

    return app

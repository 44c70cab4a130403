"""The ``demo`` command: the guided tour of tenantry."""

from __future__ import annotations

import os

import typer

from .exits import handle_errors
from .settings import Settings, admin_url


@handle_errors
def demo(ctx: typer.Context) -> None:
    """Run the demo (on an embedded PostgreSQL unless --url is given)."""
    # Deliberately lazy, not a cycle: importing tenantry.demo declares its Plan and Project
    # models on the shared TenantBase metadata, which must not happen to every command's
    # (or an --app's) tables.
    from ..demo import run

    settings = ctx.ensure_object(Settings)
    url = settings.url or os.environ.get("TENANTRY_URL")
    run(admin_url(url).render_as_string(hide_password=False) if url else None)

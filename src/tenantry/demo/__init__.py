"""A tour of tenantry: ``python -m tenantry.demo [URL]`` or ``tenantry demo``.

Without a URL it starts an embedded PostgreSQL server (``pip install 'tenantry[embedded]'``)
and removes it afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console

from .. import NoTenantSelected, Tenancy, UnknownTenant
from .models import Plan, Project

MIGRATIONS = Path(__file__).parent / "migrations"
TENANTS = {"acme": ["rockets", "anvils"], "globex": ["world domination"], "initech": ["TPS"]}


def run(url: str | None = None, console: Console | None = None) -> None:
    """Run the tour against ``url`` (default: a throw-away embedded server)."""
    say = (console or Console(highlight=False, soft_wrap=True)).print
    server = None
    if url is None:
        from ..embedded import start

        say("starting an embedded PostgreSQL server...")
        server = start()
        url = server.url
    tenancy = Tenancy(
        url, tenant_migrations=MIGRATIONS / "tenant", shared_migrations=MIGRATIONS / "shared"
    )
    try:
        tour(tenancy, say)
    finally:
        tenancy.dispose()
        if server is not None:
            server.stop()


def tour(tenancy: Tenancy, say: Callable[[str], object]) -> None:
    """Create tenants, write and read isolated data, show the errors."""
    say(f"database: {tenancy.engine.url.render_as_string(hide_password=True)}")
    step = tenancy.migrate_shared()
    say(f"shared migrations: {step.before if step else None} -> {step.after if step else None}")

    for name in TENANTS:
        info = tenancy.create_tenant(name)
        say(f"created tenant {name!r} in schema {info.schema} at revision {info.revision}")

    for name, titles in TENANTS.items():
        with tenancy.session(name) as session, session.begin():
            pro = session.get(Plan, 2)
            session.add_all(Project(title=t, plan=pro) for t in titles)
        say(f"{name}: wrote {len(titles)} project(s)")

    for name in TENANTS:
        with tenancy.use(name), tenancy.session() as session:
            rows = session.execute(
                sa.select(Project.title, Plan.name).join(Project.plan).order_by(Project.id)
            ).all()
        say(f"{name} sees only its own rows: {[f'{t} ({p})' for t, p in rows]}")

    with tenancy.session() as session:
        try:
            session.scalars(sa.select(Project)).all()
        except NoTenantSelected as exc:
            say(f"no tenant selected -> NoTenantSelected: {exc}")
        plans = session.scalars(sa.select(Plan.name).order_by(Plan.id)).all()
        say(f"shared tables need no tenant: plans = {plans}")

    try:
        tenancy.session("umbrella")
    except UnknownTenant as exc:
        say(f"a tenant that does not exist -> UnknownTenant: {exc}")

    for status in tenancy.status():
        say(f"status {status.tenant}: {status.revision} (head {status.head}, {status.state})")
    say("done.")

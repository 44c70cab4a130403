'''The files ``tenantry init`` writes: an application's two streams, models and settings.'''

from __future__ import annotations

from dataclasses import dataclass

ALEMBIC_INI = """\
# Alembic configuration of the two tenantry streams (`alembic -n tenant ...`, `-n shared`).
# tenantry runs the streams itself (`tenantry migrate`); Alembic writes their revisions:
#   tenantry revision --autogenerate -m "..." [--shared]

[tenantry]
# The Tenancy the `tenantry` command uses when run from this folder (as --app would name it).
app = {package}.tenancy:tenancy

[tenant]
# Revisions run in each tenant's schema: unqualified names, shared tables as public.name.
script_location = %(here)s/migrations/tenant
prepend_sys_path = %(here)s
path_separator = os

[shared]
# Revisions run in the public schema, once, before the tenants'.
script_location = %(here)s/migrations/shared
prepend_sys_path = %(here)s
path_separator = os

[loggers]
keys = root,sqlalchemy,alembic,plugins

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[logger_plugins]
level = WARNING
handlers =
qualname = alembic.runtime.plugins

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

ENV_PY = '''\
"""Alembic environment of the {stream} stream ({where}).

tenantry runs this stream without this file (`tenantry migrate`); Alembic uses it to write
revisions: `tenantry revision --autogenerate -m "..."{flag}` or
`alembic -n {stream} revision --autogenerate -m "..."`.
"""

from logging.config import fileConfig

from alembic import context

from tenantry.alembic import run_environment
from {package}.tenancy import tenancy

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name)

run_environment(context, tenancy, "{stream}")
'''

WHERE = {
    "tenant": "each tenant's schema: revisions use unqualified names, shared tables as "
              "public.name",
    "shared": "the public schema, migrated once before the tenants",
}

NOTE = {
    "tenant": "Tenant revision: runs in each tenant's schema (unqualified names; shared tables "
              "as\npublic.name).",
    "shared": "Shared revision: runs in the public schema, once, before the tenants'.",
}

SCRIPT_MAKO = '''\
"""${{message}}

{note}

Revision ID: ${{up_revision}}
Revises: ${{down_revision | comma,n}}
Create Date: ${{create_date}}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${{imports if imports else ""}}

revision: str = ${{repr(up_revision)}}
down_revision: str | Sequence[str] | None = ${{repr(down_revision)}}
branch_labels: str | Sequence[str] | None = ${{repr(branch_labels)}}
depends_on: str | Sequence[str] | None = ${{repr(depends_on)}}


def upgrade() -> None:
    ${{upgrades if upgrades else "pass"}}


def downgrade() -> None:
    ${{downgrades if downgrades else "pass"}}
'''

MODELS = '''\
"""The models: shared tables (``public``, one copy) and tenant tables (one copy per tenant)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tenantry import SharedBase, TenantBase


class Plan(SharedBase):
    """A shared table: ``public.plans``, the same rows for every tenant."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)


class Project(TenantBase):
    """A tenant table: every tenant's schema has its own ``projects``."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("public.plans.id"))


class Task(TenantBase):
    """A tenant table referring to another one (unqualified: the same tenant's)."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    title: Mapped[str] = mapped_column(sa.Text)
'''

TENANCY = '''\
"""This application's tenancy: the `tenantry` command (alembic.ini's [tenantry] section),
the migrations' env.py and the application all use ``tenancy``.

The database URL comes from ``TENANTRY_URL`` (or ``DATABASE_URL``).
"""

from __future__ import annotations

import os
from pathlib import Path

{imports}

from . import models  # noqa: F401  (declares the models on TenantBase.metadata)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def database_url() -> str:
    """The database URL from the environment."""
    url = os.environ.get("TENANTRY_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise ConfigurationError("set TENANTRY_URL (or DATABASE_URL) to the database's URL")
    return url


tenancy = {cls}(
    database_url(),
    tenant_migrations=MIGRATIONS / "tenant",
    shared_migrations=MIGRATIONS / "shared",
)
'''

TENANCY_IMPORTS = {
    "Tenancy": "from tenantry import ConfigurationError, Tenancy",
    "AsyncTenancy": "from tenantry import ConfigurationError\n"
                    "from tenantry.aio import AsyncTenancy",
}

FASTAPI_APP = '''\
"""A FastAPI application on tenantry: ``uvicorn {package}.main:app``.

The tenant comes from the ``X-Tenant`` header: ``curl -H 'X-Tenant: acme' localhost:8000/projects``.
"""

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.web import TenantMiddleware, header
from tenantry.web.dependencies import require_tenant, tenant_session

from .models import Project
from .tenancy import tenancy

app = FastAPI(title="{package}")
app.add_middleware(
    TenantMiddleware,
    tenancy=tenancy,
    resolvers=[header("X-Tenant")],
    required=lambda request: request.path != "/health",
)
Session = Annotated[AsyncSession, Depends(tenant_session(tenancy))]
Tenant = Annotated[str, Depends(require_tenant)]


class ProjectIn(BaseModel):
    name: str


@app.get("/projects")
async def list_projects(session: Session, tenant: Tenant) -> dict[str, Any]:
    names = await session.scalars(sa.select(Project.name).order_by(Project.id))
    return {{"tenant": tenant, "projects": list(names)}}


@app.post("/projects", status_code=201)
async def add_project(project: ProjectIn, session: Session, tenant: Tenant) -> dict[str, Any]:
    row = Project(name=project.name)
    session.add(row)
    await session.commit()
    return {{"tenant": tenant, "id": row.id, "name": row.name}}


@app.get("/health")
async def health() -> dict[str, Any]:
    return {{"ok": True}}
'''


@dataclass(frozen=True)
class Layout:
    """What to write: the application package's name, async or not, a FastAPI app or not."""

    package: str = "app"
    use_async: bool = False
    fastapi: bool = False

    def files(self) -> dict[str, str]:
        """Relative path -> content of every file ``tenantry init`` writes."""
        pkg = self.package
        cls = "AsyncTenancy" if self.use_async or self.fastapi else "Tenancy"
        found = {
            "alembic.ini": ALEMBIC_INI.format(package=pkg),
            f"{pkg}/__init__.py": f'"""The {pkg} application."""\n',
            f"{pkg}/models.py": MODELS,
            f"{pkg}/tenancy.py": TENANCY.format(cls=cls, imports=TENANCY_IMPORTS[cls]),
        }
        for stream in ("tenant", "shared"):
            flag = " --shared" if stream == "shared" else ""
            found[f"migrations/{stream}/env.py"] = ENV_PY.format(
                stream=stream, where=WHERE[stream], flag=flag, package=pkg)
            found[f"migrations/{stream}/script.py.mako"] = SCRIPT_MAKO.format(
                note=NOTE[stream])
            found[f"migrations/{stream}/versions/.gitkeep"] = ""
        if self.fastapi:
            found[f"{pkg}/main.py"] = FASTAPI_APP.format(package=pkg)
        return found

    def next_steps(self) -> list[tuple[str, str]]:
        """(command, what it does), in order, for the message after ``init``."""
        steps = [
            ("export TENANTRY_URL=postgresql://USER@HOST/DB", "the database (any URL works)"),
            ("tenantry revision --autogenerate -m 'shared tables' --shared",
             "the shared stream's first revision (public.plans)"),
            ("tenantry revision --autogenerate -m 'tenant tables'",
             "the tenant stream's first revision (projects, tasks: unqualified)"),
            ("tenantry migrate", "the shared stream, then every tenant"),
            ("tenantry create acme", "a tenant, at the head revision"),
        ]
        if self.fastapi:
            steps.append((f"uvicorn {self.package}.main:app",
                          "the app; try curl -H 'X-Tenant: acme' localhost:8000/projects"))
        return steps

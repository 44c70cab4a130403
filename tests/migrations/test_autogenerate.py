"""Autogenerate through ``tenantry.alembic``: an application as ``tenantry init`` writes it,
its revisions written by ``tenantry revision --autogenerate`` (and ``alembic -n ...``), then
migrated and used. Runs the console scripts in the project folder (its models are its own)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantry import TENANT_SCHEMA
from tenantry.alembic import include_object, tenant_metadata
from tests.support.project import new_revision, revisions, run, upgrade_body

#: A second shared table with a foreign key to the first (shared FKs must not churn).
PRICES = '''

class Price(SharedBase):
    __tablename__ = "prices"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("public.plans.id"))
'''
DONE = "    done: Mapped[bool] = mapped_column(default=False)\n"
PLACEHOLDER_DEFAULT = '''

class Note(TenantBase):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(server_default=sa.text("nextval('__tenant__.seq')"))
'''


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Path:
    """``tenantry init`` in a folder, with a second shared table."""
    result = run(tmp_path, None, "tenantry", "init")
    assert result.returncode == 0, result.stderr
    with (tmp_path / "app" / "models.py").open("a") as models:
        models.write(PRICES)
    return tmp_path


def revise(project: Path, url: str, stream: str, message: str) -> str:
    """``tenantry revision --autogenerate`` of ``stream``; the new revision's text."""
    versions = project / "migrations" / stream / "versions"
    before = revisions(versions)
    flags = ["--shared"] if stream == "shared" else []
    result = run(project, url, "tenantry", "revision", "--autogenerate", "-m", message, *flags)
    assert result.returncode == 0, result.stderr
    return new_revision(versions, before)


def test_init_autogenerate_migrate_create(project: Path, database_url: str) -> None:
    shared = revise(project, database_url, "shared", "shared tables")
    body = upgrade_body(shared)
    assert "op.create_table('plans'" in body and "op.create_table('prices'" in body
    assert "schema='public'" in body
    for other in ("projects", "tasks", "tenantry_", TENANT_SCHEMA):
        assert other not in shared

    tenant = revise(project, database_url, "tenant", "tenant tables")
    assert TENANT_SCHEMA not in tenant
    body = upgrade_body(tenant)
    assert "op.create_table('projects'" in body and "op.create_table('tasks'" in body
    assert "schema=" not in body  # unqualified tables
    assert "['projects.id']" in body  # a tenant FK, unqualified
    assert "['public.plans.id']" in body  # a shared FK keeps its schema
    assert "'plans'" not in body.replace("public.plans", "")  # shared tables left out

    migrated = run(project, database_url, "tenantry", "migrate")  # shared, then tenants
    assert migrated.returncode == 0, migrated.stderr
    created = run(project, database_url, "tenantry", "create", "acme")
    assert created.returncode == 0, created.stderr
    assert "tenant_acme" in created.stdout

    # incremental: the tenant revision holds only the new column
    models = project / "app" / "models.py"
    text = models.read_text()
    models.write_text(text.replace(
        '    title: Mapped[str] = mapped_column(sa.Text)\n',
        '    title: Mapped[str] = mapped_column(sa.Text)\n' + DONE))
    body = upgrade_body(revise(project, database_url, "tenant", "task done"))
    assert "op.add_column('tasks', sa.Column('done', sa.Boolean()" in body
    for unwanted in ("create_table", "drop_table", "foreign_key", "drop_constraint"):
        assert unwanted not in body, body
    # the shared stream at its head has nothing to say (tenantry's tables, shared FKs)
    assert "op." not in upgrade_body(revise(project, database_url, "shared", "nothing"))

    migrated = run(project, database_url, "tenantry", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks", "tenant_acme")}
        assert "done" in columns
    finally:
        engine.dispose()


def test_alembic_cli_writes_the_same(project: Path, database_url: str) -> None:
    """``alembic -n tenant revision --autogenerate`` uses the same env.py."""
    versions = project / "migrations" / "tenant" / "versions"
    result = run(project, database_url, "alembic", "-n", "tenant", "revision",
                 "--autogenerate", "-m", "tables")
    assert result.returncode == 0, result.stderr
    tenant = new_revision(versions, set())
    assert "op.create_table('projects'" in tenant and TENANT_SCHEMA not in tenant


def test_tenant_env_refuses_to_migrate(project: Path, database_url: str) -> None:
    result = run(project, database_url, "alembic", "-n", "tenant", "upgrade", "head")
    assert result.returncode != 0
    assert "tenantry migrate" in result.stderr


def test_placeholder_in_a_new_revision_is_refused(project: Path, database_url: str) -> None:
    with (project / "app" / "models.py").open("a") as models:
        models.write(PLACEHOLDER_DEFAULT)
    versions = project / "migrations" / "tenant" / "versions"
    result = run(project, database_url, "tenantry", "revision", "--autogenerate", "-m", "x")
    assert result.returncode == 1
    assert "refused" in result.stderr and "placeholder schema" in result.stderr
    assert "SET LOCAL search_path" in result.stderr  # says why
    assert "Traceback" not in result.stderr
    assert revisions(versions) == set()  # nothing written


def test_placeholder_in_a_revision_file_is_refused(project: Path, database_url: str) -> None:
    (project / "migrations" / "tenant" / "versions" / "h1_by_hand.py").write_text(
        '"""by hand"""\nfrom alembic import op\nrevision = "h1"\ndown_revision = None\n\n\n'
        'def upgrade() -> None:\n    op.execute("UPDATE __tenant__.tasks SET title = \'\'")\n'
    )
    result = run(project, database_url, "tenantry", "revision", "--autogenerate", "-m", "x")
    assert result.returncode == 1
    assert "h1_by_hand.py" in result.stderr and "placeholder schema" in result.stderr


def test_tenant_metadata_unqualifies_tenant_tables() -> None:
    metadata = sa.MetaData(schema=TENANT_SCHEMA)
    sa.Table("plans", metadata, sa.Column("id", sa.Integer, primary_key=True), schema="public")
    sa.Table("projects", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("plan_id", sa.ForeignKey("public.plans.id")),
             sa.Column("state", sa.Enum("open", "done", name="state")))
    sa.Table("tasks", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("project_id", sa.ForeignKey("projects.id")))
    copy = tenant_metadata(metadata)
    assert set(copy.tables) == {"public.plans", "projects", "tasks"}
    targets = {fk.target_fullname for t in copy.tables.values() for fk in t.foreign_keys}
    assert targets == {"public.plans.id", "projects.id"}
    state = copy.tables["projects"].c.state.type
    assert getattr(state, "schema", None) is None
    keep = include_object("tenant")
    assert keep(copy.tables["projects"], "projects", "table", False, None)
    assert not keep(copy.tables["public.plans"], "plans", "table", False, None)
    shared = include_object("shared")
    assert shared(metadata.tables["public.plans"], "plans", "table", False, None)
    assert not shared(metadata.tables[f"{TENANT_SCHEMA}.projects"], "projects", "table",
                      False, None)
    registry = sa.Table("tenantry_tenants", sa.MetaData(), schema="public")
    assert not shared(registry, "tenantry_tenants", "table", True, None)

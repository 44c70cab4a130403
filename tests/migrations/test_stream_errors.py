"""A stream that cannot be what the user meant says so, instead of loading empty or crashing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tenantry import ForeignKeyAcrossDatabases, MigrationError, Tenancy, TenantBase
from tenantry.migrations.stream import MigrationStream
from tests.support.databases import MIGRATIONS, database_names


def test_a_folder_without_versions_is_refused(tmp_path: Path, database_url: str) -> None:
    """e.g. an app's alembic/ folder given as the stream: not an empty stream."""
    (tmp_path / "alembic").mkdir()
    (tmp_path / "alembic" / "env.py").write_text("# an application's env.py\n")
    with pytest.raises(MigrationError, match="has no versions/ folder"):
        MigrationStream(tmp_path / "alembic")
    with pytest.raises(MigrationError, match="has no versions/ folder"):
        Tenancy(database_url, tenant_migrations=tmp_path / "alembic")


def test_a_versions_folder_without_revisions_is_refused(tmp_path: Path) -> None:
    """A package file but no revision: a wrong folder, not an empty stream."""
    (tmp_path / "tenant" / "versions").mkdir(parents=True)
    (tmp_path / "tenant" / "versions" / "__init__.py").write_text("")
    with pytest.raises(MigrationError, match="no revisions in"):
        MigrationStream(tmp_path / "tenant")


def test_a_new_empty_versions_folder_is_a_stream_without_revisions(tmp_path: Path) -> None:
    """A project's first steps (``tenantry init``): the folder exists, no revision yet."""
    (tmp_path / "tenant" / "versions").mkdir(parents=True)
    assert MigrationStream(tmp_path / "tenant").head is None


def test_a_revision_that_does_not_import_is_a_migration_error(tmp_path: Path) -> None:
    stream = tmp_path / "tenant"
    shutil.copytree(MIGRATIONS / "tenant", stream, ignore=shutil.ignore_patterns("__pycache__"))
    (stream / "versions" / "t003_broken.py").write_text(
        "import no_such_module_anywhere\n"
        "revision = 't003'\ndown_revision = 't002'\n"
        "def upgrade():\n    pass\n"
    )
    with pytest.raises(MigrationError, match=r"does not import.*no_such_module_anywhere"):
        MigrationStream(stream)


@pytest.mark.parametrize("provisioning", ["migrations", "auto"])
def test_creating_a_tenant_before_the_shared_stream_says_what_to_run(
    database_url: str, provisioning: str
) -> None:
    """The tenant stream refers to public.users; the shared stream that makes it never ran
    (with a template, building the template is where it fails)."""
    with Tenancy(database_url, tenant_migrations=MIGRATIONS / "tenant",
                 shared_migrations=MIGRATIONS / "shared", provisioning=provisioning) as t:
        with pytest.raises(MigrationError, match=r"run the shared stream first") as caught:
            t.create_tenant("acme")
        assert "public.users" in str(caught.value)
        assert not t.tenant_exists("acme")
        t.migrate_shared()
        assert t.create_tenant("acme").revision is not None

@pytest.mark.parametrize(
    "options",
    [{}, {"template": False}, {"tenant_migrations": None, "metadata": TenantBase.metadata}],
    ids=["template", "no-template", "metadata"],
)
def test_a_database_tenant_referring_to_shared_tables_says_why(
    make_tenancy: Callable[..., Tenancy], second_url: str, options: dict[str, Any]
) -> None:
    """A database tenant has no shared tables in its database: the error says so (as promote
    does: not "run the shared stream", which has run), and no half tenant is left, whether
    the tables are built in the template database, in the tenant's, or from metadata."""
    t = make_tenancy(**{"tenant_migrations": MIGRATIONS / "tenant", **options})
    with pytest.raises(ForeignKeyAcrossDatabases) as caught:
        t.create_tenant("acme")
    assert caught.value.tenant == "acme"
    assert caught.value.keys == [("", "", "public.users")]
    message = str(caught.value)
    assert "'public.users'" in message and "foreign keys cannot cross databases" in message
    assert isinstance(caught.value, MigrationError)
    assert not t.tenant_exists("acme")
    assert t.doctor().findings == []
    assert not [d for d in database_names(second_url) | database_names(str(t.engine.url))
                if d.startswith(f"{t.prefix}acme")]

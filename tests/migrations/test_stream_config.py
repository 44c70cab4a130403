"""Streams given the ways Alembic users keep them: a folder, an alembic.ini (section), an Alembic
Config, a tenantry.Stream; each stream with its own version table; and what cannot load."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from typer.testing import CliRunner

from tenantry import (
    MigrationError,
    RevisionImportError,
    Stream,
    StreamConfigError,
    Tenancy,
)
from tenantry.cli import app
from tenantry.migrations import streamconfig
from tenantry.migrations.stream import MigrationStream
from tenantry.pytest_plugin import clone
from tests.support.databases import MIGRATIONS, drop_database, new_database

TENANT, SHARED = MIGRATIONS / "tenant", MIGRATIONS / "shared"
TENANT_REVISIONS = {"t001", "t002"}


def write_ini(folder: Path, body: str = "") -> Path:
    """An alembic.ini beside copies of the test streams: [alembic] is the tenant stream by
    script_location, [tenant] by version_locations, [shared] the shared one; ``%(here)s``."""
    for name in ("tenant", "shared"):
        shutil.copytree(MIGRATIONS / name, folder / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    ini = folder / "alembic.ini"
    ini.write_text(
        "[alembic]\nscript_location = %(here)s/tenant\n\n"
        "[tenant]\nscript_location = %(here)s/tenant\n"
        "version_locations = %(here)s/tenant/versions\npath_separator = os\n"
        "tenantry_version_table = tenant_versions\n\n"
        "[shared]\nscript_location = %(here)s/shared\n"
        "tenantry_version_table = shared_versions\n" + body
    )
    return ini


def revisions(stream: MigrationStream) -> set[str]:
    return {script.revision for script in stream.script.walk_revisions()}


def tables(url: str, schema: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.scalars(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
            ))
    finally:
        engine.dispose()


# -- each form loads the same revisions --


def test_every_form_loads_the_same_revisions(tmp_path: Path) -> None:
    ini = write_ini(tmp_path)
    config = Config(str(ini), ini_section="tenant")
    forms: dict[str, object] = {
        "folder": TENANT,
        "folder as str": str(TENANT),
        "ini path ([alembic])": ini,
        "Stream(ini, section)": Stream(ini=ini, section="tenant"),
        "Config": config,
        "Stream(script_location)": Stream(script_location=TENANT),
        "Stream(version_locations)": Stream(version_locations=[TENANT / "versions"]),
        "both": Stream(script_location=TENANT, version_locations=[str(TENANT / "versions")]),
    }
    for form, source in forms.items():
        stream = MigrationStream(source)  # type: ignore[arg-type]
        assert (revisions(stream), stream.head) == (TENANT_REVISIONS, "t002"), form
    assert MigrationStream(config).config is config  # the user's Config is the one used


def test_version_table_precedence(tmp_path: Path) -> None:
    """The stream's own (Stream(version_table=), tenantry_version_table in its section) wins
    over the Tenancy-wide default, which wins over alembic_version."""
    ini = write_ini(tmp_path)
    assert MigrationStream(TENANT).version_table == "alembic_version"
    assert MigrationStream(TENANT, version_table="everyone").version_table == "everyone"
    assert MigrationStream(ini, version_table="everyone").version_table == "everyone"
    named = Stream(ini=ini, section="tenant")
    assert MigrationStream(named, version_table="everyone").version_table == "tenant_versions"
    own = Stream(ini=ini, section="tenant", version_table="mine")
    assert MigrationStream(own, version_table="everyone").version_table == "mine"
    config = Config()
    config.set_main_option("script_location", str(SHARED))
    config.set_main_option(streamconfig.VERSION_TABLE_OPTION, "from_config")
    assert MigrationStream(config).version_table == "from_config"


def test_the_recipe_rebuilds_each_stream_from_plain_paths(database_url: str,
                                                          tmp_path: Path) -> None:
    """A Config does not pickle: worker processes get each stream as a Stream of paths, with
    its version table."""
    ini = write_ini(tmp_path)
    with Tenancy(database_url, tenant_migrations=Config(str(ini), ini_section="tenant"),
                 shared_migrations=Stream(ini=ini, section="shared")) as t:
        config = pickle.loads(pickle.dumps(t.config()))
        assert isinstance(config.options["tenant_migrations"], Stream)
        rebuilt = config.build()
        try:
            for old, new in ((t.tenant_stream, rebuilt.tenant_stream),
                             (t.shared_stream, rebuilt.shared_stream)):
                assert old is not None and new is not None
                assert (new.spec, new.version_table, revisions(new)) == (
                    old.spec, old.version_table, revisions(old))
            assert rebuilt.tenant_stream.version_table == "tenant_versions"  # type: ignore[union-attr]
            assert rebuilt.shared_stream.version_table == "shared_versions"  # type: ignore[union-attr]
        finally:
            rebuilt.dispose()


def test_the_pytest_plugin_clone_keeps_each_stream(database_url: str, tmp_path: Path) -> None:
    """tenantry_app naming a Tenancy: the test database's copy has the same streams, each
    with its own version table."""
    ini = write_ini(tmp_path)
    with Tenancy(database_url, tenant_migrations=Stream(ini=ini, section="tenant"),
                 shared_migrations=Config(str(ini), ini_section="shared")) as t, \
            clone(t, database_url) as copy:
        assert copy.tenant_stream.spec == t.tenant_stream.spec  # type: ignore[union-attr]
        assert copy.shared_stream.version_table == "shared_versions"  # type: ignore[union-attr]


# -- per-stream version tables in the database --


def test_each_stream_records_its_revision_in_its_own_table(database_url: str) -> None:
    with Tenancy(
        database_url,
        tenant_migrations=Stream(script_location=TENANT, version_table="tenant_versions"),
        shared_migrations=Stream(script_location=SHARED, version_table="shared_versions"),
        version_table="unused_default",
    ) as t:
        assert t.migrate_shared() is not None
        t.create_tenant("acme")  # through the template (the default provisioning)
        t.core.provisioning = "migrations"
        t.create_tenant("globex")  # by running the stream
        assert t.migrate_all("t001", confirm=True).ok  # down and up, through its table
        assert "UPDATE tenant_acme.tenant_versions" in t.migration_sql("acme")
        assert t.migrate_all().ok and all(s.current for s in t.status())
    public = tables(database_url, "public")
    assert "shared_versions" in public
    assert not {"alembic_version", "unused_default", "tenant_versions"} & public
    for schema in ("tenant_acme", "tenant_globex"):
        found = tables(database_url, schema)
        assert "tenant_versions" in found and "customers" in found, schema
        assert not {"alembic_version", "unused_default", "shared_versions"} & found


def test_templates_of_one_folder_with_other_version_tables_are_not_shared(
    database_url: str, admin_engine: sa.Engine
) -> None:
    """Two databases of one server, one folder, two version tables: each tenant gets its own
    stream's table (templates reused across a server must not mix them)."""
    other_url = new_database(admin_engine)
    try:
        for url, table in ((database_url, "alembic_version"), (other_url, "tenant_versions")):
            with Tenancy(url, tenant_migrations=Stream(script_location=TENANT,
                                                       version_table=table),
                         shared_migrations=SHARED) as t:
                t.migrate_shared()
                t.create_tenant("acme")  # from the template
            assert table in tables(url, "tenant_acme"), table
        assert "alembic_version" not in tables(other_url, "tenant_acme")
    finally:
        drop_database(admin_engine, other_url)


def test_the_tenancy_version_table_is_both_streams_default(database_url: str) -> None:
    with Tenancy(database_url, tenant_migrations=TENANT, shared_migrations=SHARED,
                 version_table="app_versions", provisioning="migrations") as t:
        t.migrate_shared()
        t.create_tenant("acme")
    assert "app_versions" in tables(database_url, "public")
    assert "app_versions" in tables(database_url, "tenant_acme")


# -- what cannot load is an error at construction --


def test_nothing_found_is_an_error_that_says_where(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "alembic").mkdir()
    (tmp_path / "alembic" / "env.py").write_text("# an application's env.py\n")
    (tmp_path / "empty" / "versions").mkdir(parents=True)
    (tmp_path / "empty" / "versions" / "__init__.py").write_text("")
    cases: list[tuple[object, str]] = [
        (tmp_path / "missing", "migration directory .*missing.* does not exist"),
        (tmp_path / "alembic", "alembic.* has no versions/ folder"),
        (tmp_path / "empty", r"no revisions in .*empty.*looked for revision files .*versions"),
        (Stream(version_locations=[tmp_path / "empty" / "versions"]), "no revisions in"),
        (Stream(script_location=TENANT, version_locations=[tmp_path / "nowhere"]),
         "version location .*nowhere.* does not exist"),
    ]
    for source, message in cases:
        with pytest.raises(StreamConfigError, match=message):
            MigrationStream(source)  # type: ignore[arg-type]
    with pytest.raises(StreamConfigError, match="no revisions in"):
        Tenancy(database_url, shared_migrations=tmp_path / "empty")


def test_an_ini_without_what_is_needed(tmp_path: Path) -> None:
    ini = write_ini(tmp_path, "\n[bare]\nsqlalchemy.url = postgresql://nowhere\n")
    (tmp_path / "broken.ini").write_text("script_location = no section header\n")
    cases: list[tuple[object, str]] = [
        (tmp_path / "nothere.ini", "cannot read the Alembic ini file .*nothere.ini"),
        (Stream(ini=tmp_path), "cannot read the Alembic ini file"),  # a folder
        (Stream(ini=ini, section="nosuch"), "has no section 'nosuch'"),
        (Stream(ini=ini, section="bare"), "section 'bare' of .*alembic.ini.* no script_location"),
        (tmp_path / "broken.ini", "cannot parse the Alembic ini file"),
        (Config(), "the Alembic Config has no script_location"),
    ]
    for source, message in cases:
        with pytest.raises(StreamConfigError, match=message):
            MigrationStream(source)  # type: ignore[arg-type]


def test_an_unreadable_version_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """(A permission error, as a chmod would give a user other than root.)"""
    def refuse(path: object) -> list[str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(streamconfig.os, "listdir", refuse)
    with pytest.raises(StreamConfigError, match=r"cannot read version location .*Permission"):
        MigrationStream(TENANT)


def test_bad_version_tables_and_specs() -> None:
    for name in ("", "Versions", "1st", "a;drop", "x" * 64):
        with pytest.raises(StreamConfigError, match="invalid version table"):
            MigrationStream(TENANT, version_table=name)
        with pytest.raises(StreamConfigError, match="invalid version table"):
            Stream(script_location=TENANT, version_table=name)
    with pytest.raises(StreamConfigError, match="not both"):
        Stream(ini="alembic.ini", script_location=TENANT)
    with pytest.raises(StreamConfigError, match="give ini, script_location or version_locations"):
        Stream()
    with pytest.raises(StreamConfigError, match="wants a list"):
        Stream(version_locations=str(TENANT))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("import no_such_module_anywhere\n", ModuleNotFoundError),
        ("raise ValueError('boom at import')\n", ValueError),
        ("def broken(:\n", SyntaxError),
    ],
)
def test_a_revision_that_does_not_import_names_its_file(
    tmp_path: Path, text: str, cause: type[BaseException]
) -> None:
    ini = write_ini(tmp_path)
    bad = tmp_path / "tenant" / "versions" / "t003_broken.py"
    bad.write_text(text + "revision = 't003'\ndown_revision = 't002'\n")
    for source in (tmp_path / "tenant", Stream(ini=ini, section="tenant")):
        with pytest.raises(RevisionImportError) as caught:
            MigrationStream(source)
        assert caught.value.path == str(bad.resolve())
        assert "t003_broken.py" in str(caught.value) and "does not import" in str(caught.value)
        assert isinstance(caught.value.__cause__, cause)
        assert isinstance(caught.value, MigrationError)


# -- the CLI --


def cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        os.chdir(here)
    return result.exit_code, result.stdout, result.stderr


def test_cli_ini_sections_from_env_reach_the_streams(database_url: str, tmp_path: Path) -> None:
    """alembic.ini in the current folder (as the alembic command reads it), sections from
    the environment; migrate, create, downgrade and --dry-run use each stream's table."""
    write_ini(tmp_path)
    env = {"TENANTRY_URL": database_url, "TENANTRY_TENANT_SECTION": "tenant",
           "TENANTRY_SHARED_SECTION": "shared"}
    assert cli(env, "migrate", cwd=tmp_path)[0] == 0
    code, out, err = cli(env, "create", "acme", cwd=tmp_path)
    assert code == 0 and "revision t002" in out, err
    assert cli(env, "downgrade", "t001", "--yes", cwd=tmp_path)[0] == 0
    code, out, err = cli(env, "migrate", "--dry-run", cwd=tmp_path)
    assert code == 0 and "UPDATE tenant_acme.tenant_versions" in out, err
    assert cli(env, "migrate", cwd=tmp_path)[0] == 0
    code, out, err = cli(env, "status", cwd=tmp_path)
    assert code == 0 and "0 behind" in out, err
    assert "shared_versions" in tables(database_url, "public")
    assert "tenant_versions" in tables(database_url, "tenant_acme")
    assert "alembic_version" not in tables(database_url, "tenant_acme")


def test_cli_version_table_flags(database_url: str, tmp_path: Path) -> None:
    """--version-table (here from the environment) for both, --shared-version-table and
    --tenant-version-table for one; an ini path as --tenant-migrations is its [alembic]."""
    ini = write_ini(tmp_path, "\n[plain]\nscript_location = %(here)s/shared\n")
    env = {"TENANTRY_URL": database_url, "TENANTRY_VERSION_TABLE": "app_versions"}
    flags = ["--alembic-ini", str(ini), "--shared-section", "plain", "--shared-version-table",
             "own_versions", "--tenant-migrations", str(TENANT)]
    code, _, err = cli(env, *flags, "migrate")
    assert code == 0, err
    code, _, err = cli(env, *flags, "create", "acme")
    assert code == 0, err
    assert "own_versions" in tables(database_url, "public")
    assert "app_versions" not in tables(database_url, "public")
    assert "app_versions" in tables(database_url, "tenant_acme")
    with Tenancy(database_url, tenant_migrations=TENANT, version_table="app_versions") as t:
        assert t.migrate_all("t001", confirm=True).ok
    tenant = ["--tenant-migrations", str(ini), "--tenant-version-table", "flag_versions"]
    code, out, err = cli(env, *tenant, "migrate", "--dry-run")
    assert code == 0 and "UPDATE tenant_acme.flag_versions" in out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alembic-ini", "alembic.ini"], "needs --tenant-section or --shared-section"),
        (["--tenant-version-table", "v"], "--tenant-version-table without a tenant stream"),
        (["--tenant-migrations", str(TENANT), "--tenant-section", "tenant"], "is a folder"),
        (["--shared-section", "shared"], "cannot read the Alembic ini file 'alembic.ini'"),
        (["--tenant-migrations", str(MIGRATIONS)], "has no versions/ folder"),
    ],
)
def test_cli_stream_options_that_cannot_work(
    database_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = cli({"TENANTRY_URL": database_url}, *args, "status", cwd=tmp_path)
    assert code == 1 and message in " ".join(err.split()), err

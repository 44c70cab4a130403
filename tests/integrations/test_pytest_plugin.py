"""The pytest plugin, exercised on a small project run by ``pytester`` in a subprocess."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SRC = Path(__file__).resolve().parents[2] / "src"

MYAPP = '''
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenantry import TENANT_SCHEMA, Tenancy


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=TENANT_SCHEMA)


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


def make_tenancy(url):
    return Tenancy(url, metadata=Base.metadata)


def add_note(tenancy, text):
    """Code under test: opens its own session and commits."""
    with tenancy.session() as session:
        session.add(Note(text=text))
        session.commit()
'''

INNER_TESTS = '''
import sys

import pytest
import sqlalchemy as sa

from tenantry import current_tenant
from myapp import Note, add_note

COUNT = sa.select(sa.func.count()).select_from(Note)


def test_plugin_is_inert_until_used():
    # no server started, no database driver loaded, so no connection made
    assert "tenantry.embedded" not in sys.modules and "psycopg" not in sys.modules
    assert current_tenant() is None


@pytest.mark.parametrize("run", [1, 2])
def test_commits_are_rolled_back_after_each_test(tenantry_session, tenantry_tenant, run):
    assert current_tenant() == tenantry_tenant == "test"
    assert tenantry_session.scalar(COUNT) == 0
    tenantry_session.add(Note(text="x"))
    tenantry_session.commit()
    assert tenantry_session.scalar(COUNT) == 1


def test_code_under_test_may_commit(tenantry_tenancy, tenantry_session):
    add_note(tenantry_tenancy, "from the service")
    assert tenantry_session.scalars(sa.select(Note.text)).all() == ["from the service"]


def test_nothing_was_left_behind(tenantry_tenancy, tenantry_tenant):
    with tenantry_tenancy.session(tenantry_tenant) as session:
        assert session.scalar(COUNT) == 0


def test_make_tenant(tenantry_make_tenant, tenantry_tenancy):
    first = tenantry_make_tenant()
    second = tenantry_make_tenant("second")
    with tenantry_tenancy.session(first) as session:
        session.add(Note(text="first"))
        session.commit()
    with tenantry_tenancy.session(second) as session:
        assert session.scalar(COUNT) == 0
    assert {first, "second", "test"} == {t.name for t in tenantry_tenancy.list_tenants()}


def test_made_tenants_are_dropped(tenantry_tenancy):
    assert [t.name for t in tenantry_tenancy.list_tenants()] == ["test"]
'''

INNER_PASSED = 7


@pytest.fixture
def project(pytester: pytest.Pytester, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small application with tests using the plugin, pointed at the suite's server."""
    pytester.makepyfile(myapp=MYAPP, test_inner=INNER_TESTS)
    pytester.makeini("[pytest]\ntenantry_app = myapp:make_tenancy\n")
    monkeypatch.setenv("TENANTRY_TEST_URL", pg_url)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), str(pytester.path)]))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester.path


LOAD_EXPLICITLY = ("-p", "no:tenantry", "-p", "tenantry.pytest_plugin")


def test_fixtures_loaded_with_p(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess(*LOAD_EXPLICITLY)
    result.assert_outcomes(passed=INNER_PASSED)


def test_fixtures_loaded_by_entry_point(
    pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution declaring the same entry point as pyproject.toml makes pytest load it."""
    pyproject = (SRC.parent / "pyproject.toml").read_text()
    assert re.search(
        r'\[project\.entry-points\.pytest11\]\s*\ntenantry = "tenantry\.pytest_plugin"', pyproject
    )
    dist = project / "site" / "tenantry_probe-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tenantry-probe\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\ntenantry = tenantry.pytest_plugin\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(dist.parent), os.environ["PYTHONPATH"]]))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=INNER_PASSED)


@pytest.mark.slow
def test_each_xdist_worker_gets_its_own_database(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makepyfile(
        test_worker='''
import os
from pathlib import Path

import sqlalchemy as sa


def test_record_database(tenantry_database_url, tenantry_session):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    Path(f"db-{worker}.txt").write_text(sa.make_url(tenantry_database_url).database)
'''
    )
    result = pytester.runpytest_subprocess(*LOAD_EXPLICITLY, "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2 * (INNER_PASSED + 1))
    names = {p.read_text() for p in project.glob("db-*.txt")}
    assert len(names) == 2 and all(n.startswith("tenantry_test_gw") for n in names)


@pytest.mark.slow
def test_embedded_server_by_default(
    pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENANTRY_TEST_URL")
    result = pytester.runpytest_subprocess(*LOAD_EXPLICITLY, "-k", "rolled_back")
    result.assert_outcomes(passed=2, deselected=INNER_PASSED - 2)


def test_tenantry_app_naming_a_tenancy_is_cloned_onto_the_test_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tenantry import Tenancy
    from tenantry.pytest_plugin import _factory

    migrations = Path(__file__).parents[1] / "app" / "migrations"
    app_tenancy = Tenancy(
        "postgresql://app@db.invalid/prod", prefix="t_", version_table="schema_version",
        tenant_migrations=migrations / "tenant", shared_migrations=migrations / "shared",
    )
    (tmp_path / "prodapp.py").write_text("tenancy = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import prodapp  # type: ignore[import-not-found]

    monkeypatch.setattr(prodapp, "tenancy", app_tenancy, raising=False)
    with _factory("prodapp:tenancy")(database_url) as test_tenancy:
        assert test_tenancy.engine.url.database == database_url.rsplit("/", 1)[1].split("?")[0]
        assert test_tenancy.prefix == "t_" and test_tenancy.metadata is app_tenancy.metadata
        assert test_tenancy.tenant_stream is not None
        assert test_tenancy.tenant_stream.version_table == "schema_version"
        assert test_tenancy.tenant_stream.head == app_tenancy.tenant_stream.head  # type: ignore[union-attr]
        test_tenancy.migrate_shared()
        assert test_tenancy.create_tenant("x").schema == "t_x"


def test_the_pytest_extra_brings_xdist() -> None:
    """``pip install tenantry[pytest]`` is all a project needs for parallel test runs."""
    from importlib.metadata import requires

    pytest_extra = [r for r in requires("tenantry") or []
                    if "extra == 'pytest'" in r.replace('"', "'")]
    assert any(r.startswith("pytest-xdist") for r in pytest_extra), pytest_extra

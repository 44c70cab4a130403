"""docs/testing.md's asyncio section runs as written: its ``conftest.py`` and ``test_notes.py``
blocks in a small project of their own, run by ``pytester`` in a subprocess."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

pytest.importorskip("pytest_asyncio")

ROOT = Path(__file__).resolve().parents[2]
TESTING_MD = ROOT / "docs" / "testing.md"

#: The application the documented tests import: a model and a service that commits.
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


async def add_note(tenancy, tenant, text):
    async with tenancy.session(tenant) as session:
        session.add(Note(text=text))
        await session.commit()
'''

#: Run after the documented tests: what they did was rolled back or dropped.
AFTERWARDS = '''
import sqlalchemy as sa

from myapp import Note


def test_nothing_was_left_behind(tenantry_tenancy, tenantry_tenant):
    assert [t.name for t in tenantry_tenancy.list_tenants()] == [tenantry_tenant]
    with tenantry_tenancy.session(tenantry_tenant) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Note)) == 0
'''


def documented(first_line: str) -> str:
    """The python block of docs/testing.md that starts with ``first_line``."""
    blocks = re.findall(r"```python\n(.*?)```", TESTING_MD.read_text(), re.S)
    found = [b for b in blocks if b.startswith(first_line + "\n")]
    assert len(found) == 1, f"docs/testing.md has no single block starting {first_line!r}"
    return str(found[0])


def test_the_documented_async_tests_pass(
    pytester: pytest.Pytester, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(myapp=MYAPP, test_notes=documented("# test_notes.py"),
                        test_zz_afterwards=AFTERWARDS)
    pytester.makeconftest(documented("# conftest.py"))
    pytester.makeini("[pytest]\ntenantry_app = myapp:make_tenancy\nasyncio_mode = strict\n")
    monkeypatch.setenv("TENANTRY_TEST_URL", pg_url)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(pytester.path)]))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)

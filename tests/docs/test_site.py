"""The documentation site (mkdocs.yml) builds with warnings as errors, and covers the docs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
PUBLIC_MODULES = ["tenantry", "tenantry.aio", "tenantry.web", "tenantry.jobs",
                  "tenantry.alembic", "tenantry.pytest_plugin"]


def test_the_site_builds_strict(tmp_path: Path) -> None:
    """Broken links, pages left out of the nav and bad docstrings fail the build."""
    pytest.importorskip("mkdocstrings", reason="the docs extra: pip install -e '.[docs]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "your-own-app" / "index.html").is_file()
    api = (tmp_path / "api" / "tenantry" / "index.html").read_text()
    assert "tenantry.Tenancy.create_tenant" in api
    assert ":class:<code>" not in api  # docstrings' roles shown as code (docs/hooks/roles.py)
    assert not (tmp_path / "hooks").exists()


def test_the_api_reference_has_every_public_module() -> None:
    documented = {match for page in (DOCS / "api").glob("*.md")
                  for match in re.findall(r"^::: ([\w.]+)$", page.read_text(), re.M)}
    assert set(PUBLIC_MODULES) <= documented

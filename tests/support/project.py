"""An application folder as ``tenantry init`` writes it, driven by the console scripts
(``tenantry``, ``alembic``) in subprocesses: its models must not meet the test models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def console_script(name: str) -> str:
    """The path of an installed console script of this environment."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found is not None, f"the {name} console script is not installed"
    return found


def run(folder: Path, database_url: str | None, program: str, *args: str
        ) -> subprocess.CompletedProcess[str]:
    """``program args`` in ``folder`` with ``TENANTRY_URL`` set to ``database_url``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "TENANTRY_URL", "TENANTRY_APP", "DATABASE_URL")}
    if database_url is not None:
        env["TENANTRY_URL"] = database_url
    return subprocess.run([console_script(program), *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def revisions(folder: Path) -> set[Path]:
    """The revision files of a ``versions/`` folder."""
    return set(folder.glob("*.py"))


def new_revision(folder: Path, before: set[Path]) -> str:
    """The text of the one revision file of ``folder`` not in ``before``."""
    added = revisions(folder) - before
    assert len(added) == 1, sorted(map(str, added))
    return added.pop().read_text()


def upgrade_body(revision: str) -> str:
    """The ``upgrade()`` function of a revision's text."""
    return revision.split("def upgrade()", 1)[1].split("def downgrade()", 1)[0]

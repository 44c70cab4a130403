"""The README's quick start runs as written (against the test server)."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"

SHARED = '''revision = "s1"
down_revision = None
import sqlalchemy as sa
from alembic import op
def upgrade():
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))
'''
TENANT = '''revision = "t1"
down_revision = None
import sqlalchemy as sa
from alembic import op
def upgrade():
    op.create_table("orders", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("public.users.id")))
'''


def test_quick_start_runs(database_url: str, tmp_path: Path) -> None:
    block = re.search(r"## Quick start\n+```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    code = block.group(1).replace("postgresql://app@localhost/app", database_url)
    for stream, text in (("shared", SHARED), ("tenant", TENANT)):
        (tmp_path / "migrations" / stream / "versions").mkdir(parents=True)
        (tmp_path / "migrations" / stream / "versions" / "r1.py").write_text(text)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=os.environ.copy(),
    )
    # the last line of the quick start raises NoTenantSelected on purpose
    assert "tenantry.errors.NoTenantSelected" in proc.stderr, proc.stderr
    assert proc.stdout.startswith("[<__main__.Order object"), proc.stdout

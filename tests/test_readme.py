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


SAAS_PRELUDE = '''
import asyncio
from datetime import date
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column
from tenantry import Tenancy, TenantBase

class Setting(TenantBase):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[str]

class Mailer:
    sent: list[str] = []
    async def send_welcome(self, tenant: str) -> None:
        await asyncio.sleep(0)
        self.sent.append(tenant)

mailer = Mailer()
def send_digest(name: str) -> str:
    return name
url = URL
'''
SAAS_CHECKS = '''
assert mailer.sent == ["acme"]
with tenancy.session("acme") as s:
    assert s.scalar(sa.select(Setting.value)) == "EUR"
info = tenancy.get_tenant("acme")
assert info.record == {"plan": "pro", "paid_until": date(2027, 1, 1)}, info.record
assert tenancy.primary_domain("acme") == "www.acme.com"
assert tenancy.tenant_for_host("acme.com") == "acme"
assert [e.event for e in tenancy.history("acme")][:2] == ["resumed", "suspended"]
print("SAAS OK")
'''


def test_running_a_saas_runs(database_url: str, tmp_path: Path) -> None:
    block = re.search(r"## Running a SaaS\n+```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    code = SAAS_PRELUDE.replace("URL", repr(database_url)) + block.group(1) + SAAS_CHECKS
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0 and "SAAS OK" in proc.stdout, proc.stderr

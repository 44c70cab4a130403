"""Fleet migrations: one more revision on the fleet tenant stream."""

from __future__ import annotations

from pathlib import Path

NEW_REVISION = '''
import os
from alembic import op
revision = "f004"
down_revision = "f003"
def upgrade():
    op.execute("CREATE TABLE notes (body text)")
    op.execute(f"INSERT INTO notes VALUES ('{{os.getpid()}}')")  # which process migrated it
    op.execute("""DO $$ BEGIN
        IF current_schema() LIKE 'tenant_bad%' THEN RAISE EXCEPTION 'bad tenant'; END IF;
        PERFORM pg_sleep({sleep}); END $$""")
def downgrade():
    op.execute("DROP TABLE notes")
'''


def add_revision(directory: Path, sleep: float = 0.0) -> None:
    (directory / "versions" / "f004_notes.py").write_text(NEW_REVISION.format(sleep=sleep))

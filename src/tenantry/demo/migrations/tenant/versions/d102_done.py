"""demo tenant: projects.done"""

import sqlalchemy as sa
from alembic import op

revision = "d102"
down_revision = "d101"


def upgrade() -> None:
    op.add_column("projects", sa.Column("done", sa.Boolean, nullable=False, server_default="f"))


def downgrade() -> None:
    op.drop_column("projects", "done")

"""demo tenant: projects"""

import sqlalchemy as sa
from alembic import op

revision = "d101"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("public.plans.id")),
    )


def downgrade() -> None:
    op.drop_table("projects")

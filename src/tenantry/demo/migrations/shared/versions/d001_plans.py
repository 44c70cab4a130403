"""demo shared: plans"""

import sqlalchemy as sa
from alembic import op

revision = "d001"
down_revision = None


def upgrade() -> None:
    plans = op.create_table(
        "plans", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text)
    )
    op.bulk_insert(plans, [{"id": 1, "name": "free"}, {"id": 2, "name": "pro"}])


def downgrade() -> None:
    op.drop_table("plans")

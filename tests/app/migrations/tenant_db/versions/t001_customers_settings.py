"""tenant: customers and settings (with a seed row)"""

import sqlalchemy as sa
from alembic import op

revision = "t001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO settings (key, value) VALUES ('currency', 'EUR')")


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_table("customers")

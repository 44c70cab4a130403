"""tenant (database per tenant): orders; customers.email added, customers.name widened"""

import sqlalchemy as sa
from alembic import op

revision = "t002"
down_revision = "t001"


def upgrade() -> None:
    op.add_column("customers", sa.Column("email", sa.Text))
    op.alter_column("customers", "name", type_=sa.Text)
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("user_id", sa.Integer),  # no FK: users live in the main database
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orders")
    op.alter_column("customers", "name", type_=sa.String(50))
    op.drop_column("customers", "email")

"""fleet fixture: one more column and seed row"""

import sqlalchemy as sa
from alembic import op

revision = "f003"
down_revision = "f002"


def upgrade() -> None:
    op.add_column("customers", sa.Column("email", sa.Text, comment="contact"))
    op.execute("INSERT INTO customers (name, mood) VALUES ('seed-c', 'meh')")


def downgrade() -> None:
    op.execute("DELETE FROM customers WHERE name = 'seed-c'")
    op.drop_column("customers", "email")

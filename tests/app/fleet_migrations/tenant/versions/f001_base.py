"""fleet fixture: an enum, a serial table, seed rows (one naming the template schema)"""

import sqlalchemy as sa
from alembic import op

revision = "f001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("mood", sa.Enum(name="mood", create_type=False), server_default="ok"),
        sa.Column("obsolete", sa.Text),
    )
    op.create_index("customers_mood_idx", "customers", ["mood"])
    op.execute(
        "INSERT INTO customers (name, mood) VALUES ('seed-a', 'happy'), ('seed-b', 'sad'), "
        "('tenantry_template.customers', 'ok')"
    )
    op.create_table("lookup", sa.Column("code", sa.Text, primary_key=True))
    op.execute("INSERT INTO lookup VALUES ('x'), ('it''s'), (E'multi\\nline')")


def downgrade() -> None:
    op.drop_table("lookup")
    op.drop_table("customers")
    op.execute("DROP TYPE mood")

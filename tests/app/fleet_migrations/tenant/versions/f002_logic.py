"""fleet fixture: a sequence default, a view, functions (one schema-qualified), a trigger"""

import sqlalchemy as sa
from alembic import op

revision = "f002"
down_revision = "f001"


def upgrade() -> None:
    schema = op.get_context().version_table_schema
    op.drop_column("customers", "obsolete")  # leaves a dropped attribute behind
    op.execute("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' BEFORE 'ok'")
    op.execute("CREATE SEQUENCE invoice_no START 1000 INCREMENT 5")
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("number", sa.BigInteger,
                  server_default=sa.text(f"nextval('{schema}.invoice_no'::regclass)")),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id", ondelete="CASCADE")),
        sa.Column("amount", sa.Numeric(12, 2), sa.CheckConstraint("amount >= 0")),
        sa.Column("touched", sa.Integer, nullable=False, server_default="0"),
    )
    op.execute("INSERT INTO invoices (customer_id, amount) SELECT id, 10 FROM customers")
    op.execute(
        "CREATE VIEW happy_customers AS SELECT id, name FROM customers WHERE mood = 'happy'"
    )
    op.execute(
        f"CREATE FUNCTION {schema}.customer_count() RETURNS bigint LANGUAGE sql STABLE "  # noqa: S608
        f"AS $$ SELECT count(*) FROM {schema}.customers $$"
    )
    op.execute(
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices "
        "FOR EACH ROW EXECUTE FUNCTION touch()"
    )
    op.execute("COMMENT ON TABLE customers IS 'who pays'")
    op.execute("COMMENT ON COLUMN invoices.amount IS 'in EUR'")
    op.execute("GRANT SELECT ON happy_customers TO PUBLIC")


def downgrade() -> None:
    op.execute("DROP TRIGGER invoices_touch ON invoices")
    op.execute("DROP FUNCTION touch()")
    op.execute("DROP FUNCTION customer_count()")
    op.execute("DROP VIEW happy_customers")
    op.drop_table("invoices")
    op.execute("DROP SEQUENCE invoice_no")
    op.add_column("customers", sa.Column("obsolete", sa.Text))

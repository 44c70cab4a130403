"""Ordinary fleet migrations with tenantry's bookkeeping batched (fleet._prefetched).

The lock, the registry update and the read of the version table go in one round trip, and
Alembic starts from those heads instead of checking for and reading its version table. On a
linear path that round trip also moves the version row, and only the scripts run after it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tenantry import State, Tenancy
from tests.support.catalog import snapshot

MakeTenancy = Callable[..., Tenancy]

NEXT = '''
from alembic import context, op
revision = "f004"
down_revision = "f003"
def upgrade():
    seen = context.get_context().version_table_schema  # scripts see the run's context
    op.execute("CREATE TABLE notes (body text)")
    op.execute(f"INSERT INTO notes VALUES ('{seen}')")
    op.execute("""DO $$ BEGIN
        IF current_schema() LIKE 'tenant_bad%' THEN RAISE EXCEPTION 'bad tenant'; END IF;
        END $$""")
def downgrade():
    op.execute("DROP TABLE notes")
'''


def statements_during(t: Tenancy, fn: Callable[[], object]) -> list[str]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, params: object, *_: object) -> None:
        seen.append(f"{statement} {params}")

    sa.event.listen(t.engine, "before_cursor_execute", record)
    try:
        fn()
    finally:
        sa.event.remove(t.engine, "before_cursor_execute", record)
    return seen


def test_ordinary_upgrade_skips_alembic_version_checks(
    make_fleet_tenancy: MakeTenancy, fleet_migrations: Path
) -> None:
    first = make_fleet_tenancy()
    for name in ("p1", "p2", "bad1"):
        first.create_tenant(name)
    (fleet_migrations / "versions" / "f004_notes.py").write_text(NEXT)
    t = make_fleet_tenancy(provisioning="migrations")
    t.migrate_shared()
    report = None

    def run() -> None:
        nonlocal report
        report = t.migrate_all()

    seen = statements_during(t, run)
    assert report is not None
    assert {o.tenant: o.result for o in report.tenants} == {
        "p1": "upgraded", "p2": "upgraded", "bad1": "failed"
    }
    # Alembic's has_table() (pg_class), version reads and version writes never ran on a
    # tenant: the prologue did them (the shared tables' own check does run)
    assert not [s for s in seen if "pg_class" in s and "tenant_" in s]
    assert not [s for s in seen if "alembic_version" in s and "public" not in s]
    infos = {i.name: i for i in t.list_tenants()}
    assert (infos["p1"].state, infos["p1"].revision) == (State.READY, "f004")
    # the failed tenant's registry update (sent before its migration) was rolled back with it
    assert (infos["bad1"].state, infos["bad1"].revision) == (State.FAILED, "f003")
    assert "bad tenant" in (infos["bad1"].error or "")
    with t.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT body FROM tenant_p1.notes").scalar() == "tenant_p1"
        assert conn.exec_driver_sql(
            "SELECT version_num FROM tenant_bad1.alembic_version").scalar() == "f003"
    # the result is the catalog a full replay of the chain gives
    t.create_tenant("fresh")
    with t.engine.begin() as conn:
        upgraded, fresh = snapshot(conn, "tenant_p1"), snapshot(conn, "tenant_fresh")
    for key in fresh:
        if key not in ("sequences", "sequence_state", "data"):
            assert upgraded[key] == fresh[key], key
    # and back down the same way: the version row moved, the scripts' downgrade ran
    seen = statements_during(t, lambda: t.migrate_all("f003", tenants=["p*"], confirm=True))
    assert not [s for s in seen if "alembic_version" in s and "public" not in s]
    with t.engine.connect() as conn:
        assert versions(conn, "tenant_p1") == ["f003"]
        assert conn.exec_driver_sql("SELECT to_regclass('tenant_p1.notes')").scalar() is None
    assert {i.name: i.revision for i in t.list_tenants()}["p2"] == "f003"


def versions(conn: sa.Connection, schema: str) -> list[str]:
    return sorted(conn.exec_driver_sql(
        f"SELECT version_num FROM {schema}.alembic_version").scalars())  # noqa: S608


def revision(rev: str, down: str | tuple[str, ...], table: str) -> str:
    return (f"from alembic import op\nrevision = {rev!r}\ndown_revision = {down!r}\n"
            f"def upgrade():\n    op.execute('CREATE TABLE {table} (id int)')\n"
            f"def downgrade():\n    op.execute('DROP TABLE {table}')\n")


def test_branches_and_merges_take_alembics_own_path(
    make_fleet_tenancy: MakeTenancy, fleet_migrations: Path
) -> None:
    t = make_fleet_tenancy(provisioning="migrations")
    t.create_tenant("branchy")
    versions_dir = fleet_migrations / "versions"
    (versions_dir / "b1.py").write_text(revision("b1", "f003", "left_side"))
    (versions_dir / "c1.py").write_text(revision("c1", "f003", "right_side"))
    (versions_dir / "m1.py").write_text(revision("m1", ("b1", "c1"), "merged"))
    t = make_fleet_tenancy(provisioning="migrations")
    stream = t.core.require_tenant_stream()
    assert stream.linear("f003", "m1") is None  # a branch is made, then merged
    assert stream.linear("m1", "f003") is None
    assert stream.linear("b1", "m1") is None
    assert [str(s.revision.revision) for s in stream.linear("f001", "f003") or []] == [
        "f002", "f003"
    ]
    report = t.migrate_all()
    assert [(o.result, o.before, o.after) for o in report.tenants] == [
        ("upgraded", "f003", "m1")
    ]
    with t.engine.connect() as conn:
        assert versions(conn, "tenant_branchy") == ["m1"]
        assert conn.exec_driver_sql("SELECT count(*) FROM tenant_branchy.merged").scalar() == 0
    t.migrate_all("f003", confirm=True)
    with t.engine.connect() as conn:
        assert versions(conn, "tenant_branchy") == ["f003"]
        assert conn.exec_driver_sql("SELECT to_regclass('tenant_branchy.left_side')").scalar(
        ) is None


def test_registry_wrong_or_version_table_missing(
    make_fleet_tenancy: MakeTenancy, fleet_migrations: Path
) -> None:
    t = make_fleet_tenancy(provisioning="migrations")
    for name in ("behind", "emptied"):
        t.create_tenant(name)
    t.migrate_all("f001", confirm=True)
    with t.engine.begin() as conn:
        # the registry says f002 but the schema is at f001: the version table decides
        conn.exec_driver_sql(
            "UPDATE public.tenantry_tenants SET revision = 'f002' WHERE name = 'behind'"
        )
        # the registry says f001 but the schema is empty: the ordinary path builds it
        conn.exec_driver_sql("DROP SCHEMA tenant_emptied CASCADE; CREATE SCHEMA tenant_emptied")
    report = t.migrate_all()
    outcomes = {o.tenant: (o.result, o.before, o.after) for o in report.tenants}
    assert outcomes == {
        "behind": ("upgraded", "f001", "f003"),
        "emptied": ("upgraded", None, "f003"),
    }
    assert {(i.state, i.revision) for i in t.list_tenants()} == {(State.READY, "f003")}

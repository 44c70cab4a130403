"""Export one tenant's data and import it as another: faithful, isolated, streamed."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry import Tenancy, TenantExists
from tenantry.errors import TransferError
from tenantry.pgtools import find_program
from tenantry.transfer import Manifest
from tests.app.models import Customer, Order, Setting, User
from tests.support.transfer import (
    FIDELITY_MIGRATION,
    TYPE_CASES,
    exact_snapshot,
    fidelity_ddl,
    fill_fidelity,
)

KINDS_MIGRATION = '''"""tenant: a table of many types"""

import sqlalchemy as sa
from alembic import op

revision = "t003"
down_revision = "t002"


def upgrade() -> None:
    op.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    op.execute("CREATE SEQUENCE tickets START 500")
    op.execute("""
        CREATE TABLE kinds (
            id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            parent_id int REFERENCES kinds(id),
            amount numeric(30, 10),
            doubled numeric GENERATED ALWAYS AS (amount * 2) STORED,
            ratio float8,
            day date,
            at timestamptz,
            local_at timestamp,
            span interval,
            blob bytea,
            doc json,
            docb jsonb,
            feeling mood,
            tags text[],
            uid uuid,
            note text,
            flag boolean
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE kinds")
    op.execute("DROP SEQUENCE tickets")
    op.execute("DROP TYPE mood")
'''

KINDS_ROWS = """
INSERT INTO kinds (parent_id, amount, ratio, day, at, local_at, span, blob, doc, docb,
                   feeling, tags, uid, note, flag) VALUES
 (NULL, 12345678901234567890.0123456789, 0.1, '2024-02-29', '2024-03-01 12:34:56.789+05:30',
  '1999-12-31 23:59:59.999999', '1 year 2 months 3 days 04:05:06.5', '\\x00ff10'::bytea,
  '{"b": 1,   "a": [1.50, "x"]}', '{"z": 1.0, "a": {"n": null}}', 'happy',
  ARRAY['a', 'b,c', 'd"e', NULL], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  E'multi\\nline \\u00e9 \\\\ "quoted"', true),
 (1, -0.0000000001, 'NaN', '0001-01-01', '-infinity', 'infinity', '-1 day', ''::bytea,
  '{"k": null}', '[]', 'sad', '{}', NULL, '', false),
 (2, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (1, 0, 1e308, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'ok', NULL, NULL, 'GLOBEX?no', NULL)
"""


def with_third_revision(
    database_url: str, migrations_dir: Path, filename: str, text: str
) -> Iterator[Tenancy]:
    """A Tenancy whose tenant stream has a third revision ``filename`` with ``text``."""
    (migrations_dir / "tenant" / "versions" / filename).write_text(text)
    t = Tenancy(
        database_url,
        tenant_migrations=migrations_dir / "tenant",
        shared_migrations=migrations_dir / "shared",
    )
    t.migrate_shared()
    yield t
    t.dispose()


@pytest.fixture
def rich(database_url: str, migrations_dir: Path) -> Iterator[Tenancy]:
    """A Tenancy whose tenant stream has a third revision with a table of many types."""
    yield from with_third_revision(database_url, migrations_dir, "t003_kinds.py", KINDS_MIGRATION)


def fill(tenancy: Tenancy, name: str, marker: str, kinds: bool) -> None:
    tenancy.create_tenant(name)
    with tenancy.session(name) as s:
        if s.get(User, 1) is None:
            s.add(User(id=1, name="shared user"))
            s.flush()
        customers = [
            Customer(name=f"{marker} customer {i}", email=f"{i}@{marker}") for i in range(5)
        ]
        s.add_all(customers)
        s.add(Setting(key="theme", value=f"{marker} dark"))
        s.flush()
        s.add_all(
            Order(customer_id=c.id, user_id=1 if i % 2 else None, total=f"{i}.25")
            for i, c in enumerate(customers)
        )
        s.commit()
    with tenancy.connection(name) as conn:
        conn.exec_driver_sql(f"SET search_path TO tenant_{name}")
        conn.exec_driver_sql("DELETE FROM orders WHERE customer_id = 5")
        conn.exec_driver_sql("DELETE FROM customers WHERE id = 5")  # a gap in the ids
        if kinds:
            conn.exec_driver_sql(KINDS_ROWS.replace("GLOBEX", marker))
            conn.exec_driver_sql("SELECT nextval('tickets'), nextval('tickets')")
            conn.exec_driver_sql("RESET search_path")
        conn.commit()


def snapshot(tenancy: Tenancy, name: str) -> dict[str, Any]:
    """Every row of every table (by primary key) and every sequence state, as Python values."""
    schema = tenancy.get_tenant(name).schema
    out: dict[str, Any] = {}
    with tenancy.connection(name) as conn:
        tables = conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
        ).scalars().all()
        for table in tables:
            out[table] = conn.exec_driver_sql(  # PostgreSQL's text form of each row
                f'SELECT t::text FROM "{schema}"."{table}" AS t ORDER BY 1'  # noqa: S608
            ).scalars().all()
        seqs = conn.exec_driver_sql(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = %s ORDER BY 1", (schema,)
        ).scalars().all()
        for seq in seqs:
            out[f"seq:{seq}"] = conn.exec_driver_sql(
                f'SELECT last_value, is_called FROM "{schema}"."{seq}"'  # noqa: S608
            ).one()
    return out


def test_round_trip_is_exact_and_isolated(rich: Tenancy, tmp_path: Path) -> None:
    fill(rich, "acme", "ACME", kinds=True)
    fill(rich, "globex", "GLOBEX", kinds=True)
    dest = tmp_path / "acme-export"
    seen: list[tuple[str, int, int | None]] = []
    manifest = rich.export_tenant("acme", dest, progress=lambda *a: seen.append(a))

    on_disk = json.loads((dest / "manifest.json").read_text())
    assert on_disk["tenant"] == "acme" and on_disk["revision"] == "t003"
    assert on_disk["format"] == "tenantry-export" and on_disk["version"] == 2
    by_name = {t.name: t for t in manifest.tables}
    assert set(by_name) == {"customers", "orders", "settings", "kinds"}  # no alembic_version
    names = [t.name for t in manifest.tables]
    assert names.index("customers") < names.index("orders")  # foreign-key order
    assert by_name["customers"].rows == 4 and by_name["orders"].rows == 4
    assert by_name["kinds"].rows == 4 and by_name["kinds"].generated == ["doubled"]
    sequences = {s.name: (s.last_value, s.is_called) for s in manifest.sequences}
    assert sequences["tickets"] == (501, True)
    assert ("orders", 4, 4) in seen
    for path in (dest / "tables").iterdir():  # nothing of the other tenant, every line JSON
        text = path.read_text()
        assert "GLOBEX" not in text
        assert "ACME" in text or path.name == "orders.jsonl"
        assert all(json.loads(line) for line in text.splitlines())

    rich.import_tenant(dest, "acme_copy")
    assert snapshot(rich, "acme_copy") == snapshot(rich, "acme")
    assert rich.get_tenant("acme_copy").revision == "t003"
    with rich.session("acme_copy") as s:  # sequences continue where the original's were
        s.add(Customer(name="next"))
        s.flush()
        assert s.scalar(sa.select(sa.func.max(Customer.id))) == 6


def test_import_refuses_to_overwrite_without_replace(tenancy: Tenancy, tmp_path: Path) -> None:
    fill(tenancy, "acme", "ACME", kinds=False)
    fill(tenancy, "globex", "GLOBEX", kinds=False)
    tenancy.export_tenant("acme", tmp_path / "x")
    with pytest.raises(TenantExists, match="replace=True"):
        tenancy.import_tenant(tmp_path / "x", "globex")
    assert any("GLOBEX" in r for r in snapshot(tenancy, "globex")["settings"])
    tenancy.import_tenant(tmp_path / "x", "globex", replace=True)
    assert snapshot(tenancy, "globex") == snapshot(tenancy, "acme")


def test_damaged_export_is_refused_and_leaves_nothing(tenancy: Tenancy, tmp_path: Path) -> None:
    fill(tenancy, "acme", "ACME", kinds=False)
    tenancy.export_tenant("acme", tmp_path / "x")
    path = tmp_path / "x" / "tables" / "settings.jsonl"
    path.write_text(path.read_text().replace("dark", "lite"))
    with pytest.raises(TransferError, match=r"checksum mismatch for 'tables/settings\.jsonl'"):
        tenancy.import_tenant(tmp_path / "x", "copy")
    assert not tenancy.tenant_exists("copy")
    with pytest.raises(TransferError, match="not an empty directory"):
        tenancy.export_tenant("acme", tmp_path / "x")


def test_failed_load_rolls_back_the_new_tenant(tenancy: Tenancy, tmp_path: Path) -> None:
    fill(tenancy, "acme", "ACME", kinds=False)
    manifest = tenancy.export_tenant("acme", tmp_path / "x")
    data = json.loads((tmp_path / "x" / "manifest.json").read_text())
    data["tables"][[t.name for t in manifest.tables].index("orders")]["rows"] = 99
    (tmp_path / "x" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(TransferError, match="'orders': manifest says 99 rows"):
        tenancy.import_tenant(tmp_path / "x", "copy")
    assert not tenancy.tenant_exists("copy")
    with tenancy.engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_copy'"
        ).scalar_one() == 0


def test_import_of_an_older_revision_is_migrated_to_head(
    tenancy: Tenancy, rich: Tenancy, tmp_path: Path
) -> None:
    fill(tenancy, "old", "OLD", kinds=False)  # tenancy's stream stops at t002
    tenancy.export_tenant("old", tmp_path / "old")
    assert Manifest.read(tmp_path / "old").revision == "t002"
    info = rich.import_tenant(tmp_path / "old", "moved")  # rich's stream goes to t003
    assert info.revision == "t003"
    with rich.session("moved") as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Order)) == 4


def test_pg_dump_archive_holds_only_that_tenant(rich: Tenancy, tmp_path: Path) -> None:
    fill(rich, "acme", "ACME", kinds=True)
    fill(rich, "globex", "GLOBEX", kinds=False)
    manifest = rich.export_tenant("acme", tmp_path / "x", pg_dump=True)
    assert manifest.pg_dump is not None and manifest.pg_dump["file"] == "tenant.dump"
    archive = tmp_path / "x" / "tenant.dump"
    major = rich.engine.dialect.server_version_info[0]  # type: ignore[index]
    pg_restore = str(Path(find_program("pg_dump", major)).with_name("pg_restore"))
    listing = subprocess.run(
        [pg_restore, "--list", str(archive)], capture_output=True, text=True, check=True
    ).stdout
    assert "tenant_acme" in listing and "TABLE DATA tenant_acme kinds" in listing
    assert "globex" not in listing and "public" not in listing.replace("PUBLIC", "")
    sql = subprocess.run(
        [pg_restore, "--data-only", "--file=-", str(archive)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "ACME customer 1" in sql and "GLOBEX" not in sql


def test_cli_export_and_import(tenancy: Tenancy, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tenantry.cli import app

    fill(tenancy, "acme", "ACME", kinds=False)
    url = tenancy.engine.url.render_as_string(hide_password=False)
    migrations = Path(__file__).parents[1] / "app" / "migrations"
    base = ["--url", url, "--tenant-migrations", str(migrations / "tenant")]
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, [*base, *args])

    exported = run("export", "acme", str(tmp_path / "x"))
    assert exported.exit_code == 0, exported.output
    assert "3 tables, 10 rows" in exported.output
    assert (tmp_path / "x" / "manifest.json").is_file()
    assert run("import", str(tmp_path / "x"), "--as", "copy").exit_code == 0
    again = run("import", str(tmp_path / "x"), "--as", "copy")
    assert again.exit_code == 1 and "exists" in again.output
    unconfirmed = run("import", str(tmp_path / "x"), "--as", "copy", "--replace")
    assert unconfirmed.exit_code == 1 and "--yes" in unconfirmed.output
    assert run("import", str(tmp_path / "x"), "--as", "copy", "--replace", "--yes").exit_code == 0
    assert snapshot(tenancy, "copy") == snapshot(tenancy, "acme")


def test_progress_is_drawn_on_a_terminal_only(tenancy: Tenancy, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from tenantry.cli.progress import table_progress

    fill(tenancy, "acme", "ACME", kinds=False)
    with table_progress(Console(file=io.StringIO()), "exporting") as progress:
        assert progress is None
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with table_progress(console, "exporting") as progress:
        tenancy.export_tenant("acme", tmp_path / "x", progress=progress)
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # without ANSI codes
    assert "exporting customers" in drawn and "4/4" in drawn


def _peak_bytes(fn: Any) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_table_size(tenancy: Tenancy, tmp_path: Path) -> None:
    """Export and import of 10x more rows peak at about the same Python memory (streamed)."""
    peaks: dict[int, tuple[int, int]] = {}
    rss_growth: dict[int, int] = {}
    for rows in (20_000, 200_000):
        name = f"big{rows}"
        tenancy.create_tenant(name)
        with tenancy.connection(name) as conn:
            conn.exec_driver_sql(
                f"INSERT INTO tenant_{name}.customers (name, email) "  # noqa: S608
                "SELECT repeat('n', 160) || i, i || '@example.com' "
                f"FROM generate_series(1, {rows}) AS i"
            )
            conn.commit()
        dest = tmp_path / name
        rss_growth[rows] = _export_rss_growth(tenancy, name, tmp_path / f"rss{rows}")
        export_peak = _peak_bytes(lambda: tenancy.export_tenant(name, dest))  # noqa: B023
        import_peak = _peak_bytes(lambda: tenancy.import_tenant(dest, f"{name}_copy"))  # noqa: B023
        peaks[rows] = (export_peak, import_peak)
        assert Manifest.read(dest).tables[0].rows == rows
    (small_export, small_import), (big_export, big_import) = peaks[20_000], peaks[200_000]
    assert (tmp_path / "big200000" / "tables" / "customers.jsonl").stat().st_size > 35_000_000
    assert big_export < small_export * 1.5 + 1_000_000, peaks
    assert big_import < small_import * 1.5 + 1_000_000, peaks
    # the driver's buffers are invisible to tracemalloc: the whole process must not grow either
    assert rss_growth[200_000] - rss_growth[20_000] < 8_000, rss_growth  # KiB


RSS_PROBE = """
import resource, sys
from tenantry import Tenancy
with Tenancy(sys.argv[1]) as tenancy:
    tenancy.get_tenant(sys.argv[2])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tenancy.export_tenant(sys.argv[2], sys.argv[3])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def _export_rss_growth(tenancy: Tenancy, name: str, dest: Path) -> int:
    """Growth of peak RSS (KiB) of a fresh process exporting tenant ``name``."""
    import os
    import sys

    url = tenancy.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, url, name, str(dest)],
        capture_output=True, text=True, check=True, env=env,
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_odd_table_names_stay_inside_the_export(tenancy: Tenancy, tmp_path: Path) -> None:
    from tenantry.transfer.export import file_names

    names = file_names(["../../etc/passwd", "a b", "a_b", "A_B", "orders"])
    assert names["orders"] == "tables/orders.jsonl"
    assert len(set(names.values())) == 5
    assert all(re.fullmatch(r"tables/[A-Za-z0-9_-]+\.jsonl", f) for f in names.values())


def test_failed_export_leaves_no_partial_files(
    tenancy: Tenancy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(tenancy, "acme", "ACME", kinds=False)
    monkeypatch.setenv("TENANTRY_PG_DUMP", str(tmp_path / "no-such-pg_dump"))
    with pytest.raises(TransferError, match="cannot run pg_dump"):
        tenancy.export_tenant("acme", tmp_path / "x", pg_dump=True)
    assert list((tmp_path / "x").iterdir()) == []


# -- fidelity: every value comes back exactly (format version 2) ----------------------------


@pytest.fixture
def fidelity(database_url: str, migrations_dir: Path) -> Iterator[Tenancy]:
    migration = FIDELITY_MIGRATION.format(ddl=fidelity_ddl())
    yield from with_third_revision(database_url, migrations_dir, "t003_fidelity.py", migration)


def test_every_value_round_trips_exactly(fidelity: Tenancy, tmp_path: Path) -> None:
    """SQL NULL vs JSON null (top level, nested, in arrays, domains, composites), array
    bounds, -0.0 / NaN / infinities, time zones, ranges, enums, identity and generated
    columns, quotes and % in names, cyclic and self-referencing foreign keys."""
    from tenantry.transfer import import_tenant

    fill_fidelity(fidelity, "acme")
    original = exact_snapshot(fidelity, "acme")
    assert ("null",) in {(r[3 + 0],) for r in original["values_"]}  # JSON null present
    assert any(r[3] is None for r in original["values_"])  # and SQL NULL, same column
    dest = tmp_path / "x"
    manifest = fidelity.export_tenant("acme", dest)
    assert Manifest.read(dest).version == 2
    by_name = {t.name: t for t in manifest.tables}
    assert by_name["values_"].types[3:5] == ["jsonb", "json"]
    lines = (dest / by_name["values_"].file).read_text().splitlines()
    assert len(lines) == by_name["values_"].rows
    assert all(isinstance(json.loads(line), dict) for line in lines)

    # batch_rows=2: the self-referencing rows (children first) span many batches
    import_tenant(fidelity, dest, "copy", batch_rows=2)
    copy = exact_snapshot(fidelity, "copy")
    for key in original:
        assert copy[key] == original[key], key
    assert copy == original
    with fidelity.connection("copy") as conn, pytest.raises(sa.exc.IntegrityError):
        conn.exec_driver_sql("UPDATE tenant_copy.node SET parent_id = 99 WHERE id = 1")


def test_cyclic_rows_that_do_not_hold_are_refused(fidelity: Tenancy, tmp_path: Path) -> None:
    import hashlib

    fill_fidelity(fidelity, "acme")
    dest = tmp_path / "x"
    fidelity.export_tenant("acme", dest)
    path = dest / "tables" / "node.jsonl"
    path.write_text(path.read_text().replace('"parent_id":"1"}', '"parent_id":"99"}'))
    data = json.loads((dest / "manifest.json").read_text())
    for table in data["tables"]:
        if table["name"] == "node":
            table["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(TransferError, match="foreign key 'node_parent_id_fkey' of table 'node'"):
        fidelity.import_tenant(dest, "copy")
    assert not fidelity.tenant_exists("copy")


def test_version_1_exports_still_import(tenancy: Tenancy, tmp_path: Path) -> None:
    """A version 1 export (row_to_json lines) imports; an unknown version is a clear error."""
    fill(tenancy, "acme", "ACME", kinds=False)
    dest = tmp_path / "x"
    tenancy.export_tenant("acme", dest)
    data = json.loads((dest / "manifest.json").read_text())
    with tenancy.connection("acme") as conn:  # rewrite the files as version 1 wrote them
        for table in data["tables"]:
            lines = conn.exec_driver_sql(
                f'SELECT row_to_json(t)::text FROM tenant_acme."{table["name"]}" AS t'  # noqa: S608
            ).scalars().all()
            path = dest / table["file"]
            path.write_text("".join(line + "\n" for line in lines))
            table["sha256"] = hashlib_sha256(path)
            del table["types"]
    data["version"] = 1
    (dest / "manifest.json").write_text(json.dumps(data))
    tenancy.import_tenant(dest, "copy")
    assert snapshot(tenancy, "copy") == snapshot(tenancy, "acme")
    data["version"] = 3
    (dest / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(TransferError, match="unsupported format 'tenantry-export' version 3"):
        tenancy.import_tenant(dest, "copy2")


def hashlib_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _column(sql_type: str) -> str:
    return f"c{[t for t, _ in TYPE_CASES].index(sql_type)}"


SQL_NULL = object()
_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
ROWS = st.lists(
    st.tuples(
        st.one_of(st.just(SQL_NULL), JSON_VALUES),  # SQL NULL or any JSON, JSON null included
        st.one_of(st.none(), st.floats()),  # NaN, +-inf, -0.0, subnormals
        st.one_of(st.none(), _TEXT),
        st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)))),
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.slow
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS)
def test_generated_values_round_trip_exactly(fidelity: Tenancy, rows: list[Any]) -> None:
    """Hypothesis: jsonb/json (SQL NULL vs any JSON), float8, text and int[] values."""
    import tempfile

    if not fidelity.tenant_exists("gen"):
        fidelity.create_tenant("gen")
    jsonb, json_, float8, text, ints = (
        _column(t) for t in ("jsonb", "json", "float8", "text", "int[]")
    )
    with fidelity.connection("gen") as conn:
        conn.exec_driver_sql("TRUNCATE tenant_gen.values_")
        for doc, number, words, array in rows:
            encoded = None if doc is SQL_NULL else json.dumps(doc)
            conn.exec_driver_sql(
                f"INSERT INTO tenant_gen.values_ ({jsonb}, {json_}, {float8}, {text}, {ints}) "  # noqa: S608
                "VALUES (%s::jsonb, %s::json, %s::float8, %s, %s::int[])",
                (encoded, encoded, number, words, array),
            )
        conn.commit()
    with tempfile.TemporaryDirectory() as tmp:
        fidelity.export_tenant("gen", Path(tmp) / "x")
        fidelity.import_tenant(Path(tmp) / "x", "gen_copy", replace=True)
    original, copy = exact_snapshot(fidelity, "gen"), exact_snapshot(fidelity, "gen_copy")
    assert len(original["values_"]) == len(rows)
    assert copy["values_"] == original["values_"]


def test_load_order_breaks_every_cycle_and_keeps_other_edges() -> None:
    from tenantry.transfer.tables import Table, load_order

    tables = [Table(i, name, [], [], []) for i, name in enumerate("abcdef")]
    # a->b->c->a and c<->d (overlapping cycles), e->a (not in a cycle), f->f (self)
    edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 2), (4, 0), (5, 5)]
    order = [t.name for t in load_order(tables, edges)]
    assert sorted(order) == list("abcdef")
    assert order.index("a") < order.index("e")  # acyclic edges are always kept

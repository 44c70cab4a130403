"""Issue 8, points 4 and 5: read-only statements across tenants, batched, tagged, streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import NotReadOnly, Tenancy, UnknownTenant
from tenantry.cli import app
from tenantry.crosstenant.across import DEFAULT_CHUNK
from tests.app.models import Customer, Order, User

TENANTS = ["t1", "t2", "t3", "t4", "t5"]


@pytest.fixture
def five(tenancy: Tenancy) -> Tenancy:
    with tenancy.admin_session() as s:
        s.add(User(id=1, name="root"))
        s.commit()
    for i, name in enumerate(TENANTS, start=1):
        tenancy.create_tenant(name)
        with tenancy.session(name) as s:
            for j in range(i):
                customer = Customer(name=f"{name}-c{j}", email="x%y@z")
                s.add(customer)
                s.add(Order(customer=customer, user_id=1, total=Decimal(i)))
            s.commit()
    return tenancy


@contextmanager
def statements(tenancy: Tenancy) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    sa.event.listen(tenancy.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(tenancy.engine, "before_cursor_execute", record)


def counts(rows: object) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:  # type: ignore[attr-defined]
        out[r.tenant] = out.get(r.tenant, 0) + 1
    return out


def test_rows_tagged_with_their_tenant_in_one_round_trip(five: Tenancy) -> None:
    query = sa.select(Customer.name, Customer.email).order_by(Customer.name)
    with statements(five) as seen:
        rows = list(five.across(query))
    assert counts(rows) == {"t1": 1, "t2": 2, "t3": 3, "t4": 4, "t5": 5}
    assert all(r.row[0].startswith(r.tenant + "-") for r in rows)
    assert rows[0].columns == ("name", "email") and rows[0].mapping()["email"] == "x%y@z"
    registry_reads = [s for s in seen if "tenantry_tenants" in s]
    assert len(seen) - len(registry_reads) == 1  # five tenants, one batched query


def test_chunks_jobs_and_listed_tenants(five: Tenancy) -> None:
    query = sa.select(sa.func.count()).select_from(Customer)
    expected = {(name, (i,)) for i, name in enumerate(TENANTS, start=1)}
    for chunk, jobs in ((2, 1), (1, 3), (100, 2)):
        with statements(five) as seen:
            got = {(r.tenant, r.row) for r in five.across(query, chunk=chunk, jobs=jobs)}
        assert got == expected
        batches = [s for s in seen if "AS tenantry_tenant," in s]
        assert len(batches) == -(-len(TENANTS) // chunk)
    listed = {r.tenant: r.row[0] for r in five.across(query, ["t2", "t4"])}
    assert listed == {"t2": 2, "t4": 4}


def test_bound_parameters_and_in_lists(five: Tenancy) -> None:
    query = sa.select(Customer.name).where(
        Customer.name.in_(["t3-c0", "t5-c4"]) | Customer.name.like("t1-%")
    )
    assert sorted((r.tenant, r.row[0]) for r in five.across(query)) == [
        ("t1", "t1-c0"), ("t3", "t3-c0"), ("t5", "t5-c4")
    ]


def test_join_with_shared_table(five: Tenancy) -> None:
    query = (
        sa.select(User.name, sa.func.sum(Order.total))
        .join(Order, Order.user_id == User.id)
        .group_by(User.name)
    )
    got = {r.tenant: r.row for r in five.across(query)}
    assert got["t3"] == ("root", Decimal(9)) and got["t5"] == ("root", Decimal(25))


def test_streams_batch_by_batch(five: Tenancy) -> None:
    done: list[int] = []
    rows = five.across(sa.select(Customer.name), chunk=1, progress=done.append)
    first = next(rows)
    assert first.tenant == "t1" and done == []  # nothing else fetched yet
    rest = list(rows)
    assert len(rest) == 14 and done == [1] * 5


@pytest.mark.parametrize(
    "statement",
    [
        sa.insert(Customer).values(name="x"),
        sa.update(Customer).values(name="x"),
        sa.delete(Customer),
    ],
)
def test_rejects_writes_naming_the_table(five: Tenancy, statement: object) -> None:
    with pytest.raises(NotReadOnly, match="customers"):
        list(five.across(statement))


def test_refused_at_call_time_not_when_iterated(five: Tenancy) -> None:
    # as documented: the call raises; a caller that never iterates still learns of it
    with pytest.raises(NotReadOnly, match="customers"):
        five.across(sa.delete(Customer))
    with pytest.raises(NotReadOnly, match="__tenant__"):
        five.across("SELECT 1", jobs=2)
    with pytest.raises(UnknownTenant, match="nope"):
        five.across(sa.select(Customer.name), ["t1", "nope"])


def test_docs_give_the_default_chunk() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "across.md").read_text()
    assert f"`chunk` tenants (default {DEFAULT_CHUNK})" in docs
    assert f"chunk={DEFAULT_CHUNK} (default)" in docs


def test_unknown_listed_tenant(five: Tenancy) -> None:
    with pytest.raises(UnknownTenant, match="nope"):
        list(five.across(sa.select(Customer.name), ["t1", "nope"]))


def test_raw_sql_with_placeholder(five: Tenancy) -> None:
    sql = sa.text(
        "SELECT c.name FROM __tenant__.customers c JOIN __tenant__.orders o "
        "ON o.customer_id = c.id JOIN public.users u ON u.id = o.user_id "
        "WHERE c.email LIKE 'x%' AND c.name LIKE :pattern;"
    ).bindparams(pattern="%-c3")
    assert sorted(r.tenant for r in five.across(sql)) == ["t4", "t5"]


def test_raw_sql_is_read_only_and_must_name_tenant_tables(five: Tenancy) -> None:
    sneaky = "WITH d AS (DELETE FROM __tenant__.customers RETURNING *) SELECT * FROM d"
    with pytest.raises(sa.exc.DBAPIError):
        list(five.across(sneaky))
    with pytest.raises(sa.exc.DBAPIError):
        list(five.across("SELECT 1 FROM __tenant__.customers; DROP TABLE public.users"))
    with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
        list(five.across("SELECT nextval('__tenant__.customers_id_seq') AS n"))
    with pytest.raises(NotReadOnly, match="__tenant__"):
        list(five.across("SELECT 1"))
    with five.session("t5") as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Customer)) == 5
        assert s.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_cli_query_json(five: Tenancy) -> None:
    url = five.engine.url.render_as_string(hide_password=False)
    sql = "SELECT count(*) AS n FROM __tenant__.customers"
    result = CliRunner().invoke(app, ["--url", url, "query", sql, "--all-tenants", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [{"tenant": n, "n": i} for i, n in enumerate(TENANTS, start=1)]
    result = CliRunner().invoke(
        app, ["--url", url, "query", sql, "--tenant", "t2", "--tenant", "t3", "--chunk", "1"]
    )
    assert result.exit_code == 0 and "t2" in result.stdout and "t1" not in result.stdout


def test_cli_query_errors(five: Tenancy) -> None:
    url = five.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--url", url, "query", "SELECT 1"])
    assert result.exit_code == 1 and "--all-tenants" in result.stderr
    result = CliRunner().invoke(
        app, ["--url", url, "query", "SELECT 1 FROM __tenant__.customers", "--tenant", "BAD!"]
    )
    assert result.exit_code == 1 and "BAD!" in result.stderr


def test_cli_progress_bar_on_a_terminal(five: Tenancy, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from tenantry.cli import query as query_command

    screen = io.StringIO()
    monkeypatch.setattr(query_command, "err", Console(file=screen, force_terminal=True, width=100))
    url = five.engine.url.render_as_string(hide_password=False)
    sql = "SELECT count(*) AS n FROM __tenant__.customers"
    result = CliRunner().invoke(
        app, ["--url", url, "query", sql, "--all-tenants", "--json", "--chunk", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "tenants" in screen.getvalue() and "5/5" in screen.getvalue()

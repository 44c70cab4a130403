"""Issue 8 (per-statement tenants, tenant-aware objects, across) on both strategies: the
schema strategy and the real database strategy (tenants on two servers)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import (
    NoTenantSelected,
    Tenancy,
    TenantElsewhere,
    TenantMismatch,
    assign,
    tenant_of,
)
from tenantry.cli import app
from tests.app.models import Customer, Order
from tests.support.databases import MIGRATIONS, TENANT_DB

STRATEGIES = ["schema", "database"]


@pytest.fixture(params=STRATEGIES)
def any_tenancy(request: pytest.FixtureRequest) -> Tenancy:
    """A schema Tenancy or a database Tenancy (servers ``main`` and ``second``)."""
    if request.param == "schema":
        return request.getfixturevalue("tenancy")  # type: ignore[no-any-return]
    make: Callable[..., Tenancy] = request.getfixturevalue("make_tenancy")
    return make(template=False)


@pytest.fixture
def two(any_tenancy: Tenancy) -> Iterator[Tenancy]:
    """Tenants acme and beta (for the database strategy: one on each server), a customer
    with an order in each."""
    for name in ("acme", "beta"):
        any_tenancy.create_tenant(name)
        with any_tenancy.session(name) as s:
            s.add(Customer(name=f"{name}-c", orders=[Order(total=Decimal("1.50"))]))
            s.commit()
    yield any_tenancy


def servers(tenancy: Tenancy) -> set[str | None]:
    return {i.location.server for i in tenancy.list_tenants()}


def test_placement_spans_servers(two: Tenancy) -> None:
    if two.strategy.kind == "database":
        assert servers(two) == {"main", "second"}


def test_admin_session_reads_and_writes_per_statement(two: Tenancy) -> None:
    query = sa.select(Customer).order_by(Customer.name)
    with two.admin_session() as s:
        acme = s.scalars(query.execution_options(tenant="acme")).all()
        beta = s.scalars(query.execution_options(tenant="beta")).all()
        assert [(c.name, tenant_of(c)) for c in acme] == [("acme-c", "acme")]
        assert [(c.name, tenant_of(c)) for c in beta] == [("beta-c", "beta")]
        orders = beta[0].orders  # lazy load follows the instance's tenant
        assert [tenant_of(o) for o in orders] == ["beta"]
        assert orders[0].customer is beta[0]
        s.add_all([assign(Customer(name="acme-new"), "acme"), assign(Customer(name="b2"), "beta")])
        beta[0].name = "beta-renamed"  # update goes to beta's storage
        s.commit()
        with pytest.raises(NoTenantSelected, match="customers"):
            s.execute(sa.select(Customer))
    with two.session("acme") as s:
        assert sorted(s.scalars(sa.select(Customer.name))) == ["acme-c", "acme-new"]
    with two.session("beta") as s:
        assert sorted(s.scalars(sa.select(Customer.name))) == ["b2", "beta-renamed"]


def test_tenant_mismatch(two: Tenancy) -> None:
    with two.session("acme") as s:
        ann = s.scalars(sa.select(Customer)).one()
        with pytest.raises(TenantMismatch, match=r"'beta'.*'acme'|'acme'.*'beta'"):
            s.execute(sa.select(Customer).execution_options(tenant="beta"))
    with two.session("beta") as s, pytest.raises(TenantMismatch, match="customers"):
        s.add(ann)
    with two.session("beta") as s, pytest.raises(TenantMismatch, match="'acme'"):
        s.add(assign(Customer(name="x"), "acme"))


def test_admin_connection(two: Tenancy) -> None:
    query = sa.select(Customer.name).execution_options(tenant="acme")
    with two.admin_connection() as conn:
        if two.strategy.kind == "schema":
            assert conn.execute(query).scalars().all() == ["acme-c"]
            return
        with pytest.raises(TenantElsewhere) as err:
            conn.execute(query)
    message = str(err.value)
    assert "'acme'" in message and "database" in message and "customers" in message


def test_across_every_tenant(two: Tenancy) -> None:
    two.create_tenant("gamma")
    rows = list(two.across(sa.select(Customer.name, Order.total).join(Order.customer), jobs=2))
    assert sorted((r.tenant, r.row[0]) for r in rows) == [("acme", "acme-c"), ("beta", "beta-c")]
    listed = two.across(sa.select(Customer.name), ["beta"], chunk=1)
    assert [(r.tenant, r.row[0]) for r in listed] == [("beta", "beta-c")]


def test_cli_query_all_tenants(two: Tenancy, second_url: str) -> None:
    args = ["--url", two.engine.url.render_as_string(hide_password=False),
            "--prefix", two.prefix]
    if two.strategy.kind == "database":
        args += ["--strategy", "database", "--server", f"second={second_url}",
                 "--tenant-migrations", str(TENANT_DB)]
    else:
        args += ["--tenant-migrations", str(MIGRATIONS / "tenant")]
    sql = "SELECT name FROM __tenant__.customers ORDER BY name"
    result = CliRunner().invoke(app, [*args, "query", sql, "--all-tenants", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert sorted((r["tenant"], r["name"]) for r in rows) == [
        ("acme", "acme-c"), ("beta", "beta-c")]

"""Issue 8 with a tenant in another database: admin sessions and across() route by engine;
an admin Core connection of the main database refuses it with a typed error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tenantry import Tenancy, TenantElsewhere, assign, make_engine, tenant_of
from tenantry.core.registry import Location, tenants
from tenantry.models import shared_tables, tenant_tables
from tenantry.strategies import SchemaStrategy
from tests.app.models import Customer
from tests.support.databases import drop_database, new_database


class TwoDatabases(SchemaStrategy):
    """Schema strategy whose tenants with ``location.database`` set live in a second database."""

    def __init__(self, main: Engine, prefix: str, other: Engine) -> None:
        super().__init__(main, prefix)
        self.other = other

    def engine(self, location: Location) -> Engine:
        return self.other if location.database else self.main


@pytest.fixture
def split(tenancy: Tenancy, admin_engine: Engine) -> Iterator[Tenancy]:
    url = new_database(admin_engine)
    other = make_engine(url)
    try:
        tenancy.create_tenant("acme")
        tenancy.create_tenant("far")
        with other.begin() as conn:  # far's storage, moved to the other database
            conn.exec_driver_sql('CREATE SCHEMA "tenant_far"')
            routed = conn.execution_options(schema_translate_map={"__tenant__": "tenant_far"})
            metadata = Customer.metadata
            metadata.create_all(routed, tables=shared_tables(metadata))
            metadata.create_all(routed, tables=tenant_tables(metadata))
        with tenancy.engine.begin() as conn:
            conn.execute(tenants.update().where(tenants.c.name == "far")
                         .values(database=sa.make_url(url).database))
            conn.exec_driver_sql('DROP SCHEMA "tenant_far" CASCADE')
        two = TwoDatabases(tenancy.engine, tenancy.prefix, other)
        tenancy.core.strategy = tenancy.strategy = two
        tenancy.core.router.clear()
        with tenancy.session("acme") as s:
            s.add(Customer(name="Ann"))
            s.commit()
        with tenancy.session("far") as s:
            s.add(Customer(name="Fay"))
            s.commit()
        yield tenancy
    finally:
        tenancy.core.router.clear()
        other.dispose()
        drop_database(admin_engine, url)


def test_admin_session_reads_and_writes_both_databases(split: Tenancy) -> None:
    query = sa.select(Customer).order_by(Customer.name)
    with split.admin_session() as s:
        far = s.scalars(query.execution_options(tenant="far")).all()
        acme = s.scalars(query.execution_options(tenant="acme")).all()
        assert [(c.name, tenant_of(c)) for c in far] == [("Fay", "far")]
        assert [(c.name, tenant_of(c)) for c in acme] == [("Ann", "acme")]
        s.add_all([assign(Customer(name="Fox"), "far"), assign(Customer(name="Abe"), "acme")])
        s.commit()
    with split.strategy.other.connect() as conn:  # type: ignore[attr-defined]
        names = conn.exec_driver_sql('SELECT name FROM "tenant_far".customers ORDER BY 1')
        assert names.scalars().all() == ["Fay", "Fox"]
    with split.session("acme") as s:
        assert sorted(s.scalars(sa.select(Customer.name))) == ["Abe", "Ann"]


def test_admin_connection_refuses_a_tenant_of_another_database(split: Tenancy) -> None:
    query = sa.select(Customer.name).execution_options(tenant="far")
    with split.admin_connection() as conn, pytest.raises(TenantElsewhere) as err:
        conn.execute(query)
    message = str(err.value)
    assert "'far'" in message and "database" in message and "customers" in message


def test_across_spans_databases(split: Tenancy) -> None:
    rows = split.across(sa.select(Customer.name))
    assert sorted((r.tenant, r.row[0]) for r in rows) == [("acme", "Ann"), ("far", "Fay")]

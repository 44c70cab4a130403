import asyncio
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tenantry import ContextExecutor, NoTenantSelected, Tenancy, UnknownTenant, run_in_thread, use
from tests.app.models import Customer, Order, Setting, User


@pytest.fixture
def two(tenancy: Tenancy) -> Tenancy:
    tenancy.create_tenant("acme")
    tenancy.create_tenant("globex")
    with tenancy.session() as s, s.begin():
        s.add(User(id=1, name="shared ann"))
    for name in ("acme", "globex"):
        with tenancy.session(name) as s, s.begin():
            c = Customer(name=f"{name} customer")
            s.add(Order(customer=c, user_id=1, total=Decimal("9.50")))
    return tenancy


def names(t: Tenancy, tenant: str | None = None) -> list[str]:
    with t.session(tenant) as s:
        return list(s.scalars(sa.select(Customer.name)))


def test_data_written_in_a_is_invisible_in_b(two: Tenancy) -> None:
    assert names(two, "acme") == ["acme customer"]
    assert names(two, "globex") == ["globex customer"]
    with two.engine.connect() as c:  # the rows really live in separate schemas
        assert c.scalar(sa.text("SELECT count(*) FROM tenant_acme.customers")) == 1
        assert c.scalar(sa.text("SELECT count(*) FROM tenant_globex.customers")) == 1


def test_joins_to_shared_tables_are_not_rerouted(two: Tenancy) -> None:
    with two.session("globex") as s:
        row = s.execute(sa.select(Customer.name, User.name).join(Order.customer).join(Order.user))
        assert row.all() == [("globex customer", "shared ann")]
        order = s.scalars(sa.select(Order)).one()
        assert order.user is not None and order.user.name == "shared ann"
        assert order.customer.orders == [order]


def test_core_connection(two: Tenancy) -> None:
    with two.connection("acme") as c:
        assert c.scalars(sa.select(Customer.__table__.c.name)).all() == ["acme customer"]
        assert c.scalar(sa.select(Setting.value).where(Setting.key == "currency")) == "EUR"


def test_one_pool_and_one_compiled_cache_for_all_tenants(two: Tenancy) -> None:
    two.create_tenant("initech")
    binds = [two.session(n).get_bind() for n in ("acme", "globex", "initech")]
    assert {id(b.pool) for b in binds} == {id(two.engine.pool)}
    cache = two.engine._compiled_cache
    assert cache is not None
    query = sa.select(Customer.id, Customer.name).where(Customer.name != "x")
    with two.connection("acme") as c:
        c.execute(query).all()
    size = len(cache)
    for n in ("globex", "initech"):
        with two.connection(n) as c:
            c.execute(query).all()
    assert len(cache) == size  # the statement was compiled once, for every tenant


def test_implicit_tenant_from_context(two: Tenancy) -> None:
    with two.use("globex"):
        assert names(two) == ["globex customer"]
        with two.connection() as c:
            assert c.scalars(sa.select(Customer.name)).all() == ["globex customer"]
        assert run_in_thread(names, two) == ["globex customer"]
        with ContextExecutor(max_workers=2) as pool:
            assert pool.submit(names, two).result() == ["globex customer"]

    async def task(tenant: str) -> list[str]:
        with use(tenant):
            return await asyncio.create_task(asyncio.to_thread(names, two))

    async def main() -> list[list[str]]:
        return await asyncio.gather(task("acme"), task("globex"))

    assert asyncio.run(main()) == [["acme customer"], ["globex customer"]]


def test_explicit_tenant_wins_over_context(two: Tenancy) -> None:
    with two.use("globex"):
        assert names(two, "acme") == ["acme customer"]


def test_no_tenant_raises_before_sql_is_sent(two: Tenancy) -> None:
    with two.session() as s, s.begin():
        with pytest.raises(NoTenantSelected, match="customers"):
            s.scalars(sa.select(Customer)).all()
        # Had the statement reached PostgreSQL and failed there, this transaction would be
        # aborted ("current transaction is aborted"); it is not.
        assert s.scalars(sa.select(User.name)).all() == ["shared ann"]


def test_no_tenant_guard_covers_core_writes_and_ddl(two: Tenancy) -> None:
    with two.connection() as c:
        for stmt in (
            sa.select(Customer.__table__),
            sa.insert(Customer.__table__).values(name="x"),
            sa.update(Order.__table__).values(total=0),
            sa.delete(Setting.__table__),
        ):
            with pytest.raises(NoTenantSelected):
                c.execute(stmt)
        with pytest.raises(NoTenantSelected, match="settings"):
            Setting.__table__.create(c)
        c.rollback()
    assert names(two, "acme") == ["acme customer"]


def test_no_global_default_even_after_tenant_use(two: Tenancy) -> None:
    with two.use("acme"):
        names(two)
    with pytest.raises(NoTenantSelected):
        names(two)


def test_unknown_tenant(two: Tenancy) -> None:
    for call in (
        lambda: two.session("umbrella"),
        lambda: two.connection("umbrella").__enter__(),
        lambda: two.use("umbrella").__enter__(),
        lambda: two.get_tenant("umbrella"),
    ):
        with pytest.raises(UnknownTenant, match="umbrella"):
            call()
    with use("umbrella"), pytest.raises(UnknownTenant):
        two.session()


def test_tenant_dropped_by_another_process_while_in_use(two: Tenancy, database_url: str) -> None:
    assert names(two, "acme") == ["acme customer"]  # "acme" is now cached as known
    with Tenancy(database_url) as other:
        other.drop_tenant("acme", confirm=True)
    with pytest.raises(UnknownTenant, match="acme"):
        names(two, "acme")

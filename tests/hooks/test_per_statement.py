"""Issue 8, points 1 and 5: a statement names its tenant; mismatches and gaps are typed errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from tenantry import (
    AdminSessionRequired,
    NoTenantSelected,
    Tenancy,
    TenantMismatch,
    UnknownTenant,
    use,
)
from tests.app.models import Customer, Order, User


@pytest.fixture
def two(tenancy: Tenancy) -> Tenancy:
    for name, who in (("acme", "Ann"), ("beta", "Bob")):
        tenancy.create_tenant(name)
        with tenancy.session(name) as s:
            s.add(Customer(name=who))
            s.commit()
    return tenancy


def names(tenant: str) -> sa.Select[tuple[str]]:
    return sa.select(Customer.name).execution_options(tenant=tenant)


def test_admin_session_routes_each_statement(two: Tenancy) -> None:
    with two.admin_session() as s:
        assert s.scalars(names("acme")).all() == ["Ann"]
        assert s.scalars(names("beta")).all() == ["Bob"]


def test_admin_session_ignores_the_ambient_tenant(two: Tenancy) -> None:
    with use("acme"), two.admin_session() as s:
        assert s.scalars(names("beta")).all() == ["Bob"]
        with pytest.raises(NoTenantSelected, match="customers"):
            s.scalars(sa.select(Customer.name)).all()


def test_admin_session_writes_by_statement(two: Tenancy) -> None:
    with two.admin_session() as s:
        s.execute(sa.insert(Customer).values(name="Cid").execution_options(tenant="beta"))
        s.execute(
            sa.update(Customer).where(Customer.name == "Ann").values(name="Ada")
            .execution_options(tenant="acme")
        )
        s.commit()
    with two.session("beta") as s:
        assert sorted(s.scalars(sa.select(Customer.name))) == ["Bob", "Cid"]
    with two.session("acme") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["Ada"]


def test_same_tenant_in_tenant_session_is_fine(two: Tenancy) -> None:
    with two.session("acme") as s:
        assert s.scalars(names("acme")).all() == ["Ann"]


def test_other_tenant_in_tenant_session_raises_naming_both_and_table(two: Tenancy) -> None:
    with two.session("acme") as s, pytest.raises(TenantMismatch) as err:
        s.scalars(names("beta")).all()
    message = str(err.value)
    assert "'acme'" in message and "'beta'" in message and "customers" in message


def test_missing_tenant_still_raises_no_tenant_selected(two: Tenancy) -> None:
    with two.admin_session() as s, pytest.raises(NoTenantSelected, match="customers"):
        s.scalars(sa.select(Customer.name)).all()


def test_unknown_tenant(two: Tenancy) -> None:
    with two.admin_session() as s, pytest.raises(UnknownTenant, match=r"'nope'.*customers"):
        s.scalars(names("nope")).all()


def test_tenantless_plain_session_needs_an_admin_session(two: Tenancy) -> None:
    with two.session() as s, pytest.raises(AdminSessionRequired, match=r"acme.*customers"):
        s.scalars(names("acme")).all()


def test_core_admin_connection_routes_each_statement(two: Tenancy) -> None:
    query = sa.select(Customer.__table__.c.name)
    with two.admin_connection() as conn:
        assert conn.scalars(query.execution_options(tenant="acme")).all() == ["Ann"]
        assert conn.scalars(query.execution_options(tenant="beta")).all() == ["Bob"]
        with pytest.raises(NoTenantSelected, match="customers"):
            conn.scalars(query).all()  # the previous statement's tenant does not linger
        assert conn.scalars(query.execution_options(tenant="acme")).all() == ["Ann"]
        with pytest.raises(UnknownTenant, match=r"'nope'.*customers"):
            conn.scalars(query.execution_options(tenant="nope")).all()


def test_core_tenant_connection_rejects_other_tenant(two: Tenancy) -> None:
    query = sa.select(Customer.__table__.c.name)
    with two.connection("acme") as conn:
        assert conn.scalars(query.execution_options(tenant="acme")).all() == ["Ann"]
        with pytest.raises(TenantMismatch, match=r"'beta'.*'acme'"):
            conn.scalars(query.execution_options(tenant="beta")).all()


def test_core_plain_connection_needs_admin(two: Tenancy) -> None:
    query = sa.select(Customer.__table__.c.name).execution_options(tenant="acme")
    with two.connection() as conn, pytest.raises(AdminSessionRequired, match="customers"):
        conn.execute(query)


# -- point 3: shared and tenant tables together --------------------------------------------


def test_tenant_fk_to_shared_table_and_join(two: Tenancy) -> None:
    with two.admin_session() as s:
        s.add(User(id=1, name="root"))
        s.commit()
    for tenant, total in (("acme", "10.00"), ("beta", "20.00")):
        with two.session(tenant) as s:
            customer = s.scalars(sa.select(Customer)).one()
            s.add(Order(customer=customer, user_id=1, total=Decimal(total)))
            s.commit()
    query = (
        sa.select(User.name, Order.total)
        .join(Order, Order.user_id == User.id)
        .order_by(Order.id)
    )
    with two.session("acme") as s:
        assert s.execute(query).all() == [("root", Decimal("10.00"))]
    with two.admin_session() as s:
        assert s.execute(query.execution_options(tenant="beta")).all() == [
            ("root", Decimal("20.00"))
        ]
        # The shared side is reached without a tenant, and never rerouted with one.
        assert s.scalars(sa.select(User.name)).all() == ["root"]
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    sa.event.listen(two.engine, "before_cursor_execute", record)
    try:
        with two.admin_connection() as conn:
            assert conn.execute(query.execution_options(tenant="acme")).all() == [
                ("root", Decimal("10.00"))
            ]
    finally:
        sa.event.remove(two.engine, "before_cursor_execute", record)
    assert "public.users" in seen[-1] and "tenant_acme.orders" in seen[-1]


def test_foreign_key_to_shared_table_is_enforced(two: Tenancy) -> None:
    with two.session("acme") as s:
        customer = s.scalars(sa.select(Customer)).one()
        s.add(Order(customer=customer, user_id=999, total=Decimal(1)))
        with pytest.raises(sa.exc.IntegrityError, match="users"):
            s.commit()

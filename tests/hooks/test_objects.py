"""Issue 8, points 2 and 5: ORM instances know their tenant and stay in it."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from tenantry import Tenancy, TenantMismatch, assign, tenant_of
from tests.app.models import Customer, Order, User


@pytest.fixture
def two(tenancy: Tenancy) -> Tenancy:
    with tenancy.admin_session() as s:
        s.add(User(id=1, name="root"))
        s.commit()
    for name, who in (("acme", "Ann"), ("beta", "Bob")):
        tenancy.create_tenant(name)
        with tenancy.session(name) as s:
            customer = Customer(name=who)  # id 1 in both tenants
            s.add(customer)
            s.add(Order(customer=customer, user_id=1, total=Decimal(5)))
            s.commit()
    return tenancy


def test_tenant_of_loaded_and_written_instances(two: Tenancy) -> None:
    with two.session("acme") as s:
        loaded = s.scalars(sa.select(Customer)).one()
        written = Customer(name="Al")
        s.add(written)
        s.commit()
        assert tenant_of(loaded) == "acme"
        assert tenant_of(written) == "acme"
        user = s.get(User, 1)
        assert user is not None and tenant_of(user) is None  # shared rows have no tenant
    assert tenant_of(loaded) == "acme"  # still known once detached
    assert tenant_of(Customer(name="new")) is None


def test_admin_session_keeps_equal_keys_of_two_tenants_apart(two: Tenancy) -> None:
    with two.admin_session() as s:
        a = s.scalars(sa.select(Customer).execution_options(tenant="acme")).one()
        b = s.scalars(sa.select(Customer).execution_options(tenant="beta")).one()
        assert a is not b and a.id == b.id == 1
        assert (a.name, tenant_of(a)) == ("Ann", "acme")
        assert (b.name, tenant_of(b)) == ("Bob", "beta")
        # Refreshing an expired instance reads its own tenant.
        s.expire(b)
        assert b.name == "Bob"


def test_lazy_loads_stay_in_the_instance_tenant(two: Tenancy) -> None:
    with two.admin_session() as s:
        b = s.scalars(sa.select(Customer).execution_options(tenant="beta")).one()
        orders = b.orders  # lazy load: no tenant named, follows b
        assert [tenant_of(o) for o in orders] == ["beta"]
        assert orders[0].customer is b  # many-to-one back to the same instance
        assert orders[0].user is not None and orders[0].user.name == "root"  # shared side


def test_add_instance_of_another_tenant_raises(two: Tenancy) -> None:
    with two.session("acme") as s:
        ann = s.scalars(sa.select(Customer)).one()
    with two.session("beta") as s, pytest.raises(TenantMismatch) as err:
        s.add(ann)
    message = str(err.value)
    assert "'acme'" in message and "'beta'" in message and "customers" in message


def test_merge_instance_of_another_tenant_raises_and_copies_nothing(two: Tenancy) -> None:
    with two.session("acme") as s:
        ann = s.scalars(sa.select(Customer)).one()
    ann.name = "Changed"
    with two.session("beta") as s:
        with pytest.raises(TenantMismatch, match="customers"):
            s.merge(ann)
        s.rollback()
        assert s.scalars(sa.select(Customer.name)).all() == ["Bob"]


def test_merge_without_load_of_another_tenant_raises(two: Tenancy) -> None:
    with two.session("acme") as s:
        ann = s.scalars(sa.select(Customer)).one()
    with two.session("beta") as s, pytest.raises(TenantMismatch, match="customers"):
        s.merge(ann, load=False)


def test_merge_of_new_instance_assigned_to_another_tenant_raises(two: Tenancy) -> None:
    with two.session("beta") as s:
        with pytest.raises(TenantMismatch, match="'acme'"):
            s.merge(assign(Customer(name="x"), "acme"))
        customer = Customer(name="y")  # the merge cascade is checked too
        customer.orders.append(assign(Order(user_id=1, total=Decimal(1)), "acme"))
        with pytest.raises(TenantMismatch, match="orders"):
            s.merge(customer)
        s.rollback()
        assert s.scalars(sa.select(Customer.name)).all() == ["Bob"]


def test_merge_into_same_tenant_works(two: Tenancy) -> None:
    with two.session("acme") as s:
        ann = s.scalars(sa.select(Customer)).one()
    ann.name = "Ada"
    with two.session("acme") as s:
        s.merge(ann)
        s.commit()
        assert s.scalars(sa.select(Customer.name)).all() == ["Ada"]


def test_assigned_instance_cannot_join_another_tenant(two: Tenancy) -> None:
    with two.session("beta") as s, pytest.raises(TenantMismatch, match="'acme'"):
        s.add(assign(Customer(name="x"), "acme"))


def test_assign_several_tenants_in_one_admin_flush(two: Tenancy) -> None:
    with two.admin_session() as s:
        c1 = assign(Customer(name="A2"), "acme")
        c2 = assign(Customer(name="B2"), "beta")
        c3 = assign(Customer(name="B3"), "beta")
        c1.orders.append(Order(user_id=1, total=Decimal(1)))  # follows its customer
        s.add_all([c1, c2, c3])
        s.commit()
        assert [tenant_of(c) for c in (c1, c2, c3)] == ["acme", "beta", "beta"]
        assert tenant_of(c1.orders[0]) == "acme"
    with two.session("acme") as s:
        assert sorted(s.scalars(sa.select(Customer.name))) == ["A2", "Ann"]
        assert s.scalar(sa.select(sa.func.count()).select_from(Order)) == 2
    with two.session("beta") as s:
        assert sorted(s.scalars(sa.select(Customer.name))) == ["B2", "B3", "Bob"]


def test_new_instance_attached_to_a_loaded_one_goes_to_its_tenant(two: Tenancy) -> None:
    with two.admin_session() as s:
        b = s.scalars(sa.select(Customer).execution_options(tenant="beta")).one()
        b.orders.append(Order(user_id=1, total=Decimal(7)))
        s.commit()
    with two.session("beta") as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Order)) == 2


def test_unassigned_instance_in_admin_session_raises(two: Tenancy) -> None:
    from tenantry import NoTenantSelected

    with two.admin_session() as s:
        s.add(Customer(name="nowhere"))
        with pytest.raises(NoTenantSelected, match="customers"):
            s.flush()


def test_reassigning_a_loaded_instance_raises(two: Tenancy) -> None:
    with two.session("acme") as s:
        ann = s.scalars(sa.select(Customer)).one()
        with pytest.raises(TenantMismatch, match="tenant 'acme' to tenant 'beta'"):
            assign(ann, "beta")


def test_instance_tied_to_two_tenants_raises(two: Tenancy) -> None:
    with two.admin_session() as s:
        a = s.scalars(sa.select(Customer).execution_options(tenant="acme")).one()
        order = assign(Order(user_id=1, total=Decimal(1)), "beta")
        a.orders.append(order)
        with pytest.raises(TenantMismatch, match=r"orders|customers"):
            s.flush()


def test_get_by_primary_key_in_tenant_and_admin_sessions(two: Tenancy) -> None:
    with two.session("acme") as s:
        ann = s.scalars(sa.select(Customer)).one()
        assert s.get(Customer, 1) is ann
    with two.admin_session() as s:
        bob = s.get(Customer, 1, execution_options={"tenant": "beta"})
        ann = s.get(Customer, 1, identity_token="acme")
        assert bob is not None and ann is not None
        assert (bob.name, ann.name) == ("Bob", "Ann")
        assert s.get(Customer, 1, identity_token="beta") is bob


def test_bulk_update_synchronises_only_that_tenant_instances(two: Tenancy) -> None:
    with two.admin_session() as s:
        ann = s.scalars(sa.select(Customer).execution_options(tenant="acme")).one()
        bob = s.scalars(sa.select(Customer).execution_options(tenant="beta")).one()
        s.execute(
            sa.update(Customer).where(Customer.id == 1).values(name="Zed")
            .execution_options(tenant="beta")
        )
        assert (ann.name, bob.name) == ("Ann", "Zed")
        s.commit()
        assert (ann.name, bob.name) == ("Ann", "Zed")


def test_admin_flush_updates_and_deletes_in_the_instance_tenant(two: Tenancy) -> None:
    with two.admin_session() as s:
        ann = s.scalars(sa.select(Customer).execution_options(tenant="acme")).one()
        bob = s.scalars(sa.select(Customer).execution_options(tenant="beta")).one()
        ann.name = "Ada"
        for order in bob.orders:
            s.delete(order)
        s.commit()
    with two.session("acme") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["Ada"]
        assert s.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
    with two.session("beta") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["Bob"]
        assert s.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_get_uses_the_identity_map_in_tenant_sessions(two: Tenancy) -> None:
    statements: list[str] = []
    sa.event.listen(two.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with two.session("acme") as s:
        first = s.get(Customer, 1)
        count = len(statements)
        assert s.get(Customer, 1) is first  # from the identity map: no second query
        assert len(statements) == count
        assert first is not None and tenant_of(first) == "acme"
    with two.session("beta") as s:
        other = s.get(Customer, 1)
        assert other is not None and other.name == "Bob"  # same id, other tenant's row

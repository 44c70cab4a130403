import sqlalchemy as sa

from tenantry import Tenancy

from .app.models import Customer


def test_tenant_round_trip(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    with tenancy.session("acme") as s:
        s.add(Customer(name="Ann"))
        s.commit()
        assert s.scalars(sa.select(Customer.name)).all() == ["Ann"]

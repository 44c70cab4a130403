"""Evidence: arbitrary text as tenant names is either a valid round-tripping name or rejected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tenantry import InvalidTenantName, Tenancy
from tests.app.models import Setting
from tests.support.evidence import Tally

INJECTIONS = [
    'a"; DROP SCHEMA public; --',
    "a'; DROP SCHEMA public CASCADE; --",
    "a; DROP TABLE tenantry_tenants",
    'x" CASCADE; --',
    "tenant\x00null",
    "ÄCME",
    "a b",
    "",
    "pg_catalog",
    "public",
]
names = st.one_of(
    st.text(max_size=70),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=60),
    st.sampled_from(INJECTIONS),
)
tally = Tally()


@pytest.fixture(scope="module", autouse=True)
def publish_tally() -> Iterator[None]:
    yield
    tally.publish("names")


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=names)
@example(name='a"; DROP SCHEMA public; --')
@example(name="_tenant__")  # schema tenant__tenant__ contains the placeholder text
@example(name="pg_")  # valid here, though "pg_" alone is a reserved schema
@example(name="a" * 56)  # the longest valid name under the default prefix
@example(name="a" * 57)
def test_any_text_is_a_valid_name_or_rejected(tenancy: Tenancy, name: str) -> None:
    tally.add("names tried")
    try:
        info = tenancy.create_tenant(name)
    except InvalidTenantName:
        tally.add("names rejected")
        with pytest.raises(InvalidTenantName):
            tenancy.drop_tenant(name, confirm=True)
    else:
        tally.add("names round-tripped")
        assert info.name == name and info.schema == "tenant_" + name
        assert name in {t.name for t in tenancy.list_tenants()}
        with tenancy.session(name) as s:
            assert s.scalars(sa.select(Setting.value)).all() == ["EUR"]  # seeded by t001
        assert tenancy.drop_tenant(name, confirm=True)
        assert name not in {t.name for t in tenancy.list_tenants()}
    with tenancy.engine.connect() as conn:  # public and the registry are intact
        assert conn.execute(sa.text("SELECT count(*) FROM public.users")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM public.tenantry_tenants")).scalar() == 0



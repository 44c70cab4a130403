"""tenant_key: cache keys namespaced by tenant, never colliding across tenants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry import NoTenantSelected, tenant_key, use
from tenantry.errors import ConfigurationError, InvalidTenantName

tenant_names = st.from_regex(r"[a-z0-9_]{1,20}", fullmatch=True)


def test_the_current_tenant_namespaces_the_key() -> None:
    with use("acme"):
        assert tenant_key("user:42") == "tenant:acme:user:42"
        assert tenant_key("x", tenant="globex") == "tenant:globex:x"  # explicit wins
    with pytest.raises(NoTenantSelected):
        tenant_key("x")
    assert tenant_key("*", tenant="acme") == "tenant:acme:*"  # a SCAN MATCH pattern


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidTenantName):
        tenant_key("x", tenant="ac:me")
    with pytest.raises(ConfigurationError):
        tenant_key(42)  # type: ignore[arg-type]


@given(tenant_names, st.text(), tenant_names, st.text())
def test_different_pairs_never_give_the_same_key(t1: str, k1: str, t2: str, k2: str) -> None:
    if (t1, k1) != (t2, k2):
        assert tenant_key(k1, tenant=t1) != tenant_key(k2, tenant=t2)


@given(tenant_names, st.text())
def test_the_key_is_stable_and_parses_back(tenant: str, key: str) -> None:
    made = tenant_key(key, tenant=tenant)
    assert made == tenant_key(key, tenant=tenant)
    prefix, name, rest = made.split(":", 2)
    assert (prefix, name, rest) == ("tenant", tenant, key)

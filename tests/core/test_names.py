import pytest

from tenantry import InvalidTenantName
from tenantry.names import MAX_IDENTIFIER_BYTES, identifier, quote, validate_name, validate_prefix


@pytest.mark.parametrize("name", ["acme", "a", "acme_2", "42", "x" * 56])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name
    assert identifier(name) == "tenant_" + name


@pytest.mark.parametrize(
    "name",
    ["", "Acme", "ac-me", "ac me", "acmé", 'a"; DROP SCHEMA public; --', "x" * 57, "a.b", None, 7],
)
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidTenantName):
        validate_name(name)


def test_length_limit_depends_on_prefix() -> None:
    assert validate_name("x" * MAX_IDENTIFIER_BYTES, prefix="")
    with pytest.raises(InvalidTenantName, match="at most 60"):
        validate_name("x" * 61, prefix="co_")


@pytest.mark.parametrize("name", ["public", "pg_catalog", "pg_x", "information_schema"])
def test_reserved_identifiers_without_prefix(name: str) -> None:
    with pytest.raises(InvalidTenantName, match="reserved"):
        validate_name(name, prefix="")


@pytest.mark.parametrize("prefix", ["1x_", "Tenant_", "t-", "t "])
def test_invalid_prefix(prefix: str) -> None:
    with pytest.raises(InvalidTenantName):
        validate_prefix(prefix)


def test_quote_always_quotes_and_escapes() -> None:
    assert quote("tenant_acme") == '"tenant_acme"'
    assert quote('we"ird') == '"we""ird"'

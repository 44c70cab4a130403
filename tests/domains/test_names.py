"""normalise_domain: one stored form per domain, and a clear refusal for what is not one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry import InvalidDomain, TenantryError, normalise_domain


@pytest.mark.parametrize(
    ("given_", "stored"),
    [
        ("acme.com", "acme.com"),
        ("Shop.ACME.com", "shop.acme.com"),
        ("acme.com.", "acme.com"),  # one trailing dot: the same name, fully qualified
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008: no transitional mapping to "fass"
        ("\uff21\uff23\uff2d\uff25\uff0ecom", "acme.com"),  # full-width ACME, full stop
        ("localhost", "localhost"),
        ("a-b.c0.io", "a-b.c0.io"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_accepted_and_normalised(given_: str, stored: str) -> None:
    assert normalise_domain(given_) == stored


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        (".", "empty"),
        ("acme.com:8080", "port"),
        ("acme.com:", "port"),
        ("https://acme.com", "URL"),
        ("acme.com/shop", "path"),
        ("acme.com?x=1", "path"),
        ("user@acme.com", "user"),
        ("*.acme.com", "wildcard"),
        ("a..com", "mpty"),
        (".acme.com", "mpty"),
        ("acme.com..", "empty label"),
        ("a" * 64 + ".com", "too long"),
        (".".join(["a" * 60] * 5), "long"),  # 304 characters
        ("1.2.3.4", "IP address"),
        ("10.0.0.1.", "IP address"),
        ("[::1]", "IP address"),
        ("::1", "IP address"),
        ("1.2.3", "IP address"),  # what a browser reads as 1.2.0.3
        ("acme.0x7f", "IP address"),
        ("-acme.com", "hyphen"),
        ("acme_shop.com", "not allowed"),
        ("acme .com", "not allowed"),
        (" acme.com", "white space"),
        ("xn--zz.com", "A-label"),
        ("ex\u200dample.com", "Joiner"),
    ],
)
def test_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidDomain, match=why) as caught:
        normalise_domain(text)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TenantryError)


def test_longest_name_is_accepted() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    assert normalise_domain(longest) == longest
    assert normalise_domain(longest + ".") == longest
    with pytest.raises(InvalidDomain, match="long"):
        normalise_domain(longest + "d")


labels = st.text(
    alphabet=st.sampled_from("abcxyz019-") | st.characters(categories=["Ll", "Lu", "Lo", "Nd"]),
    min_size=1, max_size=12,
)
names = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(names)
def test_normalising_is_idempotent_and_gives_ascii_host_names(text: str) -> None:
    try:
        stored = normalise_domain(text)
    except InvalidDomain:
        return  # refused with the typed error, never another one
    assert normalise_domain(stored) == stored
    assert stored.isascii() and stored == stored.lower() and not stored.endswith(".")
    assert normalise_domain(stored + ".") == stored
    assert normalise_domain(stored.upper()) == stored


@given(names, st.integers(min_value=0, max_value=99999))
def test_ports_are_refused(text: str, port: int) -> None:
    try:
        stored = normalise_domain(text)
    except InvalidDomain:
        stored = "acme.com"
    for with_port in (f"{stored}:{port}", f"{text}:{port}"):
        with pytest.raises(InvalidDomain):
            normalise_domain(with_port)


@given(st.text(max_size=40))
def test_any_text_is_normalised_or_refused_with_the_typed_error(text: str) -> None:
    try:
        stored = normalise_domain(text)
    except InvalidDomain:
        return
    assert normalise_domain(stored) == stored

"""Domain names as tenants have them: one normal form (lowercase ASCII, international labels
as punycode), so that a name is stored once and found from either spelling."""

from __future__ import annotations

import ipaddress
import re

import idna

from ..errors import InvalidDomain

#: Longest domain name, without its trailing dot (RFC 1035).
MAX_DOMAIN = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: A last label a browser would read as part of an IPv4 address (WHATWG URL "ends in a number").
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")


def normalise_domain(text: str) -> str:
    """``text`` as a stored domain: IDNA 2008 with UTS 46 mapping (``Bücher.Example`` ->
    ``xn--bcher-kva.example``), lowercase, one trailing dot removed.

    Raises :class:`~tenantry.errors.InvalidDomain` for ports, schemes, paths, wildcards, IP
    addresses, empty labels, labels over 63 or names over 253 characters, and whatever
    IDNA refuses.
    """
    if not isinstance(text, str) or not text or text == ".":
        raise InvalidDomain(f"invalid domain {text!r}: empty")
    refusal = _refusal(text)
    if refusal:
        raise InvalidDomain(f"invalid domain {text!r}: {refusal}")
    name = text[:-1] if text.endswith(".") else text
    try:
        ascii_name = idna.encode(name, uts46=True, std3_rules=True).decode("ascii").lower()
    except (ValueError, UnicodeError) as exc:  # idna.IDNAError is a UnicodeError
        raise InvalidDomain(f"invalid domain {text!r}: {exc}") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > MAX_DOMAIN:
        raise InvalidDomain(f"invalid domain {text!r}: longer than {MAX_DOMAIN} characters")
    bad = next((label for label in labels if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        raise InvalidDomain(f"invalid domain {text!r}: label {bad!r} is not a host name label")
    if _NUMERIC.fullmatch(labels[-1]):
        raise InvalidDomain(f"invalid domain {text!r}: looks like an IP address")
    return ascii_name


def _refusal(text: str) -> str | None:
    """Why ``text`` is plainly not a bare domain (before IDNA says more), or ``None``."""
    if "://" in text:
        return "a URL: give the host name only, without scheme"
    if any(c in text for c in "/?#"):
        return "has a path: give the host name only"
    if "@" in text:
        return "has user information: give the host name only"
    if text.startswith("[") or _is_ip(text):
        return "an IP address, not a domain"
    if ":" in text:
        return "has a port: domains match whatever port a request uses"
    if "*" in text:
        return "wildcards are not supported: register each domain"
    if text.endswith(".."):
        return "empty label"
    if text != text.strip():
        return "surrounding white space"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def display(domain: str) -> str:
    """A stored ``domain`` as people read it (punycode labels in Unicode)."""
    try:
        return idna.decode(domain)
    except (ValueError, UnicodeError):
        return domain

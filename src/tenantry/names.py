"""Tenant name validation and the PostgreSQL identifiers derived from names."""

from __future__ import annotations

import re

from sqlalchemy.dialects import postgresql

from .errors import InvalidTenantName

#: PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES = 63
DEFAULT_PREFIX = "tenant_"

_NAME = re.compile(r"[a-z0-9_]+")
_PREFIX = re.compile(r"([a-z_][a-z0-9_]*)?")
_RESERVED = ("pg_",)
_RESERVED_EXACT = frozenset({"public", "information_schema"})
_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start a PostgreSQL identifier, else raise."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise InvalidTenantName(
            f"invalid tenant prefix {prefix!r}: use lowercase letters, digits and '_', "
            "not starting with a digit"
        )
    return prefix


def check_syntax(name: object) -> str:
    """Return ``name`` if it is made of lowercase letters, digits and ``_`` and fits an
    identifier; the checks that need the prefix are :func:`validate_name`'s."""
    if not isinstance(name, str):
        raise InvalidTenantName(f"tenant name must be a string, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise InvalidTenantName(
            f"invalid tenant name {name!r}: use lowercase letters, digits and '_' only"
        )
    if len(name) > MAX_IDENTIFIER_BYTES:
        raise InvalidTenantName(f"invalid tenant name {name!r}: longer than an identifier")
    return name


def validate_name(name: object, prefix: str = DEFAULT_PREFIX) -> str:
    """Return ``name`` if it is a valid tenant name under ``prefix``, else raise.

    Valid: lowercase ASCII letters, digits and ``_``, and ``prefix + name`` fits PostgreSQL's
    63-byte identifier limit and is not a reserved schema name.
    """
    checked = check_syntax(name)
    ident = prefix + checked
    if len(ident.encode()) > MAX_IDENTIFIER_BYTES:
        limit = MAX_IDENTIFIER_BYTES - len(prefix.encode())
        raise InvalidTenantName(
            f"invalid tenant name {name!r}: at most {limit} characters with prefix {prefix!r}"
        )
    if ident in _RESERVED_EXACT or ident.startswith(_RESERVED):
        raise InvalidTenantName(f"invalid tenant name {name!r}: {ident!r} is reserved")
    return checked


def identifier(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The schema (or database) name of tenant ``name``: ``prefix + name``, validated."""
    return prefix + validate_name(name, prefix)


def quote(ident: str) -> str:
    """Quote an identifier for PostgreSQL (always quoted, embedded quotes doubled)."""
    return _PREPARER.quote_identifier(ident)

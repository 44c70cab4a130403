"""Names of strict mode's roles: one per tenant, one group per database.

Role names are cluster-wide, so they carry a short hash of the database name:
``tenant_acme_1a2b3c4d`` for schema ``tenant_acme`` of one database.
"""

from __future__ import annotations

import hashlib

from ..names import MAX_IDENTIFIER_BYTES

#: The execution option that carries the role a tenant connection switches to.
ROLE_OPTION = "tenantry_role"


def _digest(text: str) -> str:
    return hashlib.blake2s(text.encode(), digest_size=4).hexdigest()


def role_name(database: str, schema: str) -> str:
    """The role of the tenant stored in ``schema`` of ``database`` (fits 63 bytes)."""
    suffix = "_" + _digest(f"{database}/{schema}")
    return schema[: MAX_IDENTIFIER_BYTES - len(suffix)] + suffix


def group_name(database: str) -> str:
    """The group role (all tenants of ``database``) that receives shared-table grants."""
    return f"tenantry_{_digest(database)}_tenants"


def unsuffixed(role: str) -> str:
    """``role`` without the hash suffix that :func:`role_name` adds."""
    return role.rsplit("_", 1)[0]

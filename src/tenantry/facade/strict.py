"""Strict mode's verbs, as :class:`~tenantry.Tenancy` names them."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from ..core import Core
from ..provisioning import lifecycle


class StrictVerbs:
    """Tenant roles and shared-table grants (:mod:`tenantry.strict`)."""

    core: Core

    def grant_shared(self, *tables: sa.Table | str, write: bool = False) -> None:
        """Strict mode: let every tenant read (or, with ``write=True``, write) shared tables.

        ``tables`` are :class:`~sqlalchemy.Table` objects or ``"schema.table"`` names. The
        grant goes to the group role all tenant roles belong to, so it covers future tenants.
        """
        self.core.strict().grant_shared(tables, write=write)

    def revoke_shared(self, *tables: sa.Table | str) -> None:
        """Strict mode: take back what :meth:`grant_shared` gave on ``tables``."""
        self.core.strict().revoke_shared(tables)

    def tenant_role(self, name: str) -> str:
        """Strict mode: the PostgreSQL role of tenant ``name``."""
        return self.core.tenant_role(name)

    def enable_strict(self) -> None:
        """Turn strict mode on after construction (as ``strict=True`` does); idempotent."""
        self.core.enable_strict()

    def reset_logins(self, tenants: Sequence[str] | None = None) -> int:
        """``strict="login"``: make each tenant's role ``LOGIN`` with the password derived from
        the current login secret (after a secret change, or a tenant that changed its own
        password); returns how many roles were set."""
        return lifecycle.reset_logins(self.core, tenants)

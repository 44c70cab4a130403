"""Typed errors raised by tenantry. Every one derives from :class:`TenantryError`."""

from __future__ import annotations


class TenantryError(Exception):
    """Base class of every error tenantry raises on purpose."""


class InvalidTenantName(TenantryError, ValueError):
    """A tenant name (or prefix) that cannot become a safe PostgreSQL identifier."""


class NoTenantSelected(TenantryError):
    """A statement touched a tenant table while no tenant was selected."""

    def __init__(self, tables: list[str] | None = None) -> None:
        self.tables = tables or []
        where = f" (tables: {', '.join(self.tables)})" if self.tables else ""
        super().__init__(
            "no tenant selected for a statement on tenant tables"
            f"{where}; use tenancy.session('name'), tenancy.use('name') or "
            "execution_options(tenant='name')"
        )


class UnknownTenant(TenantryError, LookupError):
    """The named tenant is not in the registry (or is not ready)."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        super().__init__(f"unknown tenant {name!r}" + (f": {detail}" if detail else ""))


class TenantExists(TenantryError):
    """The operation would create a tenant (or storage) that already exists."""


class ConfirmationRequired(TenantryError):
    """A destructive operation was called without ``confirm=True`` (``--yes`` in the CLI)."""


class MigrationError(TenantryError):
    """Migrations are misconfigured, or a migration failed."""


class ConfigurationError(TenantryError):
    """Tenancy was set up with options that cannot work together."""


class TenantIsolationError(TenantryError, PermissionError):
    """Strict mode stopped a tenant's statement from reaching something not its own."""

    def __init__(self, tenant: str, kind: str, name: str, owner: str | None = None) -> None:
        self.tenant, self.kind, self.name, self.owner = tenant, kind, name, owner
        what = f"{kind} {name!r}" + (f" of tenant {owner!r}" if owner is not None else "")
        hint = (
            "" if kind == "schema"
            else " (shared tables need tenancy.grant_shared(...) in strict mode)"
        )
        super().__init__(f"tenant {tenant!r} may not use {what}: permission denied{hint}")

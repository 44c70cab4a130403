"""tenantry: multi-tenancy for SQLAlchemy 2 + Alembic applications on PostgreSQL."""

from .context import ContextExecutor, carry, current_tenant, run_in_thread, use
from .errors import (
    ConfigurationError,
    ConfirmationRequired,
    InvalidTenantName,
    MigrationError,
    NoTenantSelected,
    TenantExists,
    TenantIsolationError,
    TenantryError,
    UnknownTenant,
)
from .migrations import MigrationReport, Step, TenantOutcome, TenantStatus
from .models import SHARED_SCHEMA, TENANT_SCHEMA, SharedBase, TenantBase
from .registry import Location, State, TenantInfo
from .tenancy import Tenancy, make_engine

__all__ = [
    "SHARED_SCHEMA",
    "TENANT_SCHEMA",
    "ConfigurationError",
    "ConfirmationRequired",
    "ContextExecutor",
    "InvalidTenantName",
    "Location",
    "MigrationError",
    "MigrationReport",
    "NoTenantSelected",
    "SharedBase",
    "State",
    "Step",
    "Tenancy",
    "TenantBase",
    "TenantExists",
    "TenantInfo",
    "TenantOutcome",
    "TenantStatus",
    "TenantryError",
    "UnknownTenant",
    "carry",
    "current_tenant",
    "make_engine",
    "run_in_thread",
    "use",
    "TenantIsolationError",
]

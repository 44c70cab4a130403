"""tenantry: multi-tenancy for SQLAlchemy 2 + Alembic applications on PostgreSQL."""

from .across import TenantRow
from .context import ContextExecutor, carry, current_tenant, run_in_thread, use
from .errors import (
    AdminSessionRequired,
    ConfigurationError,
    ConfirmationRequired,
    InvalidTenantName,
    MigrationError,
    NoTenantSelected,
    NotReadOnly,
    TenantElsewhere,
    TenantExists,
    TenantMismatch,
    TenantryError,
    TransferError,
    UnknownTenant,
)
from .jobs import TenantProcessPool
from .migrations import MigrationReport, Step, TenantOutcome, TenantStatus
from .models import SHARED_SCHEMA, TENANT_SCHEMA, SharedBase, TenantBase
from .orm import AdminSession, TenantSession, assign, tenant_of
from .registry import Location, State, TenantInfo
from .tenancy import Tenancy, make_engine
from .transfer import Manifest

__all__ = [
    "SHARED_SCHEMA",
    "TENANT_SCHEMA",
    "AdminSession",
    "AdminSessionRequired",
    "ConfigurationError",
    "ConfirmationRequired",
    "ContextExecutor",
    "InvalidTenantName",
    "Location",
    "Manifest",
    "MigrationError",
    "MigrationReport",
    "NoTenantSelected",
    "NotReadOnly",
    "SharedBase",
    "State",
    "Step",
    "Tenancy",
    "TenantBase",
    "TenantElsewhere",
    "TenantExists",
    "TenantInfo",
    "TenantMismatch",
    "TenantOutcome",
    "TenantProcessPool",
    "TenantRow",
    "TenantSession",
    "TenantStatus",
    "TenantryError",
    "TransferError",
    "UnknownTenant",
    "assign",
    "carry",
    "current_tenant",
    "make_engine",
    "run_in_thread",
    "tenant_of",
    "use",
]

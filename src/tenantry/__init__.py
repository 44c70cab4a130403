"""tenantry: multi-tenancy for SQLAlchemy 2 + Alembic applications on PostgreSQL."""

from .context import ContextExecutor, carry, current_tenant, run_in_thread, use
from .doctor import DoctorReport, Finding, Problem
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
from .logs import TenantFilter
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
    "DoctorReport",
    "Finding",
    "InvalidTenantName",
    "Location",
    "MigrationError",
    "MigrationReport",
    "NoTenantSelected",
    "Problem",
    "SharedBase",
    "State",
    "Step",
    "Tenancy",
    "TenantBase",
    "TenantExists",
    "TenantFilter",
    "TenantInfo",
    "TenantIsolationError",
    "TenantOutcome",
    "TenantStatus",
    "TenantryError",
    "UnknownTenant",
    "carry",
    "current_tenant",
    "make_engine",
    "run_in_thread",
    "use",
]

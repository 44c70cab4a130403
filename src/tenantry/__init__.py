"""tenantry: multi-tenancy for SQLAlchemy 2 + Alembic applications on PostgreSQL."""

from .context import ContextExecutor, carry, current_tenant, run_in_thread, use

# -- database per tenant (issue 3) --
from .engines import EngineMetrics, EngineRegistry
from .errors import (
    ConfigurationError,
    ConfirmationRequired,
    ConnectionBudgetExceeded,
    InvalidTenantName,
    MigrationError,
    MoveError,
    NoTenantSelected,
    TenantExists,
    TenantryError,
    UnknownTenant,
)
from .migrations import MigrationReport, Step, TenantOutcome, TenantStatus
from .models import SHARED_SCHEMA, TENANT_SCHEMA, SharedBase, TenantBase
from .registry import Location, State, TenantInfo
from .strategies.database import DatabaseStrategy, Placement, fewest_tenants
from .tenancy import Tenancy, make_engine

__all__ = [
    "SHARED_SCHEMA",
    "TENANT_SCHEMA",
    "ConfigurationError",
    "ConfirmationRequired",
    "ConnectionBudgetExceeded",
    "ContextExecutor",
    "DatabaseStrategy",
    "EngineMetrics",
    "EngineRegistry",
    "InvalidTenantName",
    "Location",
    "MigrationError",
    "MigrationReport",
    "MoveError",
    "NoTenantSelected",
    "Placement",
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
    "fewest_tenants",
    "make_engine",
    "run_in_thread",
    "use",
]

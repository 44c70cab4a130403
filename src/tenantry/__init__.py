"""tenantry: multi-tenancy for SQLAlchemy 2 + Alembic applications on PostgreSQL."""

from .across import TenantRow
from .context import ContextExecutor, carry, current_tenant, run_in_thread, use
from .doctor import DoctorReport, Finding, Problem
from .enginemetrics import EngineMetrics
from .engines import EngineRegistry
from .errors import (
    AdminSessionRequired,
    ClientProgramNotFound,
    ConfigurationError,
    ConfirmationRequired,
    ConnectionBudgetExceeded,
    ForeignKeyAcrossDatabases,
    InvalidTenantName,
    MigrationError,
    MoveError,
    NotConfiguredFor,
    NoTenantSelected,
    NotReadOnly,
    OnlineMoveUnavailable,
    TemplateError,
    TenantElsewhere,
    TenantExists,
    TenantIsolationError,
    TenantLoginRefused,
    TenantMismatch,
    TenantryError,
    TransferError,
    UnfinishedOperation,
    UnknownServer,
    UnknownTenant,
    WrongTenantKind,
)
from .fleet import Drift
from .jobs import TenantProcessPool
from .logs import TenantFilter
from .migrationresults import MigrationReport, Step, TenantOutcome, TenantStatus
from .models import SHARED_SCHEMA, TENANT_SCHEMA, SharedBase, TenantBase
from .orm import AdminSession, TenantSession, assign, tenant_of
from .registry import Location, State, TenantInfo
from .strategies.database import DatabaseStrategy, Placement, fewest_tenants
from .strategies.hybrid import HybridStrategy
from .tenancy import Tenancy, TenancyConfig, make_engine
from .transfer import Manifest

__all__ = [
    "SHARED_SCHEMA",
    "TENANT_SCHEMA",
    "AdminSession",
    "AdminSessionRequired",
    "ClientProgramNotFound",
    "ConfigurationError",
    "ConfirmationRequired",
    "ConnectionBudgetExceeded",
    "ContextExecutor",
    "DatabaseStrategy",
    "DoctorReport",
    "Drift",
    "EngineMetrics",
    "EngineRegistry",
    "Finding",
    "ForeignKeyAcrossDatabases",
    "HybridStrategy",
    "InvalidTenantName",
    "Location",
    "Manifest",
    "MigrationError",
    "MigrationReport",
    "MoveError",
    "NoTenantSelected",
    "NotConfiguredFor",
    "NotReadOnly",
    "OnlineMoveUnavailable",
    "Placement",
    "Problem",
    "SharedBase",
    "State",
    "Step",
    "TemplateError",
    "Tenancy",
    "TenancyConfig",
    "TenantBase",
    "TenantElsewhere",
    "TenantExists",
    "TenantFilter",
    "TenantInfo",
    "TenantIsolationError",
    "TenantLoginRefused",
    "TenantMismatch",
    "TenantOutcome",
    "TenantProcessPool",
    "TenantRow",
    "TenantSession",
    "TenantStatus",
    "TenantryError",
    "TransferError",
    "UnfinishedOperation",
    "UnknownServer",
    "UnknownTenant",
    "WrongTenantKind",
    "assign",
    "carry",
    "current_tenant",
    "fewest_tenants",
    "make_engine",
    "run_in_thread",
    "tenant_of",
    "use",
]

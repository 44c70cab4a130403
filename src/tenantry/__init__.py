"""tenantry: multi-tenancy for SQLAlchemy 2 + Alembic applications on PostgreSQL."""

from .cachekeys import tenant_key
from .context import ContextExecutor, carry, current_tenant, run_in_thread, use
from .core.events import HookFailure, TenantEvent
from .core.history import HistoryEntry
from .core.registry import Location, State, TenantInfo
from .crosstenant.across import TenantRow
from .doctor import DoctorReport, Finding, Problem
from .domains import Domain, normalise_domain
from .errors import (
    AdminSessionRequired,
    ClientProgramNotFound,
    ConfigurationError,
    ConfirmationRequired,
    ConnectionBudgetExceeded,
    DomainTaken,
    ForeignKeyAcrossDatabases,
    InvalidDomain,
    InvalidRecord,
    InvalidTenantName,
    MigrationError,
    MoveError,
    NotConfiguredFor,
    NoTenantSelected,
    NotReadOnly,
    OnlineMoveUnavailable,
    RevisionImportError,
    StorageNotFound,
    StorageRegistered,
    StreamConfigError,
    TemplateError,
    TenantElsewhere,
    TenantExists,
    TenantIsolationError,
    TenantLoginRefused,
    TenantMismatch,
    TenantryError,
    TenantSuspended,
    TransferError,
    UnfinishedOperation,
    UnknownDomain,
    UnknownRecordField,
    UnknownServer,
    UnknownTenant,
    UnversionedStorage,
    WrongTenantKind,
)
from .hooks.orm import AdminSession, TenantSession, assign, tenant_of
from .jobs import TenantProcessPool
from .jobs.each import EachOutcome, EachReport
from .logs import TenantFilter
from .migrations.fleet import Drift
from .migrations.results import MigrationReport, Step, TenantOutcome, TenantStatus
from .migrations.streamconfig import Stream
from .models import SHARED_SCHEMA, TENANT_SCHEMA, SharedBase, TenantBase
from .provisioning.adoption import Adoption, adopt_all
from .strategies.database import DatabaseStrategy, Placement, fewest_tenants
from .strategies.enginemetrics import EngineMetrics
from .strategies.engines import EngineRegistry
from .strategies.hybrid import HybridStrategy
from .tenancy import Tenancy, TenancyConfig, make_engine
from .transfer import Manifest

__all__ = [
    "SHARED_SCHEMA",
    "TENANT_SCHEMA",
    "AdminSession",
    "AdminSessionRequired",
    "Adoption",
    "ClientProgramNotFound",
    "ConfigurationError",
    "ConfirmationRequired",
    "ConnectionBudgetExceeded",
    "ContextExecutor",
    "DatabaseStrategy",
    "DoctorReport",
    "Domain",
    "DomainTaken",
    "Drift",
    "EachOutcome",
    "EachReport",
    "EngineMetrics",
    "EngineRegistry",
    "Finding",
    "ForeignKeyAcrossDatabases",
    "HistoryEntry",
    "HookFailure",
    "HybridStrategy",
    "InvalidDomain",
    "InvalidRecord",
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
    "RevisionImportError",
    "SharedBase",
    "State",
    "Step",
    "StorageNotFound",
    "StorageRegistered",
    "Stream",
    "StreamConfigError",
    "TemplateError",
    "Tenancy",
    "TenancyConfig",
    "TenantBase",
    "TenantElsewhere",
    "TenantEvent",
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
    "TenantSuspended",
    "TenantryError",
    "TransferError",
    "UnfinishedOperation",
    "UnknownDomain",
    "UnknownRecordField",
    "UnknownServer",
    "UnknownTenant",
    "UnversionedStorage",
    "WrongTenantKind",
    "adopt_all",
    "assign",
    "carry",
    "current_tenant",
    "fewest_tenants",
    "make_engine",
    "normalise_domain",
    "run_in_thread",
    "tenant_key",
    "tenant_of",
    "use",
]

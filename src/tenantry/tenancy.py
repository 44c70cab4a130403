"""The public facade: :class:`Tenancy` names what the core and the operations do."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session

from .context import current_tenant
from .context import use as use_context
from .core import Core, make_engine
from .core.generation import DEFAULT_INTERVAL
from .core.records import Where
from .core.registry import Location, TenantInfo
from .crosstenant.across import DEFAULT_CHUNK, TenantRow
from .crosstenant.across import across as run_across
from .doctor import Doctor, DoctorReport
from .facade import (
    DomainVerbs,
    EachVerbs,
    OperatingVerbs,
    RecordVerbs,
    RelocationVerbs,
    StrictVerbs,
    TransferVerbs,
)
from .hooks.orm import AdminSession, TenantSession
from .hooks.statements import StatementSchemas
from .migrations import fleet
from .migrations.executors import Jobs
from .migrations.results import MigrationReport, Step, TenantOutcome, TenantStatus
from .migrations.stream import MigrationStream
from .migrations.streamconfig import StreamSource
from .names import DEFAULT_PREFIX
from .provisioning import adoption, lifecycle
from .strategies import Strategy
from .strategies.database import Placement
from .strategies.enginemetrics import EngineMetrics
from .strict.logins import LoginSecret
from .strict.roles import StrictRoles

__all__ = ["Tenancy", "TenancyConfig", "make_engine"]

@dataclass(frozen=True)
class TenancyConfig:
    """What it takes to rebuild a :class:`~tenantry.Tenancy` in another process (picklable)."""

    url: str = field(repr=False)  # carries the password: never printed
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Tenancy:
        return Tenancy(self.url, **self.options)


class Tenancy(
    OperatingVerbs, TransferVerbs, RelocationVerbs, StrictVerbs, DomainVerbs, EachVerbs,
    RecordVerbs,
):
    """Multi-tenancy for one application database.

    ``bind`` is an :class:`~sqlalchemy.engine.Engine` or a URL (then tenantry owns the engine
    and :meth:`dispose` closes it). ``metadata`` holds the models (default: that of
    :class:`~tenantry.TenantBase` / :class:`~tenantry.SharedBase`); ``tenant_migrations`` and
    ``shared_migrations`` are Alembic streams: a folder holding ``versions/``, an alembic.ini,
    an ``alembic.config.Config`` or a :class:`~tenantry.Stream` (docs/alembic.md). Each records
    its revision in its own version table if it names one, else in ``version_table``. Without
    ``tenant_migrations``, new tenants get their tables from ``metadata`` (``create_all``).

    ``strict=True`` gives each tenant a role its transactions switch to; ``strict="login"``
    (for tenants running untrusted SQL) makes those roles log in, with passwords derived from
    ``login_secret`` (default ``$TENANTRY_LOGIN_SECRET``): see docs/isolation.md.
    ``routing="search_path"`` serves unqualified models and SQL: docs/search-path.md.
    ``tenant_columns`` are the application's columns of each tenant (plan, owner...), in the
    shared table :attr:`records`: docs/records.md. Changes other processes make to the
    registry (suspensions, drops, renames, moves, domains) are seen within
    ``refresh_interval`` seconds (docs/lifecycle.md).
    """

    def __init__(
        self,
        bind: Engine | str | URL,
        *,
        strategy: str = "schema",
        prefix: str = DEFAULT_PREFIX,
        metadata: sa.MetaData | None = None,
        tenant_migrations: StreamSource | None = None,
        shared_migrations: StreamSource | None = None,
        version_table: str = "alembic_version",
        engine_options: dict[str, Any] | None = None,
        servers: dict[str, str | URL] | None = None,
        placement: Placement | None = None,
        max_engines: int | None = None,
        max_parked: int | None = None,
        max_connections: int | None = None,
        pool_size: int | None = None,
        budget_timeout: float | None = None,
        template: bool | None = None,
        provisioning: str = "auto",
        pg_dump: str | Path | None = None,
        strict: bool | Literal["login"] = False,
        login_secret: str | bytes | LoginSecret | None = None,
        routing: str = "translate",
        tenant_columns: Sequence[sa.Column[Any]] | None = None,
        refresh_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        options = {k: v for k, v in locals().items() if k not in ("self", "bind")}
        #: The core this facade names (:mod:`tenantry.core`).
        self.core = core = Core(bind, **options)
        self.engine: Engine = core.engine
        self.strategy: Strategy = core.strategy
        self.prefix: str = core.prefix
        self.metadata: sa.MetaData = core.metadata
        self.tenant_stream: MigrationStream | None = core.tenant_stream
        self.shared_stream: MigrationStream | None = core.shared_stream

    @property
    def strict_roles(self) -> StrictRoles | None:
        return self.core.strict_roles

    def __repr__(self) -> str:
        return f"<Tenancy {self.core!r}>"

    def __enter__(self) -> Tenancy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close the pools tenantry opened."""
        self.core.dispose()

    def config(self) -> TenancyConfig:
        """A picklable recipe for this Tenancy (worker processes rebuild it from this)."""
        return TenancyConfig(*self.core.recipe())

    # -- registry ------------------------------------------------------------------------

    def setup(self) -> None:
        """Create tenantry's registry table if needed (done implicitly by every operation)."""
        with self.core.store.begin():
            pass

    def list_tenants(self, *, where: Where | None = None) -> list[TenantInfo]:
        """Every registered tenant (whose record matches ``where``), by name."""
        return self.core.store.all(where)

    def get_tenant(self, name: str) -> TenantInfo:
        """The registry row of ``name``; :class:`UnknownTenant` if there is none."""
        return self.core.tenant(name)

    def tenant_exists(self, name: str) -> bool:
        """Whether ``name`` is registered."""
        return self.core.tenant_exists(name)

    def locate(self, name: str) -> Location:
        """Where tenant ``name`` lives."""
        return self.core.tenant(name).location

    # -- provisioning --------------------------------------------------------------------

    def create_tenant(self, name: str, *, strategy: str | None = None,
                      record: Mapping[str, Any] | None = None) -> TenantInfo:
        """Create tenant ``name`` at the head revision and register it; idempotent.

        Concurrent callers are serialised by an advisory lock; with the schema strategy the
        storage, the migrations and the registry row commit in one transaction, so a failure
        leaves nothing behind. ``strategy`` (``"schema"``/``"database"``; hybrid Tenancy only)
        chooses where a new tenant lives (default: a schema of the main database). ``record``:
        its record's fields (the others get their defaults), written with the registry row.
        """
        return lifecycle.create(self.core, name, strategy, record)

    def drop_tenant(self, name: str, *, confirm: bool = False) -> bool:
        """Drop tenant ``name`` and all its data. Needs ``confirm=True``.

        Returns ``False`` when there was no such tenant.
        """
        return lifecycle.drop(self.core, name, confirm=confirm)

    def rename_tenant(self, old: str, new: str) -> TenantInfo:
        """Rename tenant ``old`` to ``new`` (its storage too); idempotent and resumable (a
        database tenant's rename records an intent: running it again or ``doctor --fix``
        finishes it). ``new == old`` gives adopted storage its conventional name."""
        return lifecycle.rename(self.core, old, new)

    def adopt_tenant(self, name: str, *, schema: str | None = None, database: str | None = None,
                     server: str | None = None, rename: bool = False) -> TenantInfo:
        """Register an existing schema or database as tenant ``name``: see docs/adopting.md."""
        return adoption.adopt(self.core, name, schema, database, server, rename)

    def rebuild_template(self) -> None:
        """Drop the stored template of the head revision; the next tenant rebuilds it."""
        if self.core.templates is not None:
            self.core.templates.rebuild()

    # -- routing -------------------------------------------------------------------------

    def session(self, tenant: str | None = None, **kwargs: Any) -> Session:
        """A :class:`~sqlalchemy.orm.Session` for ``tenant`` (default: the current tenant).

        With no tenant at all the session reaches shared tables only; a statement on a tenant
        table raises :class:`NoTenantSelected`.
        """
        name = tenant if tenant is not None else current_tenant()
        bind = self.core.untenanted_engine if name is None else self.core.route(name)
        info = dict(kwargs.pop("info", None) or {}, tenantry_tenant=name)
        return TenantSession(bind=bind, info=info, **kwargs)

    @contextmanager
    def connection(self, tenant: str | None = None) -> Iterator[Connection]:
        """A Core :class:`~sqlalchemy.engine.Connection` for ``tenant`` (default: current)."""
        name = tenant if tenant is not None else current_tenant()
        bind = self.core.untenanted_engine if name is None else self.core.route(name)
        with bind.connect() as conn:
            yield conn

    @contextmanager
    def use(self, tenant: str) -> Iterator[str]:
        """Select ``tenant`` implicitly for the block (checked against the registry)."""
        self.core.route(tenant)
        with use_context(tenant):
            yield tenant

    def admin_session(self, **kwargs: Any) -> AdminSession:
        """A session with no tenant (the ambient one is ignored) for multi-tenant work.

        Each statement names its tenant (``stmt.execution_options(tenant="acme")``), lazy loads
        and refreshes follow the instance's tenant, and new instances go to the tenant given by
        :func:`tenantry.assign`. Statements naming no tenant reach shared tables only.
        """
        return AdminSession(self.core, **kwargs)

    @contextmanager
    def admin_connection(self) -> Iterator[Connection]:
        """A Core connection to the main database routing each statement to its ``tenant``.

        Tenants of other databases are not reachable from it (:class:`TenantElsewhere`).
        """
        with self.core.admin_engine.connect() as conn:
            yield conn.execution_options(schema_translate_map=StatementSchemas(self.core))

    def across(
        self,
        statement: Any,
        tenants: Sequence[str] | None = None,
        *,
        jobs: int = 1,
        chunk: int = DEFAULT_CHUNK,
        progress: Callable[[int], None] | None = None,
        where: Where | None = None,
    ) -> Iterator[TenantRow]:
        """Run a read-only ``statement`` in every (or each listed) tenant, streaming rows.

        Yields :class:`TenantRow` ``(tenant, row, columns)``. Schema tenants are batched
        ``chunk`` per round trip (``UNION ALL``); ``jobs`` batches run concurrently.
        ``where``: only tenants whose record matches.
        """
        return run_across(self.core, statement, tenants, jobs=jobs, chunk=chunk,
                          progress=progress, where=where)

    def engine_metrics(self) -> EngineMetrics:
        """Counters of the tenant engine registry (database strategy, or ``strict='login'``)."""
        return self.core.engine_metrics()

    # -- migrations ----------------------------------------------------------------------

    def migrate_shared(self, target: str = "heads") -> Step | None:
        """Bring the shared schema up to date.

        With ``shared_migrations``: run that stream in ``public``. Without: create missing shared
        tables from ``metadata``. Returns the step taken (``None`` without a stream).
        """
        return fleet.migrate_shared(self.core, target)

    def migrate_tenant(self, name: str, target: str = "heads") -> TenantOutcome:
        """Upgrade or downgrade one tenant to ``target`` in one transaction; raises on failure."""
        return fleet.migrate_tenant(self.core, name, target)

    def migrate_all(
        self,
        target: str = "heads",
        tenants: Sequence[str] | None = None,
        *,
        jobs: Jobs = 1,
        on_outcome: Callable[[TenantOutcome], None] | None = None,
        on_plan: Callable[[int], None] | None = None,
        confirm: bool = False,
        compiled: bool = False,
        where: Where | None = None,
        per_server: int | None = None,
    ) -> MigrationReport:
        """Shared stream first, then every tenant (or those matching the glob ``tenants``, and
        whose record matches ``where``).

        Each tenant is migrated to ``target`` (up or down) in its own transaction, by ``jobs``
        processes (this one and ``jobs - 1`` helpers; ``"auto"``: helpers only if the work left
        is worth their start-up, see docs/fleet.md). A failing tenant is recorded (state
        ``failed``) and does not stop the others. Tenants already at ``target`` are found by
        one registry query and skipped. ``on_plan(n)`` is told how many tenants need work;
        ``on_outcome`` sees each result.
        A ``target`` below a tenant's revision downgrades it and needs ``confirm=True``.
        ``compiled=True`` renders each upgrade step's SQL once and runs it per tenant in one
        round trip (for migrations that do not query the database: see
        tenantry.migrations.compiled). ``per_server=K``: never more than K tenants of one
        database server migrating at once, across all processes (docs/fleet.md).
        """
        return fleet.migrate_all(self.core, target, tenants, jobs=jobs, on_outcome=on_outcome,
                                 on_plan=on_plan, confirm=confirm, compiled=compiled,
                                 where=where, per_server=per_server)

    def status(self, *, where: Where | None = None) -> list[TenantStatus]:
        """Each tenant's (whose record matches ``where``) revision against the head."""
        return fleet.status(self.core, where)

    def drift(self) -> fleet.Drift:
        """Revision counts, states and failed/migrating tenants, from one registry query."""
        return fleet.drift(self.core)

    def migration_sql(self, name: str, target: str = "heads") -> str:
        """The SQL that migrating tenant ``name`` to ``target`` would run (Alembic offline)."""
        return fleet.migration_sql(self.core, name, target)

    # -- doctor --------------------------------------------------------------------------

    def doctor(self, *, fix: bool = False, destructive: bool = False) -> DoctorReport:
        """Compare the registry with the database; ``fix=True`` repairs what is safe, dropping
        orphans or finishing interrupted drops only with ``destructive=True`` too."""
        doctor = Doctor(self.core)
        return doctor.repair(destructive=destructive) if fix else DoctorReport(doctor.examine())

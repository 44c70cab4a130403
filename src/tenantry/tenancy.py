"""The public facade: :class:`Tenancy` provisions, routes, and migrates tenants."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session

from . import fleet, intents, probe, recovery, registry
from .across import DEFAULT_CHUNK, TenantRow
from .across import across as run_across
from .context import _current as _current_tenant
from .context import current_tenant
from .context import use as use_context
from .doctor import Doctor, DoctorReport
from .engines import EngineMetrics
from .errors import (
    ConfigurationError,
    ConfirmationRequired,
    ForeignKeyAcrossDatabases,
    MigrationError,
    NotConfiguredFor,
    TenantExists,
    UnfinishedOperation,
    UnknownServer,
    UnknownTenant,
    WrongTenantKind,
)
from .instrumentation import instrument
from .intents import Intent, Operation
from .logins import LOGIN_OPTION, LoginEngines, LoginRoles, LoginSecret, resolve_secret
from .migrations import MigrationReport, MigrationStream, Step, TenantOutcome, TenantStatus
from .models import SHARED_SCHEMA, TenantBase, shared_tables, tenant_tables
from .names import DEFAULT_PREFIX, quote, validate_name, validate_prefix
from .orm import AdminSession, TenantSession
from .registry import Location, State, TenantInfo
from .scripts import execute_script
from .statements import StatementSchemas
from .strategies import SchemaStrategy, Strategy, routing_options
from .strategies.base import set_search_path
from .strategies.database import DatabaseStrategy, Placement
from .strategies.hybrid import HybridStrategy, kind_of
from .strict import ROLE_OPTION, StrictRoles
from .template import Templates
from .urls import sync_engine_url

if TYPE_CHECKING:
    from .moving import Move
    from .transfer import Manifest, Progress

log = logging.getLogger("tenantry")

_STRATEGIES: dict[str, type[Strategy]] = {SchemaStrategy.kind: SchemaStrategy}
_STRATEGIES[DatabaseStrategy.kind] = DatabaseStrategy
_STRATEGIES[HybridStrategy.kind] = HybridStrategy  # issue 5
#: Options of the tenant engine registry (also the login pools of schema tenants).
_POOL_OPTIONS = ("max_engines", "max_parked", "max_connections", "pool_size", "budget_timeout")


def make_engine(url: str | URL, **options: Any) -> Engine:
    """An engine for ``url``; a bare ``postgresql://`` URL gets the psycopg 3 driver.

    A bad URL, an asyncio or missing driver: :class:`ConfigurationError` (see :mod:`.urls`).
    """
    return sa.create_engine(sync_engine_url(url), **options)


class Tenancy:
    """Multi-tenancy for one application database.

    ``bind`` is an :class:`~sqlalchemy.engine.Engine` or a URL (then tenantry owns the engine
    and :meth:`dispose` closes it). ``metadata`` holds the models (default: that of
    :class:`~tenantry.TenantBase` / :class:`~tenantry.SharedBase`); ``tenant_migrations`` and
    ``shared_migrations`` are Alembic script directories. Without ``tenant_migrations``, new
    tenants get their tables from ``metadata`` (``create_all``).

    ``strict=True`` gives each tenant a role its transactions switch to; ``strict="login"``
    (for tenants running untrusted SQL) makes those roles log in, with passwords derived from
    ``login_secret`` (default ``$TENANTRY_LOGIN_SECRET``): see docs/isolation.md.
    """

    def __init__(
        self,
        bind: Engine | str | URL,
        *,
        strategy: str = "schema",
        prefix: str = DEFAULT_PREFIX,
        metadata: sa.MetaData | None = None,
        tenant_migrations: str | Path | None = None,
        shared_migrations: str | Path | None = None,
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
    ) -> None:
        # the constructor's options, to rebuild this Tenancy in worker processes (config())
        self._options = {k: v for k, v in locals().items() if k not in ("self", "bind")}
        if isinstance(bind, Engine):
            if engine_options:
                raise ConfigurationError("engine_options apply only when tenantry makes the engine")
            self.engine, self._owns_engine = bind, False
        else:
            self.engine, self._owns_engine = make_engine(bind, **(engine_options or {})), True
        if strategy not in _STRATEGIES:
            raise ConfigurationError(
                f"unknown strategy {strategy!r}; choose one of {sorted(_STRATEGIES)}"
            )
        self.prefix = validate_prefix(prefix)
        self.metadata = metadata if metadata is not None else TenantBase.metadata
        self.tenant_stream = (
            MigrationStream(tenant_migrations, version_table=version_table)
            if tenant_migrations is not None
            else None
        )
        self.shared_stream = (
            MigrationStream(shared_migrations, version_table=version_table)
            if shared_migrations is not None
            else None
        )
        strategy_options = {  # database per tenant (issue 3); None: the strategy's default
            k: v
            for k, v in dict(servers=servers, placement=placement, max_engines=max_engines,
                             max_parked=max_parked, max_connections=max_connections,
                             pool_size=pool_size, budget_timeout=budget_timeout,
                             template=template).items()
            if v is not None
        }
        if strict not in (False, True, "login"):
            raise ConfigurationError(f"strict must be False, True or 'login', not {strict!r}")
        login_pools: dict[str, Any] = {}  # schema tenants logging in: their own registry's
        if strict == "login" and strategy == SchemaStrategy.kind:
            login_pools = {k: strategy_options.pop(k) for k in _POOL_OPTIONS
                           if k in strategy_options}
        if strategy_options and strategy not in (DatabaseStrategy.kind, HybridStrategy.kind):
            raise ConfigurationError(
                f"{sorted(strategy_options)} apply only to strategy='database'"
            )
        self.strategy: Strategy = _STRATEGIES[strategy](
            self.engine, self.prefix, **strategy_options
        )
        if isinstance(self.strategy, DatabaseStrategy):
            self.strategy.template_stream = self.tenant_stream
        if isinstance(self.strategy, DatabaseStrategy):  # and hybrid: drop routes gone stale
            self.strategy.forget = self._forget
        instrument(self.engine)  # guard, strict roles on every door, reset at check-in
        self._registry_ready = False
        self._known: dict[str, tuple[TenantInfo, Engine]] = {}
        self._lock = threading.Lock()
        self._templates = self._make_templates(provisioning, pg_dump)
        self.strict_roles = StrictRoles(self.engine) if strict else None
        if strict == "login":  # untrusted SQL: tenants' connections log in as their role
            secret = resolve_secret(self._options["login_secret"])
            self._options["login_secret"] = secret  # worker processes get it, never printed
            engines = LoginEngines.for_strategy(self.strategy, self.engine, secret, login_pools)
            self.strict_roles = LoginRoles(self.engine, engines, secret)

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"<Tenancy {self.strategy.kind} {url}>"

    def __enter__(self) -> Tenancy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close the pools tenantry opened."""
        self.strategy.dispose()
        if isinstance(self.strict_roles, LoginRoles):
            self.strict_roles.dispose()
        self._known.clear()
        probe.close_for(self.engine)
        if self._owns_engine:
            self.engine.dispose()

    # -- registry ------------------------------------------------------------------------

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction on the main database, the registry and intent tables guaranteed to
        exist (created and committed first: intents are written on connections of their own)."""
        if not self._registry_ready:
            with self.engine.begin() as conn:
                registry.ensure(conn)
                intents.ensure(conn)
            self._registry_ready = True
        with self.engine.begin() as conn:
            yield conn

    @staticmethod
    def _unfinished(main: Connection, names: Sequence[str], operation: Operation) -> Intent | None:
        """The unfinished ``operation`` on ``names`` (to resume); raises if another one is."""
        for name in names:
            pending = intents.find(main, name)
            if pending is None:
                continue
            if pending.operation != operation or (
                operation == Operation.RENAME and pending.names != list(names)
            ):
                raise UnfinishedOperation(
                    f"tenant {name!r} has an unfinished {pending.describe()}: finish it first "
                    f"({pending.command()}, or tenantry doctor --fix)"
                )
            return pending
        return None

    def setup(self) -> None:
        """Create tenantry's registry table if needed (done implicitly by every operation)."""
        with self._begin():
            pass

    def list_tenants(self) -> list[TenantInfo]:
        """Every registered tenant, by name."""
        with self._begin() as conn:
            return registry.all_tenants(conn)

    def get_tenant(self, name: str) -> TenantInfo:
        """The registry row of ``name``; :class:`UnknownTenant` if there is none."""
        validate_name(name, self.prefix)
        with self._begin() as conn:
            info = registry.get(conn, name)
        if info is None:
            raise UnknownTenant(name)
        return info

    def tenant_exists(self, name: str) -> bool:
        """Whether ``name`` is registered."""
        try:
            self.get_tenant(name)
        except UnknownTenant:
            return False
        return True

    # -- provisioning --------------------------------------------------------------------

    def create_tenant(self, name: str, *, strategy: str | None = None) -> TenantInfo:
        """Create tenant ``name`` at the head revision and register it; idempotent.

        Concurrent callers are serialised by an advisory lock; with the schema strategy the
        storage, the migrations and the registry row commit in one transaction, so a failure
        leaves nothing behind. ``strategy`` (``"schema"``/``"database"``; hybrid Tenancy only)
        chooses where a new tenant lives (default: a schema of the main database).
        """
        validate_name(name, self.prefix)
        if self._schema_kind(strategy):  # builds it, if needed, before a connection is held
            self._warm_template()
        if self.strict_roles is not None:
            self.strict_roles.ensure_group()
        with self._begin() as main:
            registry.lock_tenants(main, [name])
            existing = registry.get(main, name)
            if existing is not None:
                return existing
            pending = self._unfinished(main, [name], Operation.CREATE)
            if pending is not None and pending.dest is not None:
                resumed = recovery.resume_create(self._database_strategy(), self.tenant_stream,
                                                 self.engine, main, name, pending.dest)
                if resumed is not None:
                    return resumed
                if isinstance(self.strategy, HybridStrategy):  # the kind it was created as
                    strategy = strategy or kind_of(pending.dest)
            location = self._locate_new(name, main, strategy)
            if self.strategy.exists(main, location):
                raise TenantExists(
                    f"storage {location.schema!r} for tenant {name!r} exists but is not "
                    "registered; drop it or register it by hand"
                )
            own_steps = location.database is not None  # CREATE DATABASE commits on its own
            if own_steps:
                intents.begin(self.engine, Intent(Operation.CREATE, name, None, location))
            try:
                with self.strategy.storage(main, name, location, create=True) as conn, \
                        self._as_tenant(conn, name, location):
                    revision = self._build_tenant_tables(conn, location.schema)
            except BaseException:
                if own_steps:
                    recovery.discard_failed_create(self._database_strategy(), self.engine, main,
                                                   name, location)
                raise
            kind = self._kind_of(location)
            info = registry.insert(main, name, kind, location, State.READY, revision)
            intents.clear(main, name)
        log.info("created tenant %s in %s (revision %s)", name, location.schema, revision,
                 extra={"tenant": name})
        return info

    def _build_tenant_tables(self, conn: Connection, schema: str) -> str | None:
        """Bring a new, empty tenant schema to the head; returns the revision."""
        # the schema template is a schema of the main database: for tenants there only
        on_main = conn.engine is self.engine
        if self.tenant_stream is not None and on_main and self._use_template(conn):
            assert self._templates is not None
            execute_script(conn, self._templates.sql(schema))
            log.info("filled %s from the template at %s", schema, self.tenant_stream.head)
            return self.tenant_stream.head
        if self.tenant_stream is not None:
            return self.tenant_stream.upgrade(conn, schema).after
        self.metadata.create_all(conn, tables=tenant_tables(self.metadata), checkfirst=False)
        return None

    def drop_tenant(self, name: str, *, confirm: bool = False) -> bool:
        """Drop tenant ``name`` and all its data. Needs ``confirm=True``.

        Returns ``False`` when there was no such tenant.
        """
        if not confirm:
            raise ConfirmationRequired(
                f"dropping tenant {name!r} destroys its data: pass confirm=True (CLI: --yes)"
            )
        validate_name(name, self.prefix)
        with self._begin() as main:
            registry.lock_tenants(main, [name])
            info = registry.get(main, name)
            if info is None:
                return False
            pending = self._unfinished(main, [name], Operation.DROP)
            if info.location.database is not None and pending is None:
                intents.begin(self.engine, Intent(Operation.DROP, name, info.location, None))
            self.strategy.drop(main, info.location)
            if self.strict_roles is not None:
                with self._role_connection(main, info.location) as roles_conn:
                    self.strict_roles.drop(roles_conn, name, info.location)
            registry.delete(main, name)
            intents.clear(main, name)
        self._forget(name)
        log.info("dropped tenant %s (%s)", name, info.location.schema, extra={"tenant": name})
        return True

    def rename_tenant(self, old: str, new: str) -> TenantInfo:
        """Rename tenant ``old`` to ``new`` (its storage too); idempotent.

        A database tenant's rename takes several commits; an intent records it, so that
        running the same rename again (or ``doctor --fix``) finishes one that stopped part-way.
        """
        validate_name(old, self.prefix)
        validate_name(new, self.prefix)
        with self._begin() as main:
            registry.lock_tenants(main, [old, new])
            pending = self._unfinished(main, [old, new], Operation.RENAME)
            info, target = registry.get(main, old), registry.get(main, new)
            if info is None:
                if target is not None:
                    return target
                raise UnknownTenant(old)
            if target is not None:
                raise TenantExists(f"cannot rename {old!r} to {new!r}: {new!r} exists")
            location = self.strategy.renamed(info.location, new)
            if pending is None and self.strategy.exists(main, location):
                raise TenantExists(f"cannot rename {old!r}: storage {location.schema!r} exists")
            step: Callable[[str], None] | None = None
            if location.database is not None:  # renaming a database commits step by step
                if pending is None:
                    intent = Intent(Operation.RENAME, old, info.location, location, target=new)
                    intents.begin(self.engine, intent)
                step = partial(intents.advance, self.engine, old)
            self.strategy.rename(main, info.location, location, step)
            if self.strict_roles is not None:
                with self._role_connection(main, info.location) as roles_conn:
                    self.strict_roles.rename(roles_conn, new, info.location, location)
            registry.update(main, old, name=new, location=location)
            intents.clear(main, old)
            renamed = registry.get(main, new)
        self._forget(old)
        log.info("renamed tenant %s to %s", old, new, extra={"tenant": new})
        assert renamed is not None
        return renamed

    # -- routing -------------------------------------------------------------------------

    def _forget(self, name: str) -> None:
        with self._lock:
            self._known.pop(name, None)

    def _route(self, name: str) -> Engine:
        """The engine (with routing options) for tenant ``name``; raises if unknown."""
        hit = self._known.get(name)
        logins = self.strict_roles if isinstance(self.strict_roles, LoginRoles) else None
        if hit is not None and hit[0].location.database is None and logins is None:
            return hit[1]  # a schema tenant on the main engine
        if hit is not None:  # an engine of the registry: they come and go (LRU), fetch it again
            info, cached = hit
            options = cached.get_execution_options()
            base = (self.strategy.engine(info.location) if logins is None
                    else logins.engines.engine(info.location, options[LOGIN_OPTION]))
            if cached.pool is base.pool:  # still the registry's engine: the route holds
                return cached
            role = {k: v for k, v in options.items() if k in (ROLE_OPTION, LOGIN_OPTION)}
            routed: Engine = base.execution_options(**routing_options(name, info.schema), **role)
        else:
            validate_name(name, self.prefix)
            with self._begin() as conn:
                found = registry.get(conn, name)
                if found is None or not found.usable:
                    raise UnknownTenant(name, "" if found is None else f"state is {found.state}")
                info = found
                routed = (
                    self.strategy.engine(info.location) if logins is None
                    else logins.login_engine(conn, info.location)
                ).execution_options(**routing_options(name, info.schema))
                if self.strict_roles is not None and logins is None:
                    routed = self.strict_roles.route(routed, conn, info.location)
        with self._lock:
            self._known[name] = (info, routed)
        return routed

    def session(self, tenant: str | None = None, **kwargs: Any) -> Session:
        """A :class:`~sqlalchemy.orm.Session` for ``tenant`` (default: the current tenant).

        With no tenant at all the session reaches shared tables only; a statement on a tenant
        table raises :class:`NoTenantSelected`.
        """
        name = tenant if tenant is not None else current_tenant()
        bind = self.engine if name is None else self._route(name)
        info = dict(kwargs.pop("info", None) or {}, tenantry_tenant=name)
        return TenantSession(bind=bind, info=info, **kwargs)

    @contextmanager
    def connection(self, tenant: str | None = None) -> Iterator[Connection]:
        """A Core :class:`~sqlalchemy.engine.Connection` for ``tenant`` (default: current)."""
        name = tenant if tenant is not None else current_tenant()
        bind = self.engine if name is None else self._route(name)
        with bind.connect() as conn:
            yield conn

    @contextmanager
    def use(self, tenant: str) -> Iterator[str]:
        """Select ``tenant`` implicitly for the block (checked against the registry)."""
        self._route(tenant)
        with use_context(tenant):
            yield tenant

    # -- migrations ----------------------------------------------------------------------

    def migrate_shared(self, target: str = "heads") -> Step | None:
        """Bring the shared schema up to date.

        With ``shared_migrations``: run that stream in ``public``. Without: create missing shared
        tables from ``metadata``. Returns the step taken (``None`` without a stream).
        """
        with self._begin() as main:
            registry.lock_global(main)
            set_search_path(main, SHARED_SCHEMA)
            if self.shared_stream is None:
                self.metadata.create_all(main, tables=shared_tables(self.metadata))
                return None
            return self.shared_stream.upgrade(main, SHARED_SCHEMA, target)

    def _tenant_stream(self) -> MigrationStream:
        if self.tenant_stream is None:
            raise MigrationError("no tenant migrations configured (tenant_migrations=...)")
        return self.tenant_stream

    def migrate_tenant(self, name: str, target: str = "heads") -> TenantOutcome:
        """Upgrade or downgrade one tenant to ``target`` in one transaction; raises on failure."""
        outcome = self._migrate(self.get_tenant(name), target)
        if not outcome.ok:
            raise MigrationError(f"tenant {name!r}: {outcome.error}")
        return outcome

    def _migrate(self, info: TenantInfo, target: str) -> TenantOutcome:
        stream = self._tenant_stream()
        try:
            resolved = fleet.resolve(stream, target)
        except MigrationError:  # a relative target ("+1"): Alembic resolves it per tenant
            resolved = target
        return fleet.migrate_one(self, info, resolved)

    def migrate_all(
        self,
        target: str = "heads",
        tenants: Sequence[str] | None = None,
        *,
        jobs: fleet.Jobs = 1,
        on_outcome: Callable[[TenantOutcome], None] | None = None,
        on_plan: Callable[[int], None] | None = None,
        confirm: bool = False,
        compiled: bool = False,
    ) -> MigrationReport:
        """Shared stream first, then every tenant (or those matching the glob ``tenants``).

        Each tenant is migrated to ``target`` (up or down) in its own transaction, by ``jobs``
        processes (this one and ``jobs - 1`` helpers; ``"auto"``: helpers only if the work left
        is worth their start-up, see docs/fleet.md). A failing tenant is recorded (state
        ``failed``) and does not stop the others. Tenants already at ``target`` are found by
        one registry query and skipped. ``on_plan(n)`` is told how many tenants need work;
        ``on_outcome`` sees each result.
        A ``target`` below a tenant's revision downgrades it and needs ``confirm=True``.
        ``compiled=True`` renders each upgrade step's SQL once and runs it per tenant in one
        round trip (for migrations that do not query the database: see tenantry.compiled).
        """
        shared = self.migrate_shared()
        stream = self._tenant_stream()
        todo = fleet.plan(self, stream, target, tenants, confirm=confirm)
        if on_plan is not None:
            on_plan(len(todo.todo))
        done = fleet.run(
            self, todo.todo, todo.target, jobs=jobs, on_outcome=on_outcome, compiled=compiled
        )
        return MigrationReport(shared, todo.current + done)

    def status(self) -> list[TenantStatus]:
        """Each tenant's revision against the head, from one registry query."""
        head = self.tenant_stream.head if self.tenant_stream is not None else None
        return [
            TenantStatus(i.name, i.state.value, i.revision, head, i.error)
            for i in self.list_tenants()
        ]

    def locate(self, name: str) -> Location:
        """Where tenant ``name`` lives."""
        return self.get_tenant(name).location

    # -- export / import (issue 6) ---------------------------------------------------------

    def export_tenant(
        self,
        name: str,
        dest: str | Path,
        *,
        pg_dump: bool = False,
        progress: Progress | None = None,
    ) -> Manifest:
        """Write tenant ``name``'s data to directory ``dest`` (JSON Lines + manifest.json,
        and a ``pg_dump -Fc`` archive of its schema with ``pg_dump=True``); returns the
        :class:`~tenantry.transfer.Manifest`. See :func:`tenantry.transfer.export_tenant`."""
        from .transfer import export_tenant

        return export_tenant(self, name, dest, pg_dump=pg_dump, progress=progress)

    def import_tenant(
        self,
        src: str | Path,
        as_name: str,
        *,
        replace: bool = False,
        upgrade: bool = True,
        progress: Progress | None = None,
    ) -> TenantInfo:
        """Create tenant ``as_name`` from the export in ``src``. An existing ``as_name`` is
        refused unless ``replace=True`` (which drops it: that is the confirmation). See
        :func:`tenantry.transfer.import_tenant`."""
        from .transfer import import_tenant

        return import_tenant(
            self, src, as_name, replace=replace, upgrade=upgrade, progress=progress
        )

    # -- per-statement tenants and cross-tenant queries (issue 8) --

    def admin_session(self, **kwargs: Any) -> AdminSession:
        """A session with no tenant (the ambient one is ignored) for multi-tenant work.

        Each statement names its tenant (``stmt.execution_options(tenant="acme")``), lazy loads
        and refreshes follow the instance's tenant, and new instances go to the tenant given by
        :func:`tenantry.assign`. Statements naming no tenant reach shared tables only.
        """
        return AdminSession(self, **kwargs)

    @contextmanager
    def admin_connection(self) -> Iterator[Connection]:
        """A Core connection to the main database routing each statement to its ``tenant``.

        Tenants of other databases are not reachable from it (:class:`TenantElsewhere`).
        """
        with self.engine.connect() as conn:
            yield conn.execution_options(schema_translate_map=StatementSchemas(self))

    def across(
        self,
        statement: Any,
        tenants: Sequence[str] | None = None,
        *,
        jobs: int = 1,
        chunk: int = DEFAULT_CHUNK,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[TenantRow]:
        """Run a read-only ``statement`` in every (or each listed) tenant, streaming rows.

        Yields :class:`TenantRow` ``(tenant, row, columns)``. Schema tenants are batched
        ``chunk`` per round trip (``UNION ALL``); ``jobs`` batches run concurrently.
        """
        return run_across(self, statement, tenants, jobs=jobs, chunk=chunk, progress=progress)

    # -- database per tenant (issue 3) --

    def _database_strategy(self) -> DatabaseStrategy:
        if not isinstance(self.strategy, DatabaseStrategy):
            raise NotConfiguredFor("this needs Tenancy(..., strategy='database')")
        return self.strategy

    def engine_metrics(self) -> EngineMetrics:
        """Counters of the tenant engine registry (database strategy, or ``strict='login'``)."""
        if isinstance(self.strict_roles, LoginRoles):
            return self.strict_roles.engines.registry.metrics()
        return self._database_strategy().engines.metrics()

    def move_tenant(
        self, name: str, to: str, *, lock_timeout: str = "30s", online: bool | None = None
    ) -> TenantInfo:
        """Move database tenant ``name`` to server ``to``; idempotent.

        Copy the tenant, check every table's row count and every sequence, switch the registry
        row, drop the source. Reads go on throughout. Online (logical replication; the default
        when the source server has ``wal_level = logical``, required by ``online=True``),
        writes wait only for the switch; offline (``online=False``, or no logical WAL), they
        wait for the whole ``pg_dump | pg_restore`` copy (details in the docs).
        """
        from .moving import Move

        strategy = self._database_strategy()
        if to not in strategy.servers:
            raise UnknownServer(
                f"unknown server {to!r}; configured: {sorted(strategy.servers)}"
            )

        def plan(main: Connection, info: TenantInfo) -> tuple[Move, Location] | None:
            if info.strategy != DatabaseStrategy.kind:
                raise WrongTenantKind(f"tenant {name!r} is not a database tenant")
            source = replace(info.location, server=info.location.server or "main")
            if source.server == to:
                return None
            target = replace(source, server=to)
            move = Move(strategy, name, source, target, lock_timeout=lock_timeout, online=online)
            return move, target

        return self._relocate(name, plan, f"moved tenant {name} to server {to}")

    def _relocate(
        self,
        name: str,
        plan: Callable[[Connection, TenantInfo], tuple[Move, Location] | None],
        done: str,
    ) -> TenantInfo:
        """Copy tenant ``name`` as ``plan`` says and switch its registry row to the new place.

        ``plan`` returns the copy to run and the tenant's new location, or ``None`` when the
        tenant is already there. The copy runs under the tenant's lock; a failure aborts it and
        leaves the tenant where it was; the old copy is dropped only after the switch commits.
        """
        validate_name(name, self.prefix)
        move: Move | None = None
        try:
            with self._begin() as main:
                registry.lock_tenants(main, [name])
                info = registry.get(main, name)
                if info is None:
                    raise UnknownTenant(name)
                pending = self._unfinished(main, [name], Operation.MOVE)
                if pending is not None:  # a move that died before its switch: undo its copy
                    recovery.undo_move(self._database_strategy(), pending, info.location)
                planned = plan(main, info)
                if planned is None:
                    return info
                move, location = planned
                intents.begin(self.engine, Intent(Operation.MOVE, name, info.location,
                                                  move.target))
                move.copy()
                registry.update(main, name, strategy=self._kind_of(location), location=location)
                intents.clear(main, name)
                moved = registry.get(main, name)
        except BaseException:
            if move is not None:
                move.abort()
                intents.discard(self.engine, name)  # abort dropped the copy
            raise
        assert moved is not None
        self._forget(name)
        move.finish()
        log.info(done, extra={"tenant": name})
        return moved

    # -- fleet operations (issue 5) --------------------------------------------------------

    def _make_templates(self, provisioning: str, pg_dump: str | Path | None) -> Templates | None:
        if provisioning not in ("auto", "template", "migrations"):
            raise ConfigurationError(
                f"provisioning must be 'auto', 'template' or 'migrations', not {provisioning!r}"
            )
        self._provisioning = provisioning
        if provisioning == "migrations" or self.tenant_stream is None:
            return None
        if self.strategy.kind not in ("schema", "hybrid"):  # hybrid: for its schema tenants
            return None
        return Templates(self.engine, self.tenant_stream, pg_dump)

    def _schema_kind(self, kind: str | None) -> bool:
        """Whether a tenant created as ``kind`` (``None``: the default) is a schema tenant."""
        if isinstance(self.strategy, HybridStrategy):
            return (kind or self.strategy.default_kind) == "schema"
        return self.strategy.kind == "schema"

    def _use_template(self, conn: Connection) -> bool:
        """Whether new tenants come from the template (``auto``: if pg_dump is usable)."""
        if self._templates is None:
            return False
        if self._provisioning == "auto":
            try:
                self._templates._dump_program(conn)
            except ConfigurationError as exc:
                log.warning("provisioning by replaying migrations: %s", exc)
                self._templates = None
                return False
        return True

    def rebuild_template(self) -> None:
        """Drop the stored template of the head revision; the next tenant rebuilds it."""
        if self._templates is not None:
            self._templates.rebuild()

    def config(self) -> fleet.TenancyConfig:
        """A picklable recipe for this Tenancy (worker processes rebuild it from this)."""
        url = self.engine.url.render_as_string(hide_password=False)
        options = {
            k: str(v) if isinstance(v, Path) else v
            for k, v in self._options.items()
            if k != "metadata" and not (k == "engine_options" and not self._owns_engine)
        }
        return fleet.TenancyConfig(url, options)

    def migration_sql(self, name: str, target: str = "heads") -> str:
        """The SQL that migrating tenant ``name`` to ``target`` would run (Alembic offline)."""
        info = self.get_tenant(name)
        stream = self._tenant_stream()
        wanted = fleet.resolve(stream, target)
        if fleet.is_downgrade(stream, info.revision, wanted):
            raise MigrationError("--dry-run shows upgrades only")
        if info.revision == wanted:
            return f"-- tenant {name} is already at {wanted or 'base'}: nothing to do\n"
        header = f"-- tenant {name}: {info.revision or 'base'} -> {wanted}\n"
        search_path = f"SET LOCAL search_path TO {quote(info.schema)};\n"
        return header + search_path + stream.sql(info.schema, target, start=info.revision)

    def drift(self) -> fleet.Drift:
        """Revision counts, states and failed/migrating tenants, from one registry query."""
        head = self.tenant_stream.head if self.tenant_stream is not None else None
        return fleet.Drift.of(head, self.status())

    def _warm_template(self) -> None:
        if self._templates is None:
            return
        if self._provisioning == "auto" and not self._templates.checked:
            with self.engine.connect() as conn:
                if not self._use_template(conn):
                    return
        self._templates.warm()

    # -- strict mode (issue 7) -------------------------------------------------------------

    @contextmanager
    def _as_tenant(self, conn: Connection, tenant: str, location: Location) -> Iterator[None]:
        """Run the block (migrations) with ``tenant`` current (so logs name it) and, in strict
        mode, as the tenant's role (made if missing)."""
        token = _current_tenant.set(tenant)  # not use(): that rejects names like "pg_x"
        try:
            if self.strict_roles is None:
                yield
                return
            with self.strict_roles.acting_as(conn, tenant, location):
                yield
        finally:
            _current_tenant.reset(token)

    def grant_shared(self, *tables: sa.Table | str, write: bool = False) -> None:
        """Strict mode: let every tenant read (or, with ``write=True``, write) shared tables.

        ``tables`` are :class:`~sqlalchemy.Table` objects or ``"schema.table"`` names. The
        grant goes to the group role all tenant roles belong to, so it covers future tenants.
        """
        self._strict().grant_shared(tables, write=write)

    def revoke_shared(self, *tables: sa.Table | str) -> None:
        """Strict mode: take back what :meth:`grant_shared` gave on ``tables``."""
        self._strict().revoke_shared(tables)

    def tenant_role(self, name: str) -> str:
        """Strict mode: the PostgreSQL role of tenant ``name``."""
        location = self.get_tenant(name).location
        with self.engine.connect() as conn:
            return self._strict().role(conn, location)

    def enable_strict(self) -> None:
        """Turn strict mode on after construction (as ``strict=True`` does); idempotent."""
        if self.strict_roles is None:
            self.strict_roles = StrictRoles(self.engine)
            self._known.clear()

    def reset_logins(self, tenants: Sequence[str] | None = None) -> int:
        """``strict="login"``: make each tenant's role ``LOGIN`` with the password derived from
        the current login secret (after a secret change, or a tenant that changed its own
        password); returns how many roles were set."""
        roles = self._strict()
        if not isinstance(roles, LoginRoles):
            raise NotConfiguredFor("reset_logins needs Tenancy(..., strict='login')")
        names = list(tenants) if tenants is not None else [i.name for i in self.list_tenants()]
        for name in names:
            with self._begin() as main:
                registry.lock_tenants(main, [name])
                info = registry.get(main, name)
                if info is None:
                    raise UnknownTenant(name)
                with self._role_connection(main, info.location) as conn:
                    roles.log_in(conn, name, info.location)
        return len(names)

    def _strict(self) -> StrictRoles:
        if self.strict_roles is None:
            raise NotConfiguredFor("strict mode is off: create the Tenancy with strict=True")
        return self.strict_roles

    # -- doctor (issue 7) ------------------------------------------------------------------

    def doctor(self, *, fix: bool = False, destructive: bool = False) -> DoctorReport:
        """Compare the registry with the database; with ``fix=True`` repair what is safe.

        Destructive repairs (dropping an orphan schema, finishing an interrupted drop) run only
        with ``destructive=True`` as well. The report's ``findings`` are what remains.
        """
        doctor = Doctor(self)
        if fix:
            return doctor.repair(destructive=destructive)
        return DoctorReport(doctor.examine())

    # -- hybrid placement (issue 5) --

    def _hybrid_strategy(self) -> HybridStrategy:
        if not isinstance(self.strategy, HybridStrategy):
            raise NotConfiguredFor("this needs Tenancy(..., strategy='hybrid')")
        return self.strategy

    def _locate_new(self, name: str, main: Connection, kind: str | None) -> Location:
        """Where a new tenant goes: as ``kind`` (hybrid only) or the strategy's default."""
        if kind is None:
            return self.strategy.locate(name, main)
        return self._hybrid_strategy().locate_as(name, main, kind)

    def _kind_of(self, location: Location) -> str:
        """The registry ``strategy`` of a tenant at ``location``."""
        if isinstance(self.strategy, HybridStrategy):
            return kind_of(location)
        return self.strategy.kind

    def promote_tenant(
        self,
        name: str,
        *,
        to_server: str | None = None,
        drop_foreign_keys: bool = False,
        lock_timeout: str = "30s",
        online: bool | None = None,
    ) -> TenantInfo:
        """Move schema tenant ``name`` into its own database (same schema name); idempotent.

        ``to_server`` defaults to the placement policy's choice. Foreign keys from the tenant's
        tables to other schemas raise :class:`ForeignKeyAcrossDatabases` unless
        ``drop_foreign_keys=True`` (the copy is made without them). Reads go on throughout;
        writes wait only for the switch when online, for the whole copy when offline
        (``online`` as for :meth:`move_tenant`; see docs/hybrid.md).
        """
        from .promotion import Promotion, outside_foreign_keys

        strategy = self._hybrid_strategy()
        if to_server is not None and to_server not in strategy.servers:
            raise UnknownServer(
                f"unknown server {to_server!r}; configured: {sorted(strategy.servers)}"
            )

        def plan(main: Connection, info: TenantInfo) -> tuple[Move, Location] | None:
            if info.location.database is not None:
                return None
            keys = outside_foreign_keys(main, info.schema)
            if keys and not drop_foreign_keys:
                raise ForeignKeyAcrossDatabases(name, keys)
            placed = strategy.locate_as(name, main, "database")
            target = replace(placed, schema=info.schema, server=to_server or placed.server)
            source = Location(info.schema, self.engine.url.database, "main")
            move = Promotion(
                strategy, name, source, target,
                lock_timeout=lock_timeout, online=online, leave_out=keys,
            )
            return move, target

        return self._relocate(name, plan, f"promoted tenant {name} to its own database")

    def demote_tenant(
        self, name: str, *, lock_timeout: str = "30s", online: bool | None = None
    ) -> TenantInfo:
        """Move database tenant ``name`` back into a schema of the main database; idempotent.

        The tenant's database is dropped after the registry switch. What waits, and ``online``,
        as for :meth:`promote_tenant`.
        """
        from .promotion import Demotion

        strategy = self._hybrid_strategy()

        def plan(main: Connection, info: TenantInfo) -> tuple[Move, Location] | None:
            if info.location.database is None:
                return None
            source = replace(info.location, server=info.location.server or "main")
            target = Location(info.schema, self.engine.url.database, "main")
            move = Demotion(
                strategy, name, source, target, lock_timeout=lock_timeout, online=online
            )
            return move, Location(info.schema)

        return self._relocate(name, plan, f"demoted tenant {name} to a schema of the main database")

    # -- strict mode for database tenants (issue 7) --

    @contextmanager
    def _role_connection(self, main: Connection, location: Location) -> Iterator[Connection]:
        """A connection to the cluster holding the role of the tenant at ``location``: ``main``,
        or (a database tenant on another server) an AUTOCOMMIT one to that server."""
        server = location.server
        if location.database is None or server is None or server == "main":
            yield main
            return
        with self._database_strategy().admin(server).connect() as conn:
            yield conn

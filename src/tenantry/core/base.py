"""The core of a Tenancy: its configured parts and every decision the facades share.

:class:`Core` holds the main engine, the strategy, the migration streams, the strict-mode
roles, the template, the tenant :class:`~tenantry.core.store.TenantStore` and the sync
:class:`~tenantry.core.router.Router`. :class:`~tenantry.Tenancy` and
:class:`~tenantry.aio.AsyncTenancy` are facades over it; the operations (lifecycle, fleet,
relocation, transfer, doctor) take a Core.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from ..context import working_on
from ..errors import ConfigurationError, MigrationError, NotConfiguredFor, UnknownTenant
from ..hooks import probe
from ..hooks.instrumentation import instrument
from ..hooks.statements import admin_engine, statement_tables
from ..migrations.stream import MigrationStream
from ..migrations.streamconfig import StreamSource
from ..models import TenantBase, shared_tables, tenant_tables
from ..names import DEFAULT_PREFIX, validate_name, validate_prefix
from ..provisioning.sqlscript import execute_script
from ..provisioning.template import Templates
from ..strategies import SchemaStrategy, Strategy
from ..strategies.base import NO_TENANT, ROUTING_MODES, SEARCH_PATH_OPTION, set_search_path
from ..strategies.database import DatabaseStrategy, Placement
from ..strategies.enginemetrics import EngineMetrics
from ..strategies.hybrid import HybridStrategy, kind_of
from ..strict.logins import LOGIN_OPTION, LoginEngines, LoginRoles, LoginSecret, resolve_secret
from ..strict.roles import StrictRoles
from .events import Events
from .generation import DEFAULT_INTERVAL
from .history import History
from .options import PROVISIONING, STRATEGIES, make_engine, one_of, pool_options
from .records import Records
from .registry import Location, TenantInfo
from .router import Route, Router
from .store import TenantStore

log = logging.getLogger("tenantry")

class Core:
    """The parts of one Tenancy and the decisions its facades share (see the module doc)."""

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
        # the constructor's options, to rebuild this Tenancy in worker processes (config())
        self.options = {k: v for k, v in locals().items() if k not in ("self", "bind")}
        if isinstance(bind, Engine):
            if engine_options:
                raise ConfigurationError("engine_options apply only when tenantry makes the engine")
            self.engine, self.owns_engine = bind, False
        else:
            self.engine, self.owns_engine = make_engine(bind, **(engine_options or {})), True
        one_of("strategy", strategy, sorted(STRATEGIES))
        one_of("strict", strict, [False, True, "login"])
        one_of("routing", routing, ROUTING_MODES)
        one_of("provisioning", provisioning, PROVISIONING)
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
        for key, stream in (("tenant_migrations", self.tenant_stream),
                            ("shared_migrations", self.shared_stream)):
            if stream is not None:  # worker processes get plain paths (a Config won't pickle)
                self.options[key] = stream.spec
        strategy_options = {  # database per tenant; None: the strategy's default
            k: v
            for k, v in dict(servers=servers, placement=placement, max_engines=max_engines,
                             max_parked=max_parked, max_connections=max_connections,
                             pool_size=pool_size, budget_timeout=budget_timeout,
                             template=template).items()
            if v is not None
        }
        login_pools: dict[str, Any] = {}  # schema tenants logging in: their own registry's
        if strict == "login" and strategy == SchemaStrategy.kind:
            login_pools = {k: strategy_options.pop(k) for k in pool_options
                           if k in strategy_options}
        if strategy_options and strategy not in (DatabaseStrategy.kind, HybridStrategy.kind):
            raise ConfigurationError(
                f"{sorted(strategy_options)} apply only to strategy='database'"
            )
        self.strategy: Strategy = STRATEGIES[strategy](
            self.engine, self.prefix, **strategy_options
        )
        #: The application's tenant records (docs/records.md); tenantry creates their table
        #: when no shared stream does.
        self.records = (Records(self.metadata, tenant_columns, managed=shared_migrations is None)
                        if tenant_columns else None)
        self.store = TenantStore(self.engine, self.records)
        if not isinstance(refresh_interval, int | float) or refresh_interval < 0:
            raise ConfigurationError(f"refresh_interval must be seconds >= 0, not "
                                     f"{refresh_interval!r}")
        self.store.freshness.interval = float(refresh_interval)
        #: The application's lifecycle hooks (:mod:`tenantry.core.events`), and the history
        #: every event is written to (:mod:`tenantry.core.history`).
        self.events = Events()
        self.history = History(self.store.begin)
        self.events.journal = self.history.record
        #: ``routing="search_path"``: unqualified tables are tenant tables, found through the
        #: ``search_path`` each tenant transaction sets (docs/search-path.md).
        self.search_path = routing == "search_path"
        self.router: Router[Engine] = Router(self.prefix, self.search_path)
        self.store.on_change(self.router.forget)
        self.store.freshness.on_stale(self.router.clear)
        if isinstance(self.strategy, DatabaseStrategy):  # and hybrid
            self.strategy.template_stream = self.tenant_stream
            self.strategy.forget = self.router.forget  # drop routes gone stale
        instrument(self.engine)  # guard, strict roles on every door, reset at check-in
        #: The main engine with the hook of admin connections (routing per statement).
        self.admin_engine = admin_engine(self.engine)
        #: The options and the engine of sessions and connections without a tenant.
        self.untenanted_options = {SEARCH_PATH_OPTION: NO_TENANT} if self.search_path else {}
        self.untenanted_engine = (self.engine.execution_options(**self.untenanted_options)
                                  if self.search_path else self.engine)
        self.provisioning = provisioning
        self.templates = self._templates(pg_dump)
        self.strict_roles = StrictRoles(self.engine) if strict else None
        if strict == "login":  # untrusted SQL: tenants' connections log in as their role
            secret = resolve_secret(login_secret)
            self.options["login_secret"] = secret  # worker processes get it, never printed
            engines = LoginEngines.for_strategy(self.strategy, self.engine, secret, login_pools)
            self.strict_roles = LoginRoles(self.engine, engines, secret)

    def __repr__(self) -> str:
        return f"{self.strategy.kind} {self.engine.url.render_as_string(hide_password=True)}"

    def dispose(self) -> None:
        """Close the pools tenantry opened."""
        self.strategy.dispose()
        if isinstance(self.strict_roles, LoginRoles):
            self.strict_roles.dispose()
        self.router.clear()
        probe.close_for(self.engine)
        if self.owns_engine:
            self.engine.dispose()

    def recipe(self) -> tuple[str, dict[str, Any]]:
        """The URL (with its password) and the options that rebuild this core elsewhere."""
        url = self.engine.url.render_as_string(hide_password=False)
        options = {
            k: str(v) if isinstance(v, Path) else v
            for k, v in self.options.items()
            if k != "metadata" and not (k == "engine_options" and not self.owns_engine)
        }
        return url, options

    def tenant(self, name: str) -> TenantInfo:
        """The registry row of ``name``; :class:`UnknownTenant` if there is none."""
        validate_name(name, self.prefix)
        return self.store.get(name)

    def tenant_exists(self, name: str) -> bool:
        """Whether ``name`` is registered."""
        try:
            self.tenant(name)
        except UnknownTenant:
            return False
        return True

    def engine_metrics(self) -> EngineMetrics:
        """Counters of the tenant engine registry (database strategy, or ``strict='login'``)."""
        if self.logins is not None:
            return self.logins.engines.registry.metrics()
        return self.database_strategy().engines.metrics()

    def tenant_role(self, name: str) -> str:
        """Strict mode: the PostgreSQL role of tenant ``name``."""
        location = self.tenant(name).location
        with self.engine.connect() as conn:
            return self.strict().role(conn, location)

    def enable_strict(self) -> None:
        """Turn strict mode on after construction (as ``strict=True`` does); idempotent."""
        if self.strict_roles is None:
            self.strict_roles = StrictRoles(self.engine)
            self.router.clear()

    # -- routing -------------------------------------------------------------------------

    @property
    def logins(self) -> LoginRoles | None:
        """The login roles (``strict="login"``), else ``None``."""
        return self.strict_roles if isinstance(self.strict_roles, LoginRoles) else None

    def route(self, name: str) -> Engine:
        """The engine (with routing options) for tenant ``name``; raises if unknown."""
        if self.store.freshness.due():  # another process may have changed the registry
            self.store.freshness.check()
        hit = self.router.cached(name)
        if hit is not None and hit.info.location.database is None and self.logins is None:
            return hit.engine  # a schema tenant on the main engine
        if hit is not None:  # an engine of the registry: they come and go (LRU), fetch it again
            base = self._tenant_engine(hit.info.location, hit.options)
            if hit.engine.pool is base.pool:  # still the registry's engine: the route holds
                return hit.engine
            info, options = hit.info, hit.options
        else:
            with self.store.begin() as conn:
                info, options = self.router.decide(conn, name, self.strict_roles)
            base = self._tenant_engine(info.location, options)
        return self.router.remember(Route(info, options, base.execution_options(**options)))

    def resolve(self, tenant: str, statement: Any = None) -> tuple[Engine, TenantInfo]:
        """The routed engine of ``tenant`` and its registry row (:class:`UnknownTenant` if
        none, naming the tables of ``statement``)."""
        try:
            engine = self.route(tenant)
        except UnknownTenant as exc:
            tables = statement_tables(statement) if statement is not None else []
            if not tables:
                raise
            detail = str(exc).partition(": ")[2]
            where = f"named by a statement on {', '.join(tables)}"
            raise UnknownTenant(tenant, f"{detail}; {where}" if detail else where) from None
        hit = self.router.cached(tenant)
        return engine, hit.info if hit is not None else self.tenant(tenant)

    def same_database(self, info: TenantInfo, engine: Engine) -> bool:
        """Whether ``info``'s tables are reachable through ``engine``'s database."""
        return self.strategy.engine(info.location).url == engine.url

    def _tenant_engine(self, location: Location, options: dict[str, Any]) -> Engine:
        logins = self.logins
        if logins is None:
            return self.strategy.engine(location)
        return logins.engines.engine(location, options[LOGIN_OPTION])

    # -- what operations need --------------------------------------------------------------

    def require_tenant_stream(self) -> MigrationStream:
        if self.tenant_stream is None:
            raise MigrationError("no tenant migrations configured (tenant_migrations=...)")
        return self.tenant_stream

    def database_strategy(self) -> DatabaseStrategy:
        if not isinstance(self.strategy, DatabaseStrategy):
            raise NotConfiguredFor("this needs Tenancy(..., strategy='database')")
        return self.strategy

    def hybrid_strategy(self) -> HybridStrategy:
        if not isinstance(self.strategy, HybridStrategy):
            raise NotConfiguredFor("this needs Tenancy(..., strategy='hybrid')")
        return self.strategy

    def strict(self) -> StrictRoles:
        if self.strict_roles is None:
            raise NotConfiguredFor("strict mode is off: create the Tenancy with strict=True")
        return self.strict_roles

    def kind_of(self, location: Location) -> str:
        """The registry ``strategy`` of a tenant at ``location``."""
        if isinstance(self.strategy, HybridStrategy):
            return kind_of(location)
        return self.strategy.kind

    def locate_new(self, name: str, main: Connection, kind: str | None) -> Location:
        """Where a new tenant goes: as ``kind`` (hybrid only) or the strategy's default."""
        if kind is None:
            return self.strategy.locate(name, main)
        return self.hybrid_strategy().locate_as(name, main, kind)

    def schema_kind(self, kind: str | None) -> bool:
        """Whether a tenant created as ``kind`` (``None``: the default) is a schema tenant."""
        if isinstance(self.strategy, HybridStrategy):
            return (kind or self.strategy.default_kind) == "schema"
        return self.strategy.kind == "schema"

    @contextmanager
    def as_tenant(self, conn: Connection, tenant: str, location: Location) -> Iterator[None]:
        """Run the block (migrations) with ``tenant`` current (so logs name it) and, in strict
        mode, as the tenant's role (made if missing)."""
        with working_on(tenant):  # not use(): that rejects names like "pg_x"
            if self.strict_roles is None:
                yield
                return
            with self.strict_roles.acting_as(conn, tenant, location):
                yield

    @contextmanager
    def role_connection(self, main: Connection, location: Location) -> Iterator[Connection]:
        """A connection to the cluster holding the role of the tenant at ``location``: ``main``,
        or (a database tenant on another server) an AUTOCOMMIT one to that server."""
        server = location.server
        if location.database is None or server is None or server == "main":
            yield main
            return
        with self.database_strategy().admin(server).connect() as conn:
            yield conn

    # -- the tenant's tables -----------------------------------------------------------------

    def build_tenant_tables(self, conn: Connection, schema: str) -> str | None:
        """Bring a new, empty tenant schema to the head; returns the revision."""
        # the schema template is a schema of the main database: for tenants there only
        on_main = conn.engine is self.engine
        if self.tenant_stream is not None and on_main and self.use_template(conn):
            assert self.templates is not None
            execute_script(conn, self.templates.sql(schema))
            log.info("filled %s from the template at %s", schema, self.tenant_stream.head)
            return self.tenant_stream.head
        if self.tenant_stream is not None:
            return self.tenant_stream.upgrade(conn, schema).after
        if self.search_path:  # unqualified tables: created where the search_path points
            set_search_path(conn, schema)
        self.metadata.create_all(conn, tables=self.tenant_tables(), checkfirst=False)
        return None

    def tenant_tables(self) -> list[sa.Table]:
        """The tenant tables of the models (unqualified ones too, ``routing="search_path"``)."""
        return tenant_tables(self.metadata, self.search_path)

    def shared_tables(self) -> list[sa.Table]:
        """The shared tables of the models."""
        return shared_tables(self.metadata, self.search_path)

    def _templates(self, pg_dump: str | Path | None) -> Templates | None:
        if self.provisioning == "migrations" or self.tenant_stream is None:
            return None
        if self.strategy.kind not in ("schema", "hybrid"):  # hybrid: for its schema tenants
            return None
        return Templates(self.engine, self.tenant_stream, pg_dump)

    def use_template(self, conn: Connection) -> bool:
        """Whether new tenants come from the template (``auto``: if pg_dump is usable)."""
        if self.templates is None:
            return False
        if self.provisioning == "auto":
            try:
                self.templates.dump_program(conn)
            except ConfigurationError as exc:
                log.warning("provisioning by replaying migrations: %s", exc)
                self.templates = None
                return False
        return True

    def warm_template(self) -> None:
        """Build (or load) the template now, before any transaction is open."""
        if self.templates is None:
            return
        if self.provisioning == "auto" and not self.templates.checked:
            with self.engine.connect() as conn:
                if not self.use_template(conn):
                    return
        self.templates.warm()


class HasCore(Protocol):
    """A facade over a core (:class:`~tenantry.Tenancy`)."""

    core: Core


def core_of(owner: Core | HasCore) -> Core:
    """The core of ``owner`` (a Tenancy), or ``owner`` itself."""
    return owner if isinstance(owner, Core) else owner.core

"""The public facade: :class:`Tenancy` provisions, routes, and migrates tenants."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session

from . import guard, registry
from .context import _current as _current_tenant
from .context import current_tenant
from .context import use as use_context
from .doctor import Doctor, DoctorReport
from .errors import (
    ConfigurationError,
    ConfirmationRequired,
    MigrationError,
    TenantExists,
    UnknownTenant,
)
from .migrations import MigrationReport, MigrationStream, Step, TenantOutcome, TenantStatus
from .models import SHARED_SCHEMA, TenantBase, shared_tables, tenant_tables
from .names import DEFAULT_PREFIX, validate_name, validate_prefix
from .registry import Location, State, TenantInfo
from .strategies import SchemaStrategy, Strategy, routing_options
from .strategies.base import set_search_path
from .strict import StrictRoles

log = logging.getLogger("tenantry")

_STRATEGIES: dict[str, type[Strategy]] = {SchemaStrategy.kind: SchemaStrategy}


def make_engine(url: str | URL, **options: Any) -> Engine:
    """An engine for ``url``; a bare ``postgresql://`` URL gets the psycopg 3 driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:  # the message must not echo the URL: it may hold a password
        raise ConfigurationError(
            "cannot parse the database URL; expected postgresql://user@host/database"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise ConfigurationError(f"tenantry needs PostgreSQL, not {parsed.drivername!r}")
    return sa.create_engine(parsed, **options)


class Tenancy:
    """Multi-tenancy for one application database.

    ``bind`` is an :class:`~sqlalchemy.engine.Engine` or a URL (then tenantry owns the engine
    and :meth:`dispose` closes it). ``metadata`` holds the models (default: that of
    :class:`~tenantry.TenantBase` / :class:`~tenantry.SharedBase`); ``tenant_migrations`` and
    ``shared_migrations`` are Alembic script directories. Without ``tenant_migrations``, new
    tenants get their tables from ``metadata`` (``create_all``).
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
        strict: bool = False,
    ) -> None:
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
        self.strategy: Strategy = _STRATEGIES[strategy](self.engine, self.prefix)
        guard.install(self.engine)
        self._registry_ready = False
        self._known: dict[str, tuple[TenantInfo, Engine]] = {}
        self._lock = threading.Lock()
        self.strict_roles = StrictRoles(self.engine) if strict else None
        if self.strict_roles is not None:
            self.strict_roles.install()

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
        self._known.clear()
        if self._owns_engine:
            self.engine.dispose()

    # -- registry ------------------------------------------------------------------------

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction on the main database, the registry table guaranteed to exist."""
        with self.engine.begin() as conn:
            if not self._registry_ready:
                registry.ensure(conn)
            yield conn
        self._registry_ready = True

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

    def create_tenant(self, name: str) -> TenantInfo:
        """Create tenant ``name`` at the head revision and register it; idempotent.

        Concurrent callers are serialised by an advisory lock; with the schema strategy the
        storage, the migrations and the registry row commit in one transaction, so a failure
        leaves nothing behind.
        """
        validate_name(name, self.prefix)
        if self.strict_roles is not None:
            self.strict_roles.ensure_group()
        with self._begin() as main:
            registry.lock_tenants(main, [name])
            existing = registry.get(main, name)
            if existing is not None:
                return existing
            location = self.strategy.locate(name, main)
            if self.strategy.exists(main, location):
                raise TenantExists(
                    f"storage {location.schema!r} for tenant {name!r} exists but is not "
                    "registered; drop it or register it by hand"
                )
            with self.strategy.storage(main, name, location, create=True) as conn, \
                    self._as_tenant(conn, name, location):
                revision = self._build_tenant_tables(conn, location.schema)
            info = registry.insert(main, name, self.strategy.kind, location, State.READY, revision)
        log.info("created tenant %s in %s (revision %s)", name, location.schema, revision,
                 extra={"tenant": name})
        return info

    def _build_tenant_tables(self, conn: Connection, schema: str) -> str | None:
        """Bring a new, empty tenant schema to the head; returns the revision."""
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
            self.strategy.drop(main, info.location)
            if self.strict_roles is not None:
                self.strict_roles.drop(main, name, info.location)
            registry.delete(main, name)
        self._forget(name)
        log.info("dropped tenant %s (%s)", name, info.location.schema, extra={"tenant": name})
        return True

    def rename_tenant(self, old: str, new: str) -> TenantInfo:
        """Rename tenant ``old`` to ``new`` (its storage too); idempotent."""
        validate_name(old, self.prefix)
        validate_name(new, self.prefix)
        with self._begin() as main:
            registry.lock_tenants(main, [old, new])
            info, target = registry.get(main, old), registry.get(main, new)
            if info is None:
                if target is not None:
                    return target
                raise UnknownTenant(old)
            if target is not None:
                raise TenantExists(f"cannot rename {old!r} to {new!r}: {new!r} exists")
            location = self.strategy.renamed(info.location, new)
            if self.strategy.exists(main, location):
                raise TenantExists(f"cannot rename {old!r}: storage {location.schema!r} exists")
            self.strategy.rename(main, info.location, location)
            if self.strict_roles is not None:
                self.strict_roles.rename(main, new, info.location, location)
            registry.update(main, old, name=new, location=location)
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
        if hit is not None:
            return hit[1]
        validate_name(name, self.prefix)
        with self._begin() as conn:
            info = registry.get(conn, name)
            if info is None or not info.usable:
                raise UnknownTenant(name, "" if info is None else f"state is {info.state}")
            routed: Engine = self.strategy.engine(info.location).execution_options(
                **routing_options(name, info.schema)
            )
            if self.strict_roles is not None:
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
        return Session(bind=bind, info=info, **kwargs)

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
        name = info.name
        try:
            with self._begin() as main:
                registry.lock_tenants(main, [name])
                with self.strategy.storage(main, name, info.location) as conn, \
                        self._as_tenant(conn, name, info.location):
                    step = stream.to(conn, info.schema, target)
                registry.update(main, name, state=State.READY, revision=step.after, error=None)
        except Exception as exc:  # one tenant's failure is recorded, not fatal to the fleet
            error = f"{type(exc).__name__}: {exc}".strip()[:4000]
            log.error("migration of tenant %s failed: %s", name, error, extra={"tenant": name})
            with self._begin() as main:
                registry.update(main, name, state=State.FAILED, error=error)
            return TenantOutcome(name, "failed", info.revision, info.revision, error)
        self._forget(name)
        log.info("tenant %s: %s -> %s", name, step.before or "base", step.after or "base",
                 extra={"tenant": name})
        return TenantOutcome(
            name, "upgraded" if step.changed else "current", step.before, step.after
        )

    def migrate_all(
        self, target: str = "heads", tenants: Sequence[str] | None = None
    ) -> MigrationReport:
        """Shared stream first, then every (or each listed) tenant, each in its own transaction.

        A failing tenant is recorded (state ``failed``) and does not stop the others. Tenants
        whose registered revision is already the head are skipped without a connection.
        """
        shared = self.migrate_shared()
        stream = self._tenant_stream()
        with self._begin() as conn:
            infos = registry.all_tenants(conn, tenants)
        if tenants is not None:
            missing = sorted(set(tenants) - {i.name for i in infos})
            if missing:
                raise UnknownTenant(missing[0], f"not registered (also missing: {missing[1:]})")
        outcomes = []
        for info in infos:
            at_head = target in ("head", "heads") and info.revision == stream.head
            if at_head and info.state == State.READY:
                outcomes.append(TenantOutcome(info.name, "current", info.revision, info.revision))
            else:
                outcomes.append(self._migrate(info, target))
        return MigrationReport(shared, outcomes)

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
            self.strict_roles.install()
            self._known.clear()

    def _strict(self) -> StrictRoles:
        if self.strict_roles is None:
            raise ConfigurationError("strict mode is off: create the Tenancy with strict=True")
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

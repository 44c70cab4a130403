"""The async facade: :class:`AsyncTenancy` routes async sessions; admin work reuses Tenancy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from .. import instrumentation, registry
from ..context import current_tenant
from ..context import use as use_context
from ..errors import ConfigurationError, UnknownTenant
from ..logins import LOGIN_OPTION, LoginRoles, LoginSecret
from ..migrationresults import MigrationReport, Step, TenantOutcome, TenantStatus
from ..names import validate_name
from ..registry import Location, TenantInfo
from ..rolenames import ROLE_OPTION
from ..strategies import DatabaseStrategy, routing_options
from ..strategies.database import MAIN_SERVER
from ..tenancy import Tenancy
from .engine import Driver, make_async_engine, sync_url


class AsyncTenancy:
    """Multi-tenancy for asyncio applications, with the same rules as :class:`~tenantry.Tenancy`.

    ``bind`` is a URL, an :class:`~sqlalchemy.ext.asyncio.AsyncEngine`, or an existing
    :class:`~tenantry.Tenancy`. Sessions and connections are async and routed with
    ``schema_translate_map``; provisioning, migrations and registry reads are delegated to a
    sync :class:`~tenantry.Tenancy` (``self.admin``) run in a worker thread.

    ``driver`` picks the async driver: ``"psycopg"`` (default) or ``"asyncpg"``. Keyword
    arguments other than ``driver`` and ``engine_options`` go to the sync ``Tenancy``;
    ``strict=True`` (or a strict ``Tenancy`` as ``bind``) runs tenant sessions as the tenant's
    role, as in the sync API; ``strict="login"`` (with ``login_secret``) logs them in as it.
    """

    def __init__(
        self,
        bind: Tenancy | AsyncEngine | str | URL,
        *,
        driver: Driver | None = None,
        engine_options: dict[str, Any] | None = None,
        strategy: str = "schema",
        prefix: str | None = None,
        metadata: Any = None,
        tenant_migrations: str | Path | None = None,
        shared_migrations: str | Path | None = None,
        strict: bool | Literal["login"] = False,
        login_secret: str | bytes | LoginSecret | None = None,
    ) -> None:
        admin_options: dict[str, Any] = {
            "strict": strict,
            "login_secret": login_secret,
            "strategy": strategy,
            "metadata": metadata,
            "tenant_migrations": tenant_migrations,
            "shared_migrations": shared_migrations,
        }
        if prefix is not None:
            admin_options["prefix"] = prefix
        self._engine_options = dict(engine_options or {})
        if isinstance(bind, Tenancy):
            if (metadata is not None or tenant_migrations or shared_migrations or prefix or strict
                    or login_secret is not None):
                raise ConfigurationError(
                    "pass Tenancy options to the Tenancy, not to AsyncTenancy(tenancy)"
                )
            self.admin, self._owns_admin = bind, False
            self.engine = make_async_engine(bind.engine.url, driver, **self._engine_options)
            self._owns_engine = True
        elif isinstance(bind, AsyncEngine):
            if driver is not None or engine_options:
                raise ConfigurationError("driver and engine_options apply only to a URL bind")
            instrumentation.instrument(bind)
            self.engine, self._owns_engine = bind, False
            self.admin, self._owns_admin = Tenancy(sync_url(bind.url), **admin_options), True
        else:
            self.engine = make_async_engine(bind, driver, **self._engine_options)
            self._owns_engine = True
            self.admin, self._owns_admin = Tenancy(sync_url(bind), **admin_options), True
        asyncpg = self.engine.url.get_driver_name() == "asyncpg"
        self.driver: Driver = "asyncpg" if asyncpg else "psycopg"
        self._known: dict[str, tuple[Location, AsyncEngine]] = {}
        self._registry_ready = False

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"<AsyncTenancy {self.admin.strategy.kind} {url}>"

    async def __aenter__(self) -> AsyncTenancy:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.dispose()

    async def dispose(self) -> None:
        """Close the pools tenantry opened (async and admin)."""
        self._known.clear()
        await self._dispose_tenant_engines()
        if self._owns_engine:
            await self.engine.dispose()
        if self._owns_admin:
            await asyncio.to_thread(self.admin.dispose)

    # -- routing -------------------------------------------------------------------------

    async def _dispose_tenant_engines(self) -> None:
        """Close this AsyncTenancy's async engines of tenant databases (database strategy)."""
        strategy, roles = self.admin.strategy, self.admin.strict_roles
        if isinstance(roles, LoginRoles):  # login engines (and the strategy's, if shared)
            await roles.engines.registry.discard_owner(self)
        if isinstance(strategy, DatabaseStrategy):
            await strategy.engines.discard_owner(self)

    async def _engine_for(self, location: Location, tenant: str) -> AsyncEngine:
        """The async engine reaching ``location``'s database, as the strategy places it.

        With the database strategy, tenant databases' async engines come from the strategy's
        :class:`~tenantry.engines.EngineRegistry` (``get_async``): one LRU and one
        ``max_connections`` budget with the sync engines.
        """
        strategy, roles = self.admin.strategy, self.admin.strict_roles
        if isinstance(roles, LoginRoles):  # strict="login": logged in as the tenant's role
            return await self._login_engine(roles, location, tenant)
        if not isinstance(strategy, DatabaseStrategy) or location.database is None:
            return self.engine
        server = location.server or MAIN_SERVER
        main = self.admin.engine.url
        if server == MAIN_SERVER and location.database == main.database:
            return self.engine

        def make(url: URL, **options: Any) -> AsyncEngine:
            engine = make_async_engine(url, self.driver, **{**options, **self._engine_options})
            self._watch_vanished(engine, tenant)
            return engine

        return await strategy.engines.get_async(
            server, location.database, make, owner=self, on_drop=lambda: self._forget(tenant)
        )

    async def _login_engine(
        self, roles: LoginRoles, location: Location, tenant: str
    ) -> AsyncEngine:
        """The async engine logged in as the tenant's role (the login engines' registry)."""
        role = roles.engines.role(location)

        def make(url: URL, **options: Any) -> AsyncEngine:
            engine = make_async_engine(url, self.driver, **{**options, **self._engine_options})
            if location.database is not None:  # a tenant database: it may be dropped or moved
                self._watch_vanished(engine, tenant)
            return engine

        engine = await roles.engines.engine_async(
            location, role, make, owner=self, on_drop=lambda: self._forget(tenant)
        )
        return engine.execution_options(**{LOGIN_OPTION: role})

    def _watch_vanished(self, engine: AsyncEngine, tenant: str) -> None:
        """A tenant database dropped, renamed or moved elsewhere: :class:`UnknownTenant`, and
        the cached route is forgotten so that the next call reads the registry again."""
        database = engine.url.database or ""
        missing = f'database "{database}" does not exist'
        strategy = self.admin.strategy
        gone = strategy.database_gone if isinstance(strategy, DatabaseStrategy) else None

        def vanished(ctx: ExceptionContext) -> BaseException | None:
            if missing in str(ctx.original_exception) or (
                ctx.is_disconnect and gone is not None and gone(engine.url)
            ):
                self._forget(tenant)
                return UnknownTenant(tenant, f"database {database!r} no longer exists here")
            return None

        event.listen(engine.sync_engine, "handle_error", vanished)

    async def _lookup(self, name: str) -> tuple[TenantInfo | None, dict[str, str]]:
        """The registry row of ``name`` and, in strict mode, the option naming its role."""
        if not self._registry_ready:
            await asyncio.to_thread(self.admin.setup)
            self._registry_ready = True
        roles = self.admin.strict_roles
        async with self.engine.connect() as conn:
            info = await conn.run_sync(registry.get, name)
            if roles is None or info is None or isinstance(roles, LoginRoles):
                return info, {}  # login mode: the engine is logged in as the role already
            return info, {ROLE_OPTION: await conn.run_sync(roles.role, info.location)}

    async def route(self, name: str) -> AsyncEngine:
        """The async engine, with routing options, for tenant ``name``; raises if unknown.

        The registry is read once per tenant; later calls hit a cache.
        """
        hit = self._known.get(name)
        if hit is not None:
            location, routed = hit
            base = await self._engine_for(location, name)  # keeps it recently used
            if routed.sync_engine.pool is base.sync_engine.pool:
                return routed
            options = routed.get_execution_options()
            role = {k: v for k, v in options.items() if k == ROLE_OPTION}
        else:
            validate_name(name, self.admin.prefix)
            info, role = await self._lookup(name)
            if info is None or not info.usable:
                raise UnknownTenant(name, "" if info is None else f"state is {info.state}")
            location = info.location
            base = await self._engine_for(location, name)
        # a new route, or its engine was evicted and dropped from the registry since
        routed = base.execution_options(**routing_options(name, location.schema), **role)
        self._known[name] = (location, routed)
        return routed

    def _forget(self, *names: str) -> None:
        for name in names:
            self._known.pop(name, None)

    def session(self, tenant: str | None = None, **kwargs: Any) -> SessionOpener:
        """An :class:`~sqlalchemy.ext.asyncio.AsyncSession` for ``tenant`` (default: current).

        Use ``async with tenancy.session("acme") as s`` (closed on exit) or
        ``s = await tenancy.session("acme")``. With no tenant the session reaches shared tables
        only; a statement on a tenant table raises :class:`~tenantry.NoTenantSelected`.
        ``expire_on_commit`` defaults to ``False``, as lazy loads cannot run after a commit
        in asyncio.
        """
        name = tenant if tenant is not None else current_tenant()
        return SessionOpener(self, name, kwargs)

    @asynccontextmanager
    async def connection(self, tenant: str | None = None) -> AsyncIterator[AsyncConnection]:
        """An :class:`~sqlalchemy.ext.asyncio.AsyncConnection` for ``tenant`` (default: current)."""
        name = tenant if tenant is not None else current_tenant()
        bind = self.engine if name is None else await self.route(name)
        async with bind.connect() as conn:
            yield conn

    @asynccontextmanager
    async def use(self, tenant: str) -> AsyncIterator[str]:
        """Select ``tenant`` implicitly for the block (checked against the registry).

        Sets the same ContextVar as :func:`tenantry.use`; tasks created inside inherit it.
        """
        await self.route(tenant)
        with use_context(tenant):
            yield tenant

    # -- admin, delegated to the sync Tenancy in a worker thread ---------------------------

    async def setup(self) -> None:
        """Create tenantry's registry table if needed."""
        await asyncio.to_thread(self.admin.setup)
        self._registry_ready = True

    async def create_tenant(self, name: str) -> TenantInfo:
        """See :meth:`Tenancy.create_tenant`."""
        return await asyncio.to_thread(self.admin.create_tenant, name)

    async def drop_tenant(self, name: str, *, confirm: bool = False) -> bool:
        """See :meth:`Tenancy.drop_tenant` (needs ``confirm=True``)."""
        try:
            return await asyncio.to_thread(self.admin.drop_tenant, name, confirm=confirm)
        finally:
            self._forget(name)

    async def rename_tenant(self, old: str, new: str) -> TenantInfo:
        """See :meth:`Tenancy.rename_tenant`."""
        try:
            return await asyncio.to_thread(self.admin.rename_tenant, old, new)
        finally:
            self._forget(old, new)

    async def list_tenants(self) -> list[TenantInfo]:
        """See :meth:`Tenancy.list_tenants`."""
        return await asyncio.to_thread(self.admin.list_tenants)

    async def get_tenant(self, name: str) -> TenantInfo:
        """See :meth:`Tenancy.get_tenant`."""
        return await asyncio.to_thread(self.admin.get_tenant, name)

    async def tenant_exists(self, name: str) -> bool:
        """See :meth:`Tenancy.tenant_exists`."""
        return await asyncio.to_thread(self.admin.tenant_exists, name)

    async def migrate_shared(self, target: str = "heads") -> Step | None:
        """See :meth:`Tenancy.migrate_shared`."""
        return await asyncio.to_thread(self.admin.migrate_shared, target)

    async def migrate_tenant(self, name: str, target: str = "heads") -> TenantOutcome:
        """See :meth:`Tenancy.migrate_tenant`."""
        try:
            return await asyncio.to_thread(self.admin.migrate_tenant, name, target)
        finally:
            self._forget(name)

    async def migrate_all(
        self, target: str = "heads", tenants: Sequence[str] | None = None
    ) -> MigrationReport:
        """See :meth:`Tenancy.migrate_all`."""
        try:
            return await asyncio.to_thread(self.admin.migrate_all, target, tenants)
        finally:
            self._known.clear()

    async def move_tenant(self, name: str, to: str, *, lock_timeout: str = "30s") -> TenantInfo:
        """See :meth:`Tenancy.move_tenant` (database strategy)."""
        try:
            return await asyncio.to_thread(
                self.admin.move_tenant, name, to, lock_timeout=lock_timeout
            )
        finally:
            self._forget(name)

    async def status(self) -> list[TenantStatus]:
        """See :meth:`Tenancy.status`."""
        return await asyncio.to_thread(self.admin.status)


class SessionOpener:
    """What :meth:`AsyncTenancy.session` returns: ``async with`` it, or ``await`` it."""

    __slots__ = ("_kwargs", "_session", "_tenancy", "tenant")

    def __init__(self, tenancy: AsyncTenancy, tenant: str | None, kwargs: dict[str, Any]) -> None:
        self._tenancy = tenancy
        self.tenant = tenant
        self._kwargs = kwargs
        self._session: AsyncSession | None = None

    async def open(self) -> AsyncSession:
        """Route and open the session."""
        kwargs = dict(self._kwargs)
        name = self.tenant
        bind = self._tenancy.engine if name is None else await self._tenancy.route(name)
        info = dict(kwargs.pop("info", None) or {}, tenantry_tenant=name)
        kwargs.setdefault("expire_on_commit", False)
        return AsyncSession(bind=bind, info=info, **kwargs)

    def __await__(self) -> Generator[Any, None, AsyncSession]:
        return self.open().__await__()

    async def __aenter__(self) -> AsyncSession:
        self._session = await self.open()
        return self._session

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

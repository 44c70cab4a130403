"""The async facade: :class:`AsyncTenancy` routes async sessions; admin work reuses Tenancy."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from weakref import WeakSet

from sqlalchemy import event
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.util import greenlet_spawn

from .. import guard, registry
from ..context import current_tenant
from ..context import use as use_context
from ..errors import ConfigurationError, UnknownTenant
from ..migrations import MigrationReport, Step, TenantOutcome, TenantStatus
from ..names import validate_name
from ..registry import Location, TenantInfo
from ..strategies import DatabaseStrategy, routing_options
from ..tenancy import Tenancy
from .engine import Driver, make_async_engine, sync_url


class AsyncTenancy:
    """Multi-tenancy for asyncio applications, with the same rules as :class:`~tenantry.Tenancy`.

    ``bind`` is a URL, an :class:`~sqlalchemy.ext.asyncio.AsyncEngine`, or an existing
    :class:`~tenantry.Tenancy`. Sessions and connections are async and routed with
    ``schema_translate_map``; provisioning, migrations and registry reads are delegated to a
    sync :class:`~tenantry.Tenancy` (``self.admin``) run in a worker thread.

    ``driver`` picks the async driver: ``"psycopg"`` (default) or ``"asyncpg"``. Keyword
    arguments other than ``driver`` and ``engine_options`` go to the sync ``Tenancy``.
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
    ) -> None:
        admin_options: dict[str, Any] = {
            "strategy": strategy,
            "metadata": metadata,
            "tenant_migrations": tenant_migrations,
            "shared_migrations": shared_migrations,
        }
        if prefix is not None:
            admin_options["prefix"] = prefix
        self._engine_options = dict(engine_options or {})
        if isinstance(bind, Tenancy):
            if metadata is not None or tenant_migrations or shared_migrations or prefix:
                raise ConfigurationError(
                    "pass Tenancy options to the Tenancy, not to AsyncTenancy(tenancy)"
                )
            self.admin, self._owns_admin = bind, False
            self.engine = make_async_engine(bind.engine.url, driver, **self._engine_options)
            self._owns_engine = True
        elif isinstance(bind, AsyncEngine):
            if driver is not None or engine_options:
                raise ConfigurationError("driver and engine_options apply only to a URL bind")
            guard.install(bind.sync_engine)
            self.engine, self._owns_engine = bind, False
            self.admin, self._owns_admin = Tenancy(sync_url(bind.url), **admin_options), True
        else:
            self.engine = make_async_engine(bind, driver, **self._engine_options)
            self._owns_engine = True
            self.admin, self._owns_admin = Tenancy(sync_url(bind), **admin_options), True
        asyncpg = self.engine.url.get_driver_name() == "asyncpg"
        self.driver: Driver = "asyncpg" if asyncpg else "psycopg"
        self._known: dict[str, AsyncEngine] = {}
        #: Async engines of other databases (database strategy), least recently used first.
        self._engines: OrderedDict[str, AsyncEngine] = OrderedDict()
        self._keys: dict[str, str] = {}  # tenant -> key of its engine in ``_engines``
        self._retired: WeakSet[Pool] = WeakSet()  # pools of evicted engines
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
        engines, self._engines = list(self._engines.values()), OrderedDict()
        for pool in list(self._retired):
            await greenlet_spawn(pool.dispose)
        for engine in engines:
            await engine.dispose()
        if self._owns_engine:
            await self.engine.dispose()
        if self._owns_admin:
            await asyncio.to_thread(self.admin.dispose)

    # -- routing -------------------------------------------------------------------------

    def _engine_for(self, location: Location, tenant: str) -> AsyncEngine:
        """The async engine reaching ``location``'s database, as the strategy places it.

        With the database strategy, at most its ``max_engines`` async engines (pool size its
        ``pool_size``, no overflow, unless ``engine_options`` say otherwise) are kept; the
        least recently used is evicted (see :meth:`_evict`).
        """
        strategy = self.admin.strategy
        sync_engine = strategy.engine(location)
        if sync_engine is self.admin.engine:
            return self.engine
        key = sync_engine.url.render_as_string(hide_password=False)
        self._keys[tenant] = key
        engine = self._engines.get(key)
        if engine is not None:
            self._engines.move_to_end(key)
            return engine
        options: dict[str, Any] = {}
        if isinstance(strategy, DatabaseStrategy):
            options = {"pool_size": strategy.engines.pool_size, "max_overflow": 0}
        options.update(self._engine_options)
        engine = make_async_engine(sync_engine.url, self.driver, **options)
        self._watch_vanished(engine, tenant)
        self._engines[key] = engine
        return engine

    async def _evict(self) -> None:
        """Drop the least recently used tenant engines beyond the strategy's ``max_engines``.

        Routes through them are forgotten. Their idle connections are closed now; connections
        checked out of them (or opened later by a task that routed before the eviction) are
        closed by the first routing call after they were returned (:meth:`_sweep`).
        """
        strategy = self.admin.strategy
        if not isinstance(strategy, DatabaseStrategy):
            return
        while len(self._engines) > strategy.engines.max_engines:
            _, victim = self._engines.popitem(last=False)
            pool = victim.sync_engine.pool
            self._forget(*[n for n, r in self._known.items() if r.sync_engine.pool is pool])
            self._retired.add(pool)
        await self._sweep()

    async def _sweep(self) -> None:
        """Close the idle connections of evicted engines' pools (held weakly)."""
        for pool in list(self._retired):
            if isinstance(pool, QueuePool) and pool.checkedin() and not pool.checkedout():
                await greenlet_spawn(pool.dispose)

    def _watch_vanished(self, engine: AsyncEngine, tenant: str) -> None:
        """A tenant database dropped, renamed or moved elsewhere: :class:`UnknownTenant`, and
        the cached route is forgotten so that the next call reads the registry again."""
        database = engine.url.database or ""
        missing = f'database "{database}" does not exist'

        def vanished(ctx: ExceptionContext) -> BaseException | None:
            if missing in str(ctx.original_exception):
                self._forget(tenant)
                return UnknownTenant(tenant, f"database {database!r} no longer exists here")
            return None

        event.listen(engine.sync_engine, "handle_error", vanished)

    async def _lookup(self, name: str) -> TenantInfo | None:
        if not self._registry_ready:
            await asyncio.to_thread(self.admin.setup)
            self._registry_ready = True
        async with self.engine.connect() as conn:
            return await conn.run_sync(registry.get, name)

    async def route(self, name: str) -> AsyncEngine:
        """The async engine, with routing options, for tenant ``name``; raises if unknown.

        The registry is read once per tenant; later calls hit a cache.
        """
        if self._retired:
            await self._sweep()
        hit = self._known.get(name)
        if hit is not None:
            key = self._keys.get(name)
            if key is not None and key in self._engines:  # keep its engine recently used
                self._engines.move_to_end(key)
            return hit
        validate_name(name, self.admin.prefix)
        info = await self._lookup(name)
        if info is None or not info.usable:
            raise UnknownTenant(name, "" if info is None else f"state is {info.state}")
        routed = self._engine_for(info.location, name).execution_options(
            **routing_options(name, info.schema)
        )
        self._known[name] = routed
        await self._evict()
        return routed

    def _forget(self, *names: str) -> None:
        for name in names:
            self._known.pop(name, None)
            self._keys.pop(name, None)

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

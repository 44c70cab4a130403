"""Async routing: the router's decisions on async engines of this facade's own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from ..core import Route, Router
from ..core.registry import Location
from ..errors import UnknownTenant
from ..strategies import DatabaseStrategy
from ..strategies.database import MAIN_SERVER
from ..strict.logins import LoginRoles
from ..tenancy import Tenancy
from .engine import Driver, make_async_engine
from .threads import in_admin_thread


class AsyncRouting:
    """Routes of an :class:`~tenantry.aio.AsyncTenancy`: async engines of the main database
    and of tenant databases (from the strategy's engine registry), cached per tenant."""

    admin: Tenancy
    engine: AsyncEngine
    driver: Driver
    router: Router[AsyncEngine]
    _engine_options: dict[str, Any]
    _registry_ready: bool

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
        :class:`~tenantry.strategies.engines.EngineRegistry` (``get_async``): one LRU and one
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

        return await roles.engines.engine_async(
            location, role, make, owner=self, on_drop=lambda: self._forget(tenant)
        )

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

    async def route(self, name: str) -> AsyncEngine:
        """The async engine, with routing options, for tenant ``name``; raises if unknown.

        The registry is read once per tenant (:meth:`Router.decide`, shared with the sync
        facade); later calls hit this facade's routes.
        """
        hit = self.router.cached(name)
        if hit is not None:
            base = await self._engine_for(hit.info.location, name)  # keeps it recently used
            if hit.engine.sync_engine.pool is base.sync_engine.pool:
                return hit.engine
            info, options = hit.info, hit.options  # its engine was evicted since: a new one
        else:
            if not self._registry_ready:
                await in_admin_thread(self.admin, self.admin.setup)
                self._registry_ready = True
            async with self.engine.connect() as conn:
                info, options = await conn.run_sync(
                    self.router.decide, name, self.admin.strict_roles
                )
            base = await self._engine_for(info.location, name)
        return self.router.remember(Route(info, options, base.execution_options(**options)))

    def _forget(self, name: str) -> None:
        self.router.forget(name)


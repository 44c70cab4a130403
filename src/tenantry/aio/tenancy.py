"""The async facade: :class:`AsyncTenancy` routes async sessions; admin work reuses Tenancy."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Literal

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from ..context import current_tenant
from ..context import use as use_context
from ..core import Router
from ..core.generation import DEFAULT_INTERVAL
from ..core.records import Where
from ..core.registry import Location, TenantInfo
from ..crosstenant.across import DEFAULT_CHUNK, TenantRow
from ..doctor import DoctorReport
from ..errors import ConfigurationError
from ..hooks import instrumentation
from ..hooks.orm import TenantSession
from ..migrations.executors import Jobs
from ..migrations.fleet import Drift
from ..migrations.results import MigrationReport, Step, TenantOutcome, TenantStatus
from ..migrations.streamconfig import StreamSource
from ..strategies.enginemetrics import EngineMetrics
from ..strict.logins import LoginSecret
from ..tenancy import Tenancy
from .domains import AsyncDomainVerbs
from .each import AsyncEachVerbs
from .engine import Driver, make_async_engine, sync_url
from .records import AsyncRecordVerbs
from .routing import AsyncRouting
from .threads import in_admin_thread
from .verbs import AsyncOperatingVerbs, AsyncRelocationVerbs, AsyncStrictVerbs, AsyncTransferVerbs


class AsyncTenancy(
    AsyncRouting, AsyncOperatingVerbs, AsyncTransferVerbs, AsyncRelocationVerbs,
    AsyncStrictVerbs, AsyncDomainVerbs, AsyncEachVerbs, AsyncRecordVerbs,
):
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
        tenant_migrations: StreamSource | None = None,
        shared_migrations: StreamSource | None = None,
        strict: bool | Literal["login"] = False,
        login_secret: str | bytes | LoginSecret | None = None,
        routing: str = "translate",
        tenant_columns: Sequence[Any] | None = None,
        refresh_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        admin_options: dict[str, Any] = {
            "tenant_columns": tenant_columns,
            "refresh_interval": refresh_interval,
            "routing": routing,
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
                    or login_secret is not None or routing != "translate" or tenant_columns
                    or refresh_interval != DEFAULT_INTERVAL):
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
        core = self.admin.core
        self.router: Router[AsyncEngine] = Router(self.admin.prefix, core.search_path)
        #: The engine of sessions and connections without a tenant.
        self.untenanted_engine = (
            self.engine.execution_options(**core.untenanted_options)
            if core.untenanted_options else self.engine
        )
        self.admin.core.store.on_change(self.router.forget)  # its own changes, sync or async
        self.admin.core.store.freshness.on_stale(self.router.clear)  # other processes' changes
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
        self.router.clear()
        await self._dispose_tenant_engines()
        if self._owns_engine:
            await self.engine.dispose()
        if self._owns_admin:
            await in_admin_thread(self.admin, self.admin.dispose)

    def session(self, tenant: str | None = None, **kwargs: Any) -> SessionOpener:
        """An :class:`~sqlalchemy.ext.asyncio.AsyncSession` for ``tenant`` (default: current).

        Use ``async with tenancy.session("acme") as s`` (closed on exit) or
        ``s = await tenancy.session("acme")``. With no tenant the session reaches shared tables
        only; a statement on a tenant table raises :class:`~tenantry.NoTenantSelected`.
        ``expire_on_commit`` defaults to ``False``, as lazy loads cannot run after a commit
        in asyncio. Its sync session is a :class:`~tenantry.TenantSession` (a
        ``sync_session_class`` given must derive from it: its hooks keep the session in its
        tenant).
        """
        sync_class = kwargs.get("sync_session_class", TenantSession)
        if not (isinstance(sync_class, type) and issubclass(sync_class, TenantSession)):
            raise ConfigurationError("sync_session_class must be TenantSession or a subclass")
        name = tenant if tenant is not None else current_tenant()
        return SessionOpener(self, name, kwargs)

    @asynccontextmanager
    async def connection(self, tenant: str | None = None) -> AsyncIterator[AsyncConnection]:
        """An :class:`~sqlalchemy.ext.asyncio.AsyncConnection` for ``tenant`` (default: current)."""
        name = tenant if tenant is not None else current_tenant()
        bind = self.untenanted_engine if name is None else await self.route(name)
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
    # Each method is the sync one of the same name and parameters (tests/core/test_parity.py);
    # route changes reach this facade through the store (``on_change``).

    async def setup(self) -> None:
        """Create tenantry's registry table if needed."""
        await in_admin_thread(self.admin, self.admin.setup)
        self._registry_ready = True

    async def list_tenants(self, *, where: Where | None = None) -> list[TenantInfo]:
        """See :meth:`Tenancy.list_tenants`."""
        return await in_admin_thread(self.admin, self.admin.list_tenants, where=where)

    async def get_tenant(self, name: str) -> TenantInfo:
        """See :meth:`Tenancy.get_tenant`."""
        return await in_admin_thread(self.admin, self.admin.get_tenant, name)

    async def tenant_exists(self, name: str) -> bool:
        """See :meth:`Tenancy.tenant_exists`."""
        return await in_admin_thread(self.admin, self.admin.tenant_exists, name)

    async def locate(self, name: str) -> Location:
        """See :meth:`Tenancy.locate`."""
        return await in_admin_thread(self.admin, self.admin.locate, name)

    async def create_tenant(self, name: str, *, strategy: str | None = None,
                            record: Mapping[str, Any] | None = None) -> TenantInfo:
        """See :meth:`Tenancy.create_tenant`."""
        return await in_admin_thread(self.admin, self.admin.create_tenant, name,
                                     strategy=strategy, record=record)

    async def drop_tenant(self, name: str, *, confirm: bool = False) -> bool:
        """See :meth:`Tenancy.drop_tenant` (needs ``confirm=True``)."""
        return await in_admin_thread(self.admin, self.admin.drop_tenant, name, confirm=confirm)

    async def rename_tenant(self, old: str, new: str) -> TenantInfo:
        """See :meth:`Tenancy.rename_tenant`."""
        return await in_admin_thread(self.admin, self.admin.rename_tenant, old, new)

    async def adopt_tenant(
        self, name: str, *, schema: str | None = None, database: str | None = None,
        server: str | None = None, rename: bool = False,
    ) -> TenantInfo:
        """See :meth:`Tenancy.adopt_tenant`."""
        return await in_admin_thread(self.admin, self.admin.adopt_tenant, name, schema=schema,
                                       database=database, server=server, rename=rename)

    async def rebuild_template(self) -> None:
        """See :meth:`Tenancy.rebuild_template`."""
        await in_admin_thread(self.admin, self.admin.rebuild_template)

    async def migrate_shared(self, target: str = "heads") -> Step | None:
        """See :meth:`Tenancy.migrate_shared`."""
        return await in_admin_thread(self.admin, self.admin.migrate_shared, target)

    async def migrate_tenant(self, name: str, target: str = "heads") -> TenantOutcome:
        """See :meth:`Tenancy.migrate_tenant`."""
        return await in_admin_thread(self.admin, self.admin.migrate_tenant, name, target)

    async def migrate_all(
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
        """See :meth:`Tenancy.migrate_all` (callbacks run in the worker thread)."""
        return await in_admin_thread(
            self.admin, self.admin.migrate_all, target, tenants, jobs=jobs, on_outcome=on_outcome,
            on_plan=on_plan, confirm=confirm, compiled=compiled, where=where,
            per_server=per_server,
        )

    async def status(self, *, where: Where | None = None) -> list[TenantStatus]:
        """See :meth:`Tenancy.status`."""
        return await in_admin_thread(self.admin, self.admin.status, where=where)

    async def drift(self) -> Drift:
        """See :meth:`Tenancy.drift`."""
        return await in_admin_thread(self.admin, self.admin.drift)

    async def migration_sql(self, name: str, target: str = "heads") -> str:
        """See :meth:`Tenancy.migration_sql`."""
        return await in_admin_thread(self.admin, self.admin.migration_sql, name, target)

    async def across(
        self,
        statement: Any,
        tenants: Sequence[str] | None = None,
        *,
        jobs: int = 1,
        chunk: int = DEFAULT_CHUNK,
        progress: Callable[[int], None] | None = None,
        where: Where | None = None,
    ) -> AsyncIterator[TenantRow]:
        """See :meth:`Tenancy.across`: the rows are read in a worker thread, a page at a time."""
        rows = self.admin.across(statement, tenants, jobs=jobs, chunk=chunk, progress=progress,
                                 where=where)
        while page := await asyncio.to_thread(_page, rows):
            for row in page:
                yield row

    def engine_metrics(self) -> EngineMetrics:
        """See :meth:`Tenancy.engine_metrics` (counters only: no I/O)."""
        return self.admin.engine_metrics()

    async def doctor(self, *, fix: bool = False, destructive: bool = False) -> DoctorReport:
        """See :meth:`Tenancy.doctor`."""
        return await in_admin_thread(self.admin, self.admin.doctor, fix=fix,
                                     destructive=destructive)


#: Tenancy methods without an async counterpart, and why.
SYNC_ONLY = {
    "admin_session": "routes each statement to a sync engine of its tenant; run admin work "
                     "in a thread (asyncio.to_thread) with Tenancy.admin_session",
    "admin_connection": "as admin_session: per-statement routing on a sync connection",
    "config": "the recipe is the sync Tenancy's: AsyncTenancy.admin.config()",
}

#: Rows :meth:`AsyncTenancy.across` takes from the sync iterator per trip to its thread.
PAGE = 500


def _page(rows: Iterator[TenantRow]) -> list[TenantRow]:
    return list(itertools.islice(rows, PAGE))


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
        bind = (self._tenancy.untenanted_engine if name is None
                else await self._tenancy.route(name))
        info = dict(kwargs.pop("info", None) or {}, tenantry_tenant=name)
        kwargs.setdefault("expire_on_commit", False)
        kwargs.setdefault("sync_session_class", TenantSession)
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

"""The async counterparts of the facade's verb groups (:mod:`tenantry.facade`): each runs
the sync verb of the same name in a worker thread."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..core import Router
from ..core.events import Hook, When
from ..core.history import HistoryEntry
from ..core.registry import TenantInfo
from ..tenancy import Tenancy
from ..transfer import Manifest, Progress
from .threads import in_admin_thread


class AsyncTransferVerbs:
    """See :class:`tenantry.facade.TransferVerbs`."""

    admin: Tenancy

    async def export_tenant(
        self, name: str, dest: str | Path, *, pg_dump: bool = False,
        progress: Progress | None = None,
    ) -> Manifest:
        """See :meth:`Tenancy.export_tenant`."""
        return await in_admin_thread(
            self.admin, self.admin.export_tenant, name, dest, pg_dump=pg_dump, progress=progress
        )

    async def import_tenant(
        self, src: str | Path, as_name: str, *, replace: bool = False, upgrade: bool = True,
        progress: Progress | None = None,
    ) -> TenantInfo:
        """See :meth:`Tenancy.import_tenant` (``replace=True`` is the confirmation)."""
        return await in_admin_thread(
            self.admin, self.admin.import_tenant, src, as_name, replace=replace, upgrade=upgrade,
            progress=progress,
        )


class AsyncRelocationVerbs:
    """See :class:`tenantry.facade.RelocationVerbs`."""

    admin: Tenancy

    async def move_tenant(
        self, name: str, to: str, *, lock_timeout: str = "30s", online: bool | None = None
    ) -> TenantInfo:
        """See :meth:`Tenancy.move_tenant` (database strategy)."""
        return await in_admin_thread(
            self.admin, self.admin.move_tenant, name, to, lock_timeout=lock_timeout, online=online
        )

    async def promote_tenant(
        self, name: str, *, to_server: str | None = None, drop_foreign_keys: bool = False,
        lock_timeout: str = "30s", online: bool | None = None,
    ) -> TenantInfo:
        """See :meth:`Tenancy.promote_tenant` (hybrid strategy)."""
        return await in_admin_thread(
            self.admin, self.admin.promote_tenant, name, to_server=to_server,
            drop_foreign_keys=drop_foreign_keys, lock_timeout=lock_timeout, online=online,
        )

    async def demote_tenant(
        self, name: str, *, lock_timeout: str = "30s", online: bool | None = None
    ) -> TenantInfo:
        """See :meth:`Tenancy.demote_tenant` (hybrid strategy)."""
        return await in_admin_thread(
            self.admin, self.admin.demote_tenant, name, lock_timeout=lock_timeout, online=online
        )


class AsyncStrictVerbs:
    """See :class:`tenantry.facade.StrictVerbs`."""

    admin: Tenancy
    router: Router[AsyncEngine]

    async def grant_shared(self, *tables: sa.Table | str, write: bool = False) -> None:
        """See :meth:`Tenancy.grant_shared`."""
        await in_admin_thread(self.admin, self.admin.grant_shared, *tables, write=write)

    async def revoke_shared(self, *tables: sa.Table | str) -> None:
        """See :meth:`Tenancy.revoke_shared`."""
        await in_admin_thread(self.admin, self.admin.revoke_shared, *tables)

    async def tenant_role(self, name: str) -> str:
        """See :meth:`Tenancy.tenant_role`."""
        return await in_admin_thread(self.admin, self.admin.tenant_role, name)

    async def enable_strict(self) -> None:
        """See :meth:`Tenancy.enable_strict`."""
        await in_admin_thread(self.admin, self.admin.enable_strict)
        self.router.clear()

    async def reset_logins(self, tenants: Sequence[str] | None = None) -> int:
        """See :meth:`Tenancy.reset_logins`."""
        return await in_admin_thread(self.admin, self.admin.reset_logins, tenants)


class AsyncOperatingVerbs:
    """See :class:`tenantry.facade.OperatingVerbs`."""

    admin: Tenancy

    def on(
        self, event: str, hook: Hook | None = None, *, when: When = "after"
    ) -> Callable[..., object]:
        """See :meth:`Tenancy.on` (no I/O; after-hooks may be coroutine functions)."""
        return self.admin.on(event, hook, when=when)

    async def history(self, name: str | None = None, *, limit: int = 100) -> list[HistoryEntry]:
        """See :meth:`Tenancy.history`."""
        return await in_admin_thread(self.admin, self.admin.history, name, limit=limit)

    async def suspend_tenant(self, name: str, *, reason: str | None = None) -> TenantInfo:
        """See :meth:`Tenancy.suspend_tenant`."""
        return await in_admin_thread(self.admin, self.admin.suspend_tenant, name, reason=reason)

    async def resume_tenant(self, name: str) -> TenantInfo:
        """See :meth:`Tenancy.resume_tenant`."""
        return await in_admin_thread(self.admin, self.admin.resume_tenant, name)

"""The async counterpart of :class:`tenantry.facade.records.RecordVerbs`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..core.registry import TenantInfo
from ..tenancy import Tenancy
from .threads import in_admin_thread


class AsyncRecordVerbs:
    """See :class:`tenantry.facade.records.RecordVerbs`."""

    admin: Tenancy

    @property
    def records(self) -> sa.Table:
        """See :attr:`Tenancy.records` (no I/O)."""
        return self.admin.records

    async def update_tenant(self, name: str, /, **values: Any) -> TenantInfo:
        """See :meth:`Tenancy.update_tenant`."""
        return await in_admin_thread(self.admin, self.admin.update_tenant, name, **values)

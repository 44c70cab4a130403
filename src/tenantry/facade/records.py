"""The tenant record (the application's columns of each tenant), as :class:`~tenantry.Tenancy`
names it: docs/records.md."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..core import Core
from ..core.registry import TenantInfo
from ..errors import NotConfiguredFor, UnknownTenant
from ..names import validate_name


class RecordVerbs:
    """The record table and changing a tenant's record (:mod:`tenantry.core.records`)."""

    core: Core

    @property
    def records(self) -> sa.Table:
        """The record table ``public.tenant_records`` (``name`` and the ``tenant_columns``),
        for ``where=`` expressions (``tenancy.records.c.plan == "pro"``) and joins of the
        application's own queries. :class:`~tenantry.NotConfiguredFor` without
        ``tenant_columns``."""
        if self.core.records is None:
            raise NotConfiguredFor("no tenant records: Tenancy(..., tenant_columns=[...])")
        return self.core.records.table

    def update_tenant(self, name: str, /, **values: Any) -> TenantInfo:
        """Set fields of tenant ``name``'s record (``update_tenant("acme", plan="pro")``);
        the others keep their values. Under the tenant's lock, in one transaction; returns the
        registry row with the record. :class:`~tenantry.UnknownRecordField` for a field that
        is not declared, :class:`~tenantry.InvalidRecord` for a value its column refuses."""
        validate_name(name, self.core.prefix)
        with self.core.store.work([name]) as work:
            if work.row(name) is None:
                raise UnknownTenant(name)
            return work.set_record(name, values)

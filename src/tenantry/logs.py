"""Logging support: put the current tenant on every log record.

    handler.addFilter(tenantry.TenantFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s [%(tenant)s] %(message)s"))

tenantry's own provisioning and migration records pass the tenant they act on explicitly
(``extra={"tenant": ...}``); the filter leaves those alone and fills in the others from the
current tenant (:func:`tenantry.current_tenant`), or ``default`` when none is selected.
"""

from __future__ import annotations

import logging

from .context import current_tenant


class TenantFilter(logging.Filter):
    """Adds ``record.tenant``: the tenant the record is about, or the current one."""

    def __init__(self, default: str = "-", name: str = "") -> None:
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "tenant", None) is None:
            record.tenant = current_tenant() or self.default
        return True

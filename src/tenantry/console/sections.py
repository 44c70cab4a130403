"""The sections of a tenant's page, in order: each names its template and what it shows.

A new section (the application's record of the tenant, its domains...) is one more
:class:`Section` in :data:`SECTIONS`, with a template in ``templates/sections/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.registry import TenantInfo
from ..tenancy import Tenancy
from .fleet import head_of, servers_of
from .sizes import human, sizes


@dataclass(frozen=True)
class Section:
    """One section of the tenant page: ``load(tenancy, info)`` gives its template's values."""

    title: str
    template: str  # under templates/sections/
    load: Callable[[Tenancy, TenantInfo], Mapping[str, Any]]


def registry_values(tenancy: Tenancy, info: TenantInfo) -> Mapping[str, Any]:
    """Where the tenant lives and its revision against the head."""
    server = info.location.server
    if server is None and info.location.database is not None:
        server = "main"
    return {
        "server": server,
        "server_url": servers_of(tenancy).get(server or "main"),
        "head": head_of(tenancy),
    }


def storage_values(tenancy: Tenancy, info: TenantInfo) -> Mapping[str, Any]:
    """The tenant's size on disk."""
    kind = ("its schema's tables, with indexes and TOAST" if info.location.database is None
            else "its database")
    return {"size": human(sizes(tenancy, [info])[info.name]), "measured": kind}


def history_values(tenancy: Tenancy, info: TenantInfo) -> Mapping[str, Any]:
    """What the registry remembers (created, last changed, last error, suspension reason) and
    the tenant's latest lifecycle events (:meth:`~tenantry.Tenancy.history`)."""
    return {"events": tenancy.history(info.name, limit=HISTORY_SHOWN)}


def record_values(tenancy: Tenancy, info: TenantInfo) -> Mapping[str, Any]:
    """The application's fields of the tenant (``tenant_columns``), in declared order."""
    records = tenancy.core.records
    fields = list(records.fields) if records is not None else []
    return {"fields": [(f, info.record.get(f)) for f in fields]}


def domain_values(tenancy: Tenancy, info: TenantInfo) -> Mapping[str, Any]:
    """The tenant's domains, the primary first."""
    found = sorted(tenancy.domains(info.name), key=lambda d: (not d.primary, d.domain))
    return {"domains": found}


#: Lifecycle events shown on a tenant's page (newest first).
HISTORY_SHOWN = 20


#: The tenant page's sections, top to bottom.
SECTIONS: list[Section] = [
    Section("Registry", "registry.html", registry_values),
    Section("Record", "record.html", record_values),
    Section("Storage", "storage.html", storage_values),
    Section("Domains", "domains.html", domain_values),
    Section("History", "history.html", history_values),
]


@dataclass(frozen=True)
class Shown:
    """A section ready to render."""

    title: str
    template: str
    values: Mapping[str, Any]


def shown(tenancy: Tenancy, info: TenantInfo) -> list[Shown]:
    """Every section of ``info``'s page with its values."""
    return [Shown(s.title, f"sections/{s.template}", s.load(tenancy, info)) for s in SECTIONS]

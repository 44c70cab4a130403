"""Changing tenants' domains: each change one transaction holding the tenant's lock, moving
the registry's generation (other processes forget their cached hosts within a second) and
clearing this process's :class:`~tenantry.domains.DomainMap` once committed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from ..core import generation, registry
from ..core.store import TenantStore
from ..errors import DomainTaken, UnknownDomain, UnknownTenant
from . import table
from .hostmap import DomainMap
from .names import normalise_domain
from .table import Domain

#: How often a removal follows a domain whose tenant was renamed meanwhile.
_RENAME_RETRIES = 5


class DomainChanges:
    """The domain verbs on one store, keeping ``hosts`` current."""

    def __init__(self, store: TenantStore, hosts: DomainMap) -> None:
        self.store = store
        self.hosts = hosts

    @contextmanager
    def _change(self, tenant: str) -> Iterator[Connection]:
        """A transaction holding ``tenant``'s lock (:class:`UnknownTenant` if it is not
        registered); the cached hosts are forgotten once it ends."""
        try:
            with self.store.work([tenant]) as work:
                if work.row(tenant) is None:
                    raise UnknownTenant(tenant)
                yield work.main
        finally:
            self.hosts.clear()

    def add(self, tenant: str, domain: str, primary: bool = False) -> str:
        """Give ``domain`` to ``tenant``; see :meth:`tenantry.Tenancy.add_domain`."""
        name = normalise_domain(domain)
        with self._change(tenant) as conn:
            added = table.insert_new(conn, tenant, name)
            if not added:
                holder = table.owner(conn, name)
                if holder != tenant:
                    raise DomainTaken(name, holder or "?")
            current = table.primary(conn, tenant)
            if current is None or (primary and current != name):
                table.make_primary(conn, tenant, name)
            elif not added:
                return name  # nothing changed: nobody needs to hear of it
            generation.bump(conn)
        return name

    def remove(self, domain: str) -> bool:
        """Take ``domain`` from its tenant; see :meth:`tenantry.Tenancy.remove_domain`."""
        name = normalise_domain(domain)
        for _ in range(_RENAME_RETRIES):
            with self.store.begin() as conn:
                tenant = table.owner(conn, name)
            if tenant is None:
                return False
            try:
                with self._change(tenant) as conn:
                    if table.owner(conn, name) != tenant:
                        continue  # removed, or its tenant renamed, while we took the lock
                    removed = table.delete(conn, name)
                    if removed is not None and removed.primary:
                        table.promote_oldest(conn, tenant)
                    generation.bump(conn)
                    return True
            except UnknownTenant:
                continue  # renamed or dropped while we took the lock
        with self.store.begin() as conn:
            if table.owner(conn, name) is None:
                return False
        raise RuntimeError(f"domain {name!r} kept changing tenant while being removed")

    def set_primary(self, tenant: str, domain: str) -> None:
        """See :meth:`tenantry.Tenancy.set_primary_domain`."""
        name = normalise_domain(domain)
        with self._change(tenant) as conn:
            found = table.get(conn, name)
            if found is None or found.tenant != tenant:
                raise UnknownDomain(name, tenant)
            if not found.primary:
                table.make_primary(conn, tenant, name)
                generation.bump(conn)

    def listed(self, tenant: str | None = None) -> list[Domain]:
        """See :meth:`tenantry.Tenancy.domains`."""
        with self.store.begin() as conn:
            if tenant is not None and registry.get(conn, tenant) is None:
                raise UnknownTenant(tenant)
            return table.listed(conn, tenant)

    def primary(self, tenant: str) -> str | None:
        """See :meth:`tenantry.Tenancy.primary_domain`."""
        with self.store.begin() as conn:
            if registry.get(conn, tenant) is None:
                raise UnknownTenant(tenant)
            return table.primary(conn, tenant)

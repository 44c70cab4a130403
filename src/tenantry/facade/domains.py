"""Tenants' domains, as :class:`~tenantry.Tenancy` names them."""

from __future__ import annotations

import threading

from ..core import Core
from ..domains import Domain, DomainChanges, DomainMap

_making = threading.Lock()


class DomainVerbs:
    """Domains of tenants and the host -> tenant lookup (:mod:`tenantry.domains`)."""

    core: Core
    _domain_changes: DomainChanges

    @property
    def domain_map(self) -> DomainMap:
        """This Tenancy's host -> tenant cache (what :meth:`tenant_for_host` reads)."""
        return self._domains().hosts

    def _domains(self) -> DomainChanges:
        try:
            return self._domain_changes
        except AttributeError:
            with _making:
                if not hasattr(self, "_domain_changes"):
                    store = self.core.store
                    self._domain_changes = DomainChanges(store, DomainMap(store))
            return self._domain_changes

    def add_domain(self, tenant: str, domain: str, *, primary: bool = False) -> str:
        """Give ``domain`` to ``tenant``; returns its stored form (lowercase ASCII, punycode
        for international names). A tenant's first domain becomes its primary, as does one
        added with ``primary=True``. Adding a domain the tenant has is a no-op (but may make
        it primary); one another tenant has raises :class:`~tenantry.DomainTaken`, a bad one
        :class:`~tenantry.InvalidDomain`."""
        return self._domains().add(tenant, domain, primary)

    def remove_domain(self, domain: str) -> bool:
        """Take ``domain`` from its tenant; ``False`` if no tenant had it. Removing the
        primary makes the tenant's oldest remaining domain primary."""
        return self._domains().remove(domain)

    def set_primary_domain(self, tenant: str, domain: str) -> None:
        """Make ``domain`` the primary of ``tenant``; :class:`~tenantry.UnknownDomain` if it
        is not one of its domains."""
        self._domains().set_primary(tenant, domain)

    def domains(self, tenant: str | None = None) -> list[Domain]:
        """The domains of ``tenant`` (default: of every tenant), primary first."""
        return self._domains().listed(tenant)

    def primary_domain(self, tenant: str) -> str | None:
        """The primary domain of ``tenant``, or ``None`` if it has no domain."""
        return self._domains().primary(tenant)

    def tenant_for_host(self, host: str) -> str | None:
        """The tenant owning domain ``host`` (a host name, without port), or ``None``.

        Answers come from :attr:`domain_map` (changes made by other processes are seen
        within a second)."""
        return self._domains().hosts.tenant_of(host)

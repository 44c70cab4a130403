"""The async counterparts of :class:`tenantry.facade.DomainVerbs`: each runs the sync verb
of the same name in a worker thread."""

from __future__ import annotations

from ..domains import Domain
from ..tenancy import Tenancy
from .threads import in_admin_thread


class AsyncDomainVerbs:
    """See :class:`tenantry.facade.DomainVerbs`."""

    admin: Tenancy

    async def add_domain(self, tenant: str, domain: str, *, primary: bool = False) -> str:
        """See :meth:`Tenancy.add_domain`."""
        return await in_admin_thread(self.admin, self.admin.add_domain, tenant, domain,
                                     primary=primary)

    async def remove_domain(self, domain: str) -> bool:
        """See :meth:`Tenancy.remove_domain`."""
        return await in_admin_thread(self.admin, self.admin.remove_domain, domain)

    async def set_primary_domain(self, tenant: str, domain: str) -> None:
        """See :meth:`Tenancy.set_primary_domain`."""
        await in_admin_thread(self.admin, self.admin.set_primary_domain, tenant, domain)

    async def domains(self, tenant: str | None = None) -> list[Domain]:
        """See :meth:`Tenancy.domains`."""
        return await in_admin_thread(self.admin, self.admin.domains, tenant)

    async def primary_domain(self, tenant: str) -> str | None:
        """See :meth:`Tenancy.primary_domain`."""
        return await in_admin_thread(self.admin, self.admin.primary_domain, tenant)

    async def tenant_for_host(self, host: str) -> str | None:
        """See :meth:`Tenancy.tenant_for_host` (the same cache as ``self.admin``'s)."""
        return await in_admin_thread(self.admin, self.admin.tenant_for_host, host)

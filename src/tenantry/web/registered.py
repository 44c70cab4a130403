"""A resolver finding the tenant of a request among the domains tenants registered
(:meth:`tenantry.Tenancy.add_domain`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..tenancy import Tenancy
from .resolvers import RequestView, Resolver

if TYPE_CHECKING:
    from ..aio import AsyncTenancy


def domains(tenancy: Tenancy | AsyncTenancy) -> Resolver:
    """The tenant whose registered domain is the request's host (``None`` for any other
    host: never another tenant's).

    Answers come from the Tenancy's :class:`~tenantry.domains.DomainMap` (an
    :class:`~tenantry.aio.AsyncTenancy`'s admin Tenancy's): a host not seen lately costs one
    indexed query (in the request's thread, or on the event loop under ASGI), and changes made
    by other processes are seen within a second.
    """
    hosts = (tenancy if isinstance(tenancy, Tenancy) else tenancy.admin).domain_map

    def resolve(request: RequestView) -> str | None:
        return hosts.tenant_of(request.host)

    return resolve

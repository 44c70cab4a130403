"""Tenants' domains: any number per tenant, one primary, unique across tenants, stored in the
main database; :class:`DomainMap` finds the tenant of a host (docs/domains.md)."""

from .changes import DomainChanges
from .hostmap import DEFAULT_SIZE, DomainMap
from .names import normalise_domain
from .table import Domain

__all__ = ["DEFAULT_SIZE", "Domain", "DomainChanges", "DomainMap", "normalise_domain"]

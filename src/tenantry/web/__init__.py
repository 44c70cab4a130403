"""Web integration: ASGI and WSGI middleware that select the tenant of each request.

``tenantry.web.dependencies`` holds FastAPI dependencies (needs the ``fastapi`` extra).
"""

from ..errors import AmbiguousRequest
from .asgi import TenantMiddleware
from .registered import domains
from .rejections import AMBIGUOUS_TENANT, MISSING_TENANT, SUSPENDED_TENANT, UNKNOWN_TENANT, Reject
from .resolvers import (
    RequestView,
    Resolution,
    Resolver,
    bearer_claim,
    header,
    host_map,
    path_prefix,
    subdomain,
)
from .wsgi import WSGITenantMiddleware

__all__ = [
    "AMBIGUOUS_TENANT",
    "MISSING_TENANT",
    "SUSPENDED_TENANT",
    "UNKNOWN_TENANT",
    "AmbiguousRequest",
    "Reject",
    "RequestView",
    "Resolution",
    "Resolver",
    "TenantMiddleware",
    "WSGITenantMiddleware",
    "bearer_claim",
    "domains",
    "header",
    "host_map",
    "path_prefix",
    "subdomain",
]

"""Web integration: ASGI and WSGI middleware that select the tenant of each request.

``tenantry.web.dependencies`` holds FastAPI dependencies (needs the ``fastapi`` extra).
"""

from .asgi import TenantMiddleware
from .rejections import MISSING_TENANT, UNKNOWN_TENANT, Reject
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
    "MISSING_TENANT",
    "UNKNOWN_TENANT",
    "Reject",
    "RequestView",
    "Resolution",
    "Resolver",
    "TenantMiddleware",
    "WSGITenantMiddleware",
    "bearer_claim",
    "header",
    "host_map",
    "path_prefix",
    "subdomain",
]

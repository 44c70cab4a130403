"""The core every front door shares: the tenant store, the router and the configured parts."""

from .base import Core, HasCore, core_of
from .options import make_engine
from .router import Route, Router
from .store import TenantStore, TenantWork

__all__ = [
    "Core", "HasCore", "Route", "Router", "TenantStore", "TenantWork", "core_of", "make_engine",
]

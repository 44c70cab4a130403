"""Isolation strategies: where a tenant's tables live and how storage is made and removed."""

from .base import Strategy, routing_options
from .database import DatabaseStrategy, Placement, fewest_tenants
from .schema import SchemaStrategy

__all__ = ["SchemaStrategy", "Strategy", "routing_options"]
__all__ += ["DatabaseStrategy", "Placement", "fewest_tenants"]

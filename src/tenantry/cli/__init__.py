"""The ``tenantry`` command line: provision, list, migrate and inspect tenants."""

from __future__ import annotations

from .application import app, main

__all__ = ["app", "main"]

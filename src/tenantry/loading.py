"""Import the object a ``module:attribute`` spec names (``--app``, the ``tenantry_app`` option)."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigurationError


def import_spec(spec: str, option: str) -> Any:
    """The object ``module:attribute`` names; ``option`` names the setting in errors."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"{option} wants 'module:attribute', not {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load {option} {spec!r}: {exc}") from exc

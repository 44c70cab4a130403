"""Cache keys namespaced by tenant: ``tenant_key("x")`` is ``"tenant:acme:x"`` under tenant
``acme``, so one Redis or Memcached serves every tenant without one reading another's entries.
"""

from __future__ import annotations

from .context import current_tenant
from .errors import ConfigurationError, NoTenantSelected
from .names import check_syntax

#: What every tenant's keys start with (then the tenant name and ``:``).
PREFIX = "tenant:"


def tenant_key(key: str, *, tenant: str | None = None) -> str:
    """``key`` in the namespace of ``tenant`` (default: the current tenant; none selected:
    :class:`~tenantry.NoTenantSelected`): ``"tenant:<name>:<key>"``.

    Unambiguous: a tenant name has no ``:`` (letters, digits, ``_``), so the tenant ends at the
    second ``:`` and ``key`` may hold anything, ``:`` included. Nor does a name hold a glob
    character: ``tenant_key("*")`` is a pattern matching all of the tenant's keys (Redis
    ``SCAN MATCH``).
    """
    if not isinstance(key, str):
        raise ConfigurationError(f"a cache key is a string, not {type(key).__name__}")
    name = tenant if tenant is not None else current_tenant()
    if name is None:
        raise NoTenantSelected()
    return f"{PREFIX}{check_syntax(name)}:{key}"

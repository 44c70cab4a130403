"""Which tenant a host name belongs to, remembered: a bounded cache over the domain table.

Each process keeps its own :class:`DomainMap`. Changes made here clear it at once; changes
made by other processes move the registry's generation (:mod:`tenantry.core.generation`),
which this process re-reads at most once per interval (a second by default) and then clears
it. Hosts that belong to no tenant are remembered too, so unknown hosts cost one query each
until the cache forgets them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..core.store import TenantStore
from ..errors import InvalidDomain
from . import table
from .names import normalise_domain

#: Hosts a map remembers by default (least recently used forgotten first).
DEFAULT_SIZE = 10_000


class DomainMap:
    """Host -> tenant (or ``None``), the ``size`` most recently asked hosts kept; thread-safe.

    :attr:`tenantry.Tenancy.domain_map` is the one its verbs keep current.
    """

    def __init__(self, store: TenantStore, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("a DomainMap needs room for at least one host")
        self.store = store
        self.size = size
        self._hosts: OrderedDict[str, str | None] = OrderedDict()
        self._by_tenant: dict[str, set[str]] = {}
        self._epoch = 0  # moved by each clear: an answer read before one is not kept
        self._lock = threading.Lock()
        store.freshness.on_stale(self.clear)  # another process changed the registry
        store.on_change(self.forget_tenant)  # this one dropped or renamed a tenant

    def __len__(self) -> int:
        return len(self._hosts)

    def tenant_of(self, host: str) -> str | None:
        """The tenant owning domain ``host`` (a host name, without port), or ``None``."""
        freshness = self.store.freshness
        if freshness.due():
            freshness.check()
        with self._lock:
            if host in self._hosts:
                self._hosts.move_to_end(host)
                return self._hosts[host]
            epoch = self._epoch
        tenant = self._read(host)
        with self._lock:
            if epoch == self._epoch:  # no change since the read: the answer still holds
                self._remember(host, tenant)
        return tenant

    def _read(self, host: str) -> str | None:
        try:
            domain = normalise_domain(host)
        except InvalidDomain:
            return None
        with self.store.begin() as conn:
            return table.owner(conn, domain)

    def _remember(self, host: str, tenant: str | None) -> None:
        self._hosts[host] = tenant
        if tenant is not None:
            self._by_tenant.setdefault(tenant, set()).add(host)
        while len(self._hosts) > self.size:
            old, owner = self._hosts.popitem(last=False)
            if owner is not None:
                self._unlink(old, owner)

    def _unlink(self, host: str, tenant: str) -> None:
        hosts = self._by_tenant.get(tenant)
        if hosts is not None:
            hosts.discard(host)
            if not hosts:
                del self._by_tenant[tenant]

    def clear(self) -> None:
        """Forget every host (after a change of domains)."""
        with self._lock:
            self._hosts.clear()
            self._by_tenant.clear()
            self._epoch += 1

    def forget_tenant(self, tenant: str) -> None:
        """Forget the hosts of ``tenant`` (it was dropped or renamed)."""
        with self._lock:
            self._epoch += 1
            for host in self._by_tenant.pop(tenant, ()):
                self._hosts.pop(host, None)

"""The router: which tenant goes where, with which options, remembered per tenant.

Sync and async facades share the decision (:meth:`Router.decide`: the registry row, the
routing options, the strict-mode role) and each keeps its own routes, built on engines of
its own kind.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

from ..errors import TenantSuspended, UnknownTenant
from ..names import validate_name
from ..strategies import routing_options
from ..strict.logins import LOGIN_OPTION, LoginRoles
from ..strict.rolenames import ROLE_OPTION
from ..strict.roles import StrictRoles
from . import registry
from .registry import TenantInfo

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Route(Generic[E]):
    """A tenant's registry row, its execution options and the engine carrying them."""

    info: TenantInfo
    options: dict[str, Any]
    engine: E


class Router(Generic[E]):
    """Routes of one facade, by tenant name; thread-safe."""

    def __init__(self, prefix: str, search_path: bool = False) -> None:
        self.prefix = prefix
        #: ``routing="search_path"``: routes put the tenant's schema on the ``search_path``.
        self.search_path = search_path
        self._routes: dict[str, Route[E]] = {}
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self._routes

    def cached(self, name: str) -> Route[E] | None:
        return self._routes.get(name)

    def remember(self, route: Route[E]) -> E:
        with self._lock:
            self._routes[route.info.name] = route
        return route.engine

    def forget(self, name: str) -> None:
        with self._lock:
            self._routes.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()

    def decide(
        self, conn: Connection, name: str, roles: StrictRoles | None
    ) -> tuple[TenantInfo, dict[str, Any]]:
        """Tenant ``name``'s row and the execution options of its route, read on ``conn``.

        :class:`UnknownTenant` if it is not registered or not usable, :class:`TenantSuspended`
        if it is suspended.
        """
        validate_name(name, self.prefix)
        info = registry.get(conn, name)
        if info is not None and info.state is registry.State.SUSPENDED:
            raise TenantSuspended(name, info.reason)
        if info is None or not info.usable:
            raise UnknownTenant(name, "" if info is None else f"state is {info.state}")
        options = routing_options(name, info.schema, self.search_path)
        if isinstance(roles, LoginRoles):
            options[LOGIN_OPTION] = roles.engines.role(info.location)
        elif roles is not None:
            options[ROLE_OPTION] = roles.role(conn, info.location)
        return info, options

"""Hybrid placement: each tenant is a schema of the main database or a database of its own.

The registry row says which (``strategy`` is ``schema`` or ``database``; a schema tenant has no
``database``). Both kinds keep their tables in schema ``<prefix><name>``, so routing
(``schema_translate_map``) and migrations are identical; only the engine differs. Tenants move
between the kinds with :meth:`tenantry.Tenancy.promote_tenant` / ``demote_tenant``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..core import registry
from ..core.registry import Location
from ..errors import ConfigurationError
from ..hooks import instrumentation
from ..names import identifier
from .database import DatabaseStrategy
from .schema import SchemaStrategy

SCHEMA, DATABASE = SchemaStrategy.kind, DatabaseStrategy.kind
KINDS = (SCHEMA, DATABASE)


def kind_of(location: Location) -> str:
    """``schema`` for a tenant in the main database, ``database`` for one with its own."""
    return SCHEMA if location.database is None else DATABASE


class HybridStrategy(DatabaseStrategy):
    """Schema tenants in the main database next to database tenants on configured servers.

    ``default_kind`` (``schema`` or ``database``) is where :meth:`locate` puts new
    tenants; ``Tenancy.create_tenant(name, strategy=...)`` chooses per tenant. Every other
    operation dispatches on the tenant's :class:`~tenantry.core.registry.Location`.
    """

    kind = "hybrid"

    def __init__(
        self, main: Engine, prefix: str, *, default_kind: str = SCHEMA, **options: Any
    ) -> None:
        super().__init__(main, prefix, **options)
        if default_kind not in KINDS:
            raise ConfigurationError(
                f"unknown strategy {default_kind!r}; choose one of {list(KINDS)}"
            )
        self.default_kind = default_kind
        self.schemas = SchemaStrategy(main, prefix)
        instrumentation.instrument(main)  # before our hook: it sees the guard's UnknownTenant
        event.listen(main, "handle_error", self._vanished)  # schema tenants promoted elsewhere

    def load(self, main: Connection) -> dict[str, int]:
        """Number of database tenants per configured server (schema tenants not counted)."""
        t = registry.tenants
        rows = main.execute(
            sa.select(t.c.server, sa.func.count())
            .where(t.c.strategy == DATABASE)
            .group_by(t.c.server)
        )
        counts = {server: int(n) for server, n in rows}
        return {server: counts.get(server, 0) for server in self.servers}

    def locate(self, name: str, main: Connection) -> Location:
        return self.locate_as(name, main, self.default_kind)

    def locate_as(self, name: str, main: Connection, kind: str) -> Location:
        """Where a new tenant ``name`` lives as a ``schema`` or ``database`` tenant."""
        if kind == SCHEMA:
            return Location(schema=identifier(name, self.prefix))
        if kind == DATABASE:
            return super().locate(name, main)
        raise ConfigurationError(
            f"unknown strategy {kind!r} for tenant {name!r}; choose one of "
            f"{list(KINDS)}"
        )

    def renamed(self, location: Location, new_name: str) -> Location:
        if location.database is None:
            return self.schemas.renamed(location, new_name)
        return super().renamed(location, new_name)

    def engine(self, location: Location) -> Engine:
        if location.database is None:
            return self.main
        return super().engine(location)

    @contextmanager
    def storage(
        self, main: Connection, tenant: str, location: Location, *, create: bool = False
    ) -> Iterator[Connection]:
        if location.database is None:
            with self.schemas.storage(main, tenant, location, create=create) as conn:
                yield conn
        else:
            with super().storage(main, tenant, location, create=create) as conn:
                yield conn

    def exists(self, main: Connection, location: Location) -> bool:
        if location.database is None:
            return self.schemas.exists(main, location)
        return super().exists(main, location)

    def drop(self, main: Connection, location: Location) -> None:
        if location.database is None:
            self.schemas.drop(main, location)
        else:
            super().drop(main, location)

    def rename(
        self,
        main: Connection,
        old: Location,
        new: Location,
        step: Callable[[str], None] | None = None,
    ) -> None:
        if old.database is None:
            self.schemas.rename(main, old, new, step)
        else:
            super().rename(main, old, new, step)

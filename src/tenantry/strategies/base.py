"""The interface every isolation strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..core.registry import Location
from ..models import TENANT_SCHEMA
from ..names import identifier, quote

#: Execution option of ``routing="search_path"``: the schema each transaction puts first on
#: its ``search_path`` (:data:`NO_TENANT`: a connection without a tenant, whose statements on
#: unqualified tables are stopped).
SEARCH_PATH_OPTION = "tenantry_search_path"
NO_TENANT = ""
#: The two routing modes: placeholder schema translated per statement, or ``search_path``.
ROUTING_MODES = ("translate", "search_path")


def routing_options(tenant: str, schema: str, search_path: bool = False) -> dict[str, Any]:
    """Execution options that route tenant tables to ``schema`` and tag the tenant; with
    ``search_path``, unqualified tables too (``SET LOCAL search_path`` per transaction)."""
    options: dict[str, Any] = {
        "schema_translate_map": {TENANT_SCHEMA: schema}, "tenantry_tenant": tenant,
    }
    if search_path:
        options[SEARCH_PATH_OPTION] = schema
    return options


def routed(conn: Connection, name: str, location: Location) -> Connection:
    """``conn`` (same transaction) with tenant ``name``'s tables routed to ``location``'s
    schema: what inside hooks get (on the main database's connection, a tenant of another
    database has no tables to route: shared tables only)."""
    if location.database is not None and conn.engine.url.database != location.database:
        return conn
    return conn.execution_options(**routing_options(name, location.schema))


def set_search_path(conn: Connection, schema: str) -> None:
    """Put only ``schema`` on the search path for the rest of the current transaction.

    Alembic operations (``op.add_column``, ``op.execute``) do not go through
    ``schema_translate_map``; this makes them land in the tenant's schema.
    """
    conn.exec_driver_sql(f"SET LOCAL search_path TO {quote(schema)}")


class Strategy(ABC):
    """Where tenants live, and how their storage is created, renamed and dropped.

    Strategies do no registry bookkeeping and take no locks: :class:`~tenantry.Tenancy` does,
    on a transaction of the main database that it passes in as ``main``.
    """

    kind: ClassVar[str]

    def __init__(self, main: Engine, prefix: str) -> None:
        self.main = main
        self.prefix = prefix

    def locate(self, name: str, main: Connection) -> Location:
        """Where a new tenant ``name`` will live."""
        return Location(schema=identifier(name, self.prefix))

    def renamed(self, location: Location, new_name: str) -> Location:
        """Where a tenant at ``location`` lives once renamed to ``new_name``."""
        return replace(location, schema=identifier(new_name, self.prefix))

    @abstractmethod
    def engine(self, location: Location) -> Engine:
        """The engine that reaches ``location``'s database (no routing options applied)."""

    @abstractmethod
    def storage(
        self, main: Connection, tenant: str, location: Location, *, create: bool = False
    ) -> AbstractContextManager[Connection]:
        """A connection in a transaction on ``location``, its schema alone on the search path.

        With ``create=True`` the storage is created first. The work done on the connection
        commits or rolls back together with ``main`` as far as the strategy allows.
        """

    @abstractmethod
    def exists(self, main: Connection, location: Location) -> bool:
        """Whether the storage at ``location`` exists."""

    @abstractmethod
    def drop(self, main: Connection, location: Location) -> None:
        """Remove the storage at ``location`` and everything in it."""

    @abstractmethod
    def rename(
        self,
        main: Connection,
        old: Location,
        new: Location,
        step: Callable[[str], None] | None = None,
    ) -> None:
        """Move the storage at ``old`` to ``new``; ``step`` is told of each step that commits
        on its own (none when it all commits with ``main``)."""

    def dispose(self) -> None:  # noqa: B027 - optional hook
        """Release engines and pools the strategy opened."""


SCHEMA_EXISTS = sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :n")


def schema_exists(conn: Connection, schema: str) -> bool:
    return conn.execute(SCHEMA_EXISTS, {"n": schema}).first() is not None


def prepared(
    conn: Connection, tenant: str, schema: str, *, search_path: bool = True
) -> Connection:
    """``conn`` with routing to ``schema`` and ``schema`` on the search path (transaction-local).

    Marked as maintenance: errors on it are the provisioning or migration step's own.
    ``search_path=False``: the caller has already set it (batched with other statements).
    """
    if search_path:
        set_search_path(conn, schema)
    return conn.execution_options(**routing_options(tenant, schema), tenantry_maintenance=True)


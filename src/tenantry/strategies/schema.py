"""Schema per tenant: one database, one pool, one PostgreSQL schema per tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateSchema, DropSchema

from ..core.registry import Location
from ..provisioning.sqlscript import rename_schema
from .base import Strategy, prepared, schema_exists


class SchemaStrategy(Strategy):
    """Tenant ``acme`` lives in schema ``<prefix>acme`` of the main database.

    Every step runs on the caller's transaction of the main database, so creating a tenant
    (schema, migrations, registry row) commits or rolls back as one.
    """

    kind = "schema"

    def engine(self, location: Location) -> Engine:
        return self.main

    @contextmanager
    def storage(
        self, main: Connection, tenant: str, location: Location, *, create: bool = False
    ) -> Iterator[Connection]:
        if create:
            main.execute(CreateSchema(location.schema))
        yield prepared(main, tenant, location.schema)

    def exists(self, main: Connection, location: Location) -> bool:
        return schema_exists(main, location.schema)

    def drop(self, main: Connection, location: Location) -> None:
        main.execute(DropSchema(location.schema, cascade=True, if_exists=True))

    def rename(
        self,
        main: Connection,
        old: Location,
        new: Location,
        step: Callable[[str], None] | None = None,
    ) -> None:
        rename_schema(main, old.schema, new.schema)

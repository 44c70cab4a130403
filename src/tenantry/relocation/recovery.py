"""Finishing (or undoing) an operation that stopped part-way, from its intent: a database
tenant's create or import, a move, promotion or demotion.

Shared by the operations themselves (running one again resumes it) and ``doctor --fix``.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import DropSchema

from ..core import intents, registry
from ..core.intents import Intent
from ..core.registry import Location, State, TenantInfo
from ..migrations.stream import MigrationStream
from ..names import quote
from ..strategies.database import DatabaseStrategy
from ..strategies.hybrid import HybridStrategy, kind_of
from . import replication

log = logging.getLogger("tenantry")


def resume_create(
    strategy: DatabaseStrategy,
    stream: MigrationStream | None,
    engine: Engine,
    main: Connection,
    name: str,
    location: Location,
) -> TenantInfo | None:
    """Finish a create of database tenant ``name`` at ``location`` (under its lock).

    The tenant's schema is built (and an import's rows loaded) in one transaction: if the
    database holds that schema, register the tenant and return it (``main`` commits the row and
    the intent's removal together). Otherwise drop what was made (no tenant schema, so no
    tenant data: at most a copy of the template) and return ``None``.
    """
    if strategy.exists(main, location):
        if location.schema in strategy.schemas_in(location):
            with strategy.storage(main, name, location) as conn:
                revision = stream.current(conn, location.schema) if stream is not None else None
            kind = kind_of(location) if isinstance(strategy, HybridStrategy) else strategy.kind
            info = registry.insert(main, name, kind, location, State.READY, revision)
            intents.clear(main, name)
            log.info("finished the interrupted create of tenant %s", name, extra={"tenant": name})
            return info
        strategy.drop(main, location)
        log.info("dropped the half-made database of tenant %s", name, extra={"tenant": name})
    intents.discard(engine, name)
    return None


def discard_failed_create(
    strategy: DatabaseStrategy, engine: Engine, main: Connection, name: str, location: Location
) -> None:
    """A create failed and cleaned up after itself: forget its intent, unless storage is left
    (then doctor reports the intent)."""
    try:
        if not strategy.exists(main, location):
            intents.discard(engine, name)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("could not clear the create intent of %s: %s", name, exc)


def undo_move(strategy: DatabaseStrategy, intent: Intent, registered: Location) -> None:
    """Drop the copy a move (promotion, demotion) was making when it died, and its intent.

    The registry was not switched (the intent is cleared with the switch), so the tenant's data
    is at ``registered``; the copy at the intent's destination is dropped only if it is not
    that place. Each step commits on its own (the caller's transaction may write a new intent).
    """
    dest = intent.dest
    main_database = strategy.main.url.database
    if dest is not None and dest.database is not None:
        name = replication.move_name(dest.schema)  # an online move's objects
        replication.drop_leftovers([strategy.admin(server) for server in strategy.servers], name)
        source = strategy.main if registered.database is None else strategy.engine(registered)
        with source.begin() as conn:  # its publication and marker table, in the source
            conn.exec_driver_sql(f"DROP PUBLICATION IF EXISTS {quote(name)}")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(registered.schema)}.{quote(name)}")
        if dest.database == main_database and (dest.server or "main") == "main":
            if registered.database is not None:  # a demotion's schema in the main database
                with strategy.main.begin() as conn:
                    conn.execute(DropSchema(dest.schema, cascade=True, if_exists=True))
        elif (registered.database, registered.server or "main") != (
            dest.database, dest.server or "main"
        ):
            strategy.drop_database(dest.server or "main", dest.database)
        log.info("dropped the unfinished copy of tenant %s", intent.tenant,
                 extra={"tenant": intent.tenant})
    intents.discard(strategy.main, intent.tenant)

"""Moving a tenant: to another server, into its own database (promote) or back (demote).

Each is a copy (:mod:`tenantry.relocation.moving`, :mod:`tenantry.relocation.promotion`) planned
here and run by :func:`relocate` as one unit of work: the copy under the tenant's lock, then the
registry switch; the old copy is dropped only after the switch commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.engine import Connection

from ..core import Core, intents
from ..core.intents import Intent, Operation
from ..core.registry import Location, TenantInfo
from ..errors import ForeignKeyAcrossDatabases, UnknownServer, UnknownTenant, WrongTenantKind
from ..names import validate_name
from ..strategies.database import DatabaseStrategy
from . import recovery
from .moving import Move
from .promotion import Demotion, Promotion, outside_foreign_keys

log = logging.getLogger("tenantry")

#: What a relocation plans for a tenant: the copy to run and its new location, or ``None``
#: when the tenant is already there.
Plan = Callable[[Connection, TenantInfo], tuple[Move, Location] | None]


def relocate(core: Core, name: str, plan: Plan, done: str, event: str) -> TenantInfo:
    """Copy tenant ``name`` as ``plan`` says and switch its registry row to the new place;
    then ``event``'s after-hooks hear of it (``source`` and ``target`` locations).

    A failure aborts the copy and leaves the tenant where it was.
    """
    validate_name(name, core.prefix)
    move: Move | None = None
    try:
        with core.store.work([name], Operation.MOVE) as work:
            info = work.row(name)
            if info is None:
                raise UnknownTenant(name)
            pending = work.unfinished()
            if pending is not None:  # a move that died before its switch: undo its copy
                recovery.undo_move(core.database_strategy(), pending, info.location)
            planned = plan(work.main, info)
            if planned is None:
                return info
            move, location = planned
            work.intend(Intent(Operation.MOVE, name, info.location, move.target))
            move.copy()
            moved = work.update(name, strategy=core.kind_of(location), location=location)
    except BaseException:
        if move is not None:
            move.abort()
            intents.discard(core.engine, name)  # abort dropped the copy
        raise
    move.finish()
    log.info(done, extra={"tenant": name})
    core.events.after(event, name, source=info.location, target=moved.location)
    return moved


def move(core: Core, name: str, to: str, *, lock_timeout: str, online: bool | None) -> TenantInfo:
    """Move database tenant ``name`` to server ``to``; see :meth:`tenantry.Tenancy.move_tenant`."""
    strategy = core.database_strategy()
    if to not in strategy.servers:
        raise UnknownServer(f"unknown server {to!r}; configured: {sorted(strategy.servers)}")

    def plan(main: Connection, info: TenantInfo) -> tuple[Move, Location] | None:
        if info.strategy != DatabaseStrategy.kind:
            raise WrongTenantKind(f"tenant {name!r} is not a database tenant")
        source = replace(info.location, server=info.location.server or "main")
        if source.server == to:
            return None
        target = replace(source, server=to)
        return Move(strategy, name, source, target, lock_timeout=lock_timeout,
                    online=online), target

    return relocate(core, name, plan, f"moved tenant {name} to server {to}", "moved")


def promote(
    core: Core,
    name: str,
    *,
    to_server: str | None,
    drop_foreign_keys: bool,
    lock_timeout: str,
    online: bool | None,
) -> TenantInfo:
    """Move schema tenant ``name`` into its own database; see
    :meth:`tenantry.Tenancy.promote_tenant`."""
    strategy = core.hybrid_strategy()
    if to_server is not None and to_server not in strategy.servers:
        raise UnknownServer(
            f"unknown server {to_server!r}; configured: {sorted(strategy.servers)}"
        )

    def plan(main: Connection, info: TenantInfo) -> tuple[Move, Location] | None:
        if info.location.database is not None:
            return None
        keys = outside_foreign_keys(main, info.schema)
        if keys and not drop_foreign_keys:
            raise ForeignKeyAcrossDatabases(name, keys)
        placed = strategy.locate_as(name, main, "database")
        target = replace(placed, schema=info.schema, server=to_server or placed.server)
        source = Location(info.schema, core.engine.url.database, "main")
        promotion = Promotion(strategy, name, source, target, lock_timeout=lock_timeout,
                              online=online, leave_out=keys)
        return promotion, target

    return relocate(core, name, plan, f"promoted tenant {name} to its own database",
                    "promoted")


def demote(core: Core, name: str, *, lock_timeout: str, online: bool | None) -> TenantInfo:
    """Move database tenant ``name`` back into a schema of the main database; see
    :meth:`tenantry.Tenancy.demote_tenant`."""
    strategy = core.hybrid_strategy()

    def plan(main: Connection, info: TenantInfo) -> tuple[Move, Location] | None:
        if info.location.database is None:
            return None
        source = replace(info.location, server=info.location.server or "main")
        target = Location(info.schema, core.engine.url.database, "main")
        demotion = Demotion(strategy, name, source, target, lock_timeout=lock_timeout,
                            online=online)
        return demotion, Location(info.schema)

    return relocate(core, name, plan,
                    f"demoted tenant {name} to a schema of the main database", "demoted")

"""Migrating one tenant: the ordinary Alembic run, its bookkeeping batched, or compiled SQL.

Each tenant is marked ``migrating`` (committed, visible to everyone) and then migrated in one
transaction that also records its new revision and state.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from contextlib import nullcontext

import sqlalchemy as sa

from ..core import Core, registry
from ..core.registry import State, TenantInfo, keeping_suspension
from ..names import quote
from ..provisioning.sqlscript import query_script
from ..strategies.base import prepared, routed
from ..strategies.hybrid import HybridStrategy
from ..strategies.schema import SchemaStrategy
from .compiled import Compiler, StaleRevision, literal
from .results import Step, TenantOutcome
from .revisions import is_downgrade
from .stream import is_revision_name

log = logging.getLogger("tenantry.fleet")
#: A migrated tenant's state: ready, or still suspended.
_READY = keeping_suspension(State.READY)


def mark_migrating(core: Core, names: Sequence[str]) -> None:
    """Mark ``names`` as ``migrating`` in one committed update, visible to everyone."""
    if names:
        with core.store.begin() as main:
            main.execute(
                registry.tenants.update()
                .where(registry.tenants.c.name.in_(list(names)))
                .values(state=keeping_suspension(State.MIGRATING), updated_at=sa.func.now())
            )


def migrate_one(
    core: Core,
    info: TenantInfo,
    target: str | None,
    *,
    mark: bool = True,
    compiler: Compiler | None = None,
) -> TenantOutcome:
    """Migrate one tenant to revision ``target`` in its own transaction; never raises.

    With ``mark`` the tenant is first marked ``migrating`` (else the caller did, in a batch).
    With a ``compiler``, upgrades run the step's pre-rendered SQL (see
    :mod:`tenantry.migrations.compiled`).
    """
    stream = core.require_tenant_stream()
    name = info.name
    try:
        if mark:
            mark_migrating(core, [name])
        step = (
            _compiled(core, info, target, compiler)
            or _prefetched(core, info, target)
            or _ordinary(core, info, target)
        )
    except Exception as exc:  # one tenant's failure is recorded, not fatal to the fleet
        error = f"{type(exc).__name__}: {exc}".strip()[:4000]
        log.error("migration of tenant %s failed: %s", name, error)
        try:
            with core.store.begin() as main:
                registry.update(main, name, state=keeping_suspension(State.FAILED), error=error)
        except Exception:  # the database is gone: the tenant stays 'migrating'
            log.exception("cannot record the failure of tenant %s", name)
        return TenantOutcome(name, "failed", info.revision, info.revision, error)
    core.store.changed(name)
    if step.changed:
        log.info("tenant %s: %s -> %s", name, step.before or "base", step.after or "base",
                 extra={"tenant": name})
    result = "current" if not step.changed else (
        "downgraded" if is_downgrade(stream, step.before, step.after) else "upgraded"
    )
    return TenantOutcome(name, result, step.before, step.after)


def _ordinary(core: Core, info: TenantInfo, target: str | None) -> Step:
    stream = core.require_tenant_stream()
    with core.store.begin() as main:
        registry.lock_tenants(main, [info.name])
        with (
            core.strategy.storage(main, info.name, info.location) as conn,
            core.as_tenant(conn, info.name, info.location),
        ):
            goal = target if target is not None else "base"
            if is_downgrade(stream, info.revision, target):
                step = stream.downgrade(conn, info.schema, goal)
            else:
                step = stream.upgrade(conn, info.schema, goal)
            if step.changed:
                core.events.inside("migrated", info.name, routed(conn, info.name, info.location),
                                   before=step.before, after=step.after)
        registry.update(main, info.name, state=_READY, revision=step.after, error=None)
    return step


_UNDEFINED_TABLE = "42P01"


class _NoVersionTable(Exception):
    """The tenant's version table is missing: the registry was wrong; migrate it the long way."""


def _prefetched(core: Core, info: TenantInfo, target: str | None) -> Step | None:
    """The ordinary Alembic migration with tenantry's bookkeeping in one round trip.

    For a tenant of the main database that the registry says is at a revision: its advisory
    lock, its registry update (``ready`` at ``target``) and the read of its version table go in
    one round trip. On a linear path (see :meth:`MigrationStream.linear`) that round trip also
    moves the version row to ``target`` and only the scripts run after it; otherwise Alembic
    runs from the heads read (no version-table check or read of its own). All in one
    transaction: a failure rolls back the bookkeeping with the migration. If Alembic ends
    elsewhere than ``target``, the registry is corrected in the same transaction. ``None``:
    this does not apply (or the version table is missing).
    """
    stream = core.require_tenant_stream()
    if target is None or info.revision is None or info.location.database is not None:
        return None
    if core.events.wanted("migrated", "inside"):  # they run in the ordinary migration
        return None
    if not is_revision_name(stream.script, target):  # e.g. a relative "+1"
        return None
    down = is_downgrade(stream, info.revision, target)
    schema = quote(info.schema)
    # schema tenants of the main database: what storage() does, the search path batched too
    batched = type(core.strategy) in (SchemaStrategy, HybridStrategy)
    linear = stream.linear(info.revision, target) is not None
    table = f"{schema}.{quote(stream.version_table)}"
    path = f"SET LOCAL search_path TO {schema};\n" if batched else ""
    read = (_move_version_sql(table, info.revision, target) if linear
            else f"SELECT version_num, 0 FROM {table}")  # noqa: S608
    prologue = _lock_sql(info.name) + path + _ready_sql(core, info.name, target) + read
    try:
        with core.store.begin() as main:
            try:
                rows = query_script(main, prologue)
            except Exception as exc:  # raw driver error; psycopg stays a lazy import
                if getattr(exc, "sqlstate", None) == _UNDEFINED_TABLE:
                    raise _NoVersionTable(str(exc)) from exc
                raise
            heads = [str(row[0]) for row in rows]
            moved = bool(rows) and rows[0][1] == 1
            with (
                nullcontext(prepared(main, info.name, info.schema, search_path=False))
                if batched else core.strategy.storage(main, info.name, info.location) as conn,
                core.as_tenant(conn, info.name, info.location),
            ):
                if moved:  # the version row is at the target already: only the scripts run
                    step = stream.replay(conn, info.schema, info.revision, target)
                else:
                    run = stream.downgrade if down else stream.upgrade
                    step = run(conn, info.schema, target, heads=heads)
            if step.after != target:
                registry.update(main, info.name, state=_READY, revision=step.after,
                                error=None)
    except _NoVersionTable as exc:
        log.info("tenant %s has no version table, migrating the long way: %s", info.name, exc)
        return None
    return step


def _compiled(
    core: Core, info: TenantInfo, target: str | None, compiler: Compiler | None
) -> Step | None:
    """The compiled upgrade, if one applies; ``None``: migrate the ordinary way."""
    if compiler is None or target is None or info.revision == target:
        return None
    if core.strict_roles is not None:  # migrations must run as the tenant's role
        return None
    if core.events.wanted("migrated", "inside"):  # they run in the ordinary migration
        return None
    if is_downgrade(compiler.stream, info.revision, target):
        return None
    compiled = compiler.step(info.revision, target)
    if compiled is None:
        return None
    same_database = info.location.database is None  # registry and tenant in one database
    try:
        with core.store.begin() as main:
            if not same_database:
                registry.lock_tenants(main, [info.name])
            with core.strategy.storage(main, info.name, info.location) as conn:
                if same_database:  # lock, step, check and registry row: one round trip
                    compiled.run(conn, info.schema, _lock_sql(info.name),
                                 _ready_sql(core, info.name, target))
                else:
                    compiled.run(conn, info.schema)
            if not same_database:
                registry.update(main, info.name, state=_READY, revision=target, error=None)
    except StaleRevision as exc:  # rolled back; the registry was out of date
        log.info("compiled step skipped: %s", exc)
        return None
    return Step(info.revision, target)


def _move_version_sql(table: str, start: str, target: str) -> str:
    """Move the version row of ``table`` from ``start`` to ``target`` if it is the only row and
    says ``start``; return the rows as they were, each with 1 if the row moved (else 0)."""
    return (
        f"WITH old AS (SELECT version_num FROM {table}), "  # noqa: S608
        f"moved AS (UPDATE {table} SET version_num = {literal(target)} "
        f"WHERE version_num = {literal(start)} AND (SELECT count(*) FROM old) = 1 "
        "RETURNING 1) "
        "SELECT version_num, (SELECT count(*) FROM moved) FROM old"
    )


def _lock_sql(name: str) -> str:
    """The statement :func:`registry.lock_tenants` runs for one tenant, as SQL text."""
    return f"SELECT pg_advisory_xact_lock({registry.LOCK_CLASS}, {registry.lock_key(name)});\n"


def _ready_sql(core: Core, name: str, revision: str) -> str:
    """The registry update of a migrated tenant, as SQL text (values rendered as literals)."""
    return _ready_template(core.engine.dialect, revision).replace(_NAME_MARK, literal(name))


_NAME_MARK = "'\x01tenantry-name\x01'"  # never a valid tenant name


@functools.lru_cache(maxsize=64)
def _ready_template(dialect: sa.engine.Dialect, revision: str) -> str:
    """:func:`_ready_sql` compiled once per revision, the tenant name left as a marker."""
    update = (
        registry.tenants.update()
        .where(registry.tenants.c.name == _NAME_MARK[1:-1])
        .values(state=_READY, revision=revision, error=None, updated_at=sa.func.now())
    )
    compiled = update.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    text = f"{compiled};\n"
    assert text.count(_NAME_MARK) == 1, text
    return text


def migrate_batch(
    core: Core,
    batch: Sequence[TenantInfo],
    target: str | None,
    compiler: Compiler | None = None,
) -> list[TenantOutcome]:
    """Mark a batch ``migrating`` with one update, then migrate its tenants one by one."""
    mark_migrating(core, [i.name for i in batch])
    return [migrate_one(core, info, target, mark=False, compiler=compiler) for info in batch]


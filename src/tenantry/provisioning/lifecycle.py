"""Creating, dropping and renaming tenants: each one unit of work of the tenant store."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ..core import Core, TenantWork
from ..core.intents import Intent, Operation
from ..core.records import check_fields
from ..core.registry import Location, TenantInfo
from ..errors import (
    ConfirmationRequired,
    ForeignKeyAcrossDatabases,
    MigrationError,
    NotConfiguredFor,
    TenantExists,
    UnknownTenant,
)
from ..names import validate_name
from ..relocation import recovery
from ..strategies.base import routed
from ..strategies.hybrid import HybridStrategy, kind_of
from ..strict.logins import LoginRoles
from .template import TEMPLATE_SCHEMA

log = logging.getLogger("tenantry")

UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for "relation ... does not exist"


def create(core: Core, name: str, kind: str | None = None,
           record: Mapping[str, Any] | None = None) -> TenantInfo:
    """Create tenant ``name`` (as ``kind``, hybrid only) at the head revision, with its
    ``record``; idempotent. See :meth:`tenantry.Tenancy.create_tenant`.
    """
    validate_name(name, core.prefix)
    check_fields(core.records, record or {})  # before anything is made
    if core.schema_kind(kind):  # builds it, if needed, before a connection is held
        with explaining_missing_shared_tables(name, TEMPLATE_SCHEMA):
            core.warm_template()
    if core.strict_roles is not None:
        core.strict_roles.ensure_group()
    with core.store.work([name], Operation.CREATE) as work:
        existing = work.row(name)
        if existing is not None:
            return existing
        pending = work.unfinished()
        if pending is not None and pending.dest is not None:
            resumed = recovery.resume_create(core.database_strategy(), core.tenant_stream,
                                             core.engine, work.main, name, pending.dest)
            if resumed is not None:
                return resumed
            if isinstance(core.strategy, HybridStrategy):  # the kind it was created as
                kind = kind or kind_of(pending.dest)
        location = core.locate_new(name, work.main, kind)

        def fill(conn: Connection, location: Location) -> str | None:
            with core.as_tenant(conn, name, location):
                revision = core.build_tenant_tables(conn, location.schema)
                core.events.inside("created", name, routed(conn, name, location),
                                   revision=revision)
                return revision

        # A database tenant's tables may be built in a template database first, in its schema.
        with explaining_missing_shared_tables(name, location.schema, TEMPLATE_SCHEMA,
                                              own_database=location.database is not None):
            info = provision(core, work, name, location, fill, record)
    log.info("created tenant %s in %s (revision %s)", name, location.schema, info.revision,
             extra={"tenant": name})
    core.events.after("created", name, revision=info.revision)
    return info


@contextmanager
def explaining_missing_shared_tables(
    tenant: str, *schemas: str, own_database: bool = False
) -> Iterator[None]:
    """Raise :func:`missing_shared_table`'s explanation instead of the error it explains."""
    try:
        yield
    except DBAPIError as exc:
        explained = missing_shared_table(exc, tenant, schemas, own_database)
        if explained is None:
            raise
        raise explained from exc


def missing_shared_table(
    exc: DBAPIError, tenant: str, schemas: Sequence[str], own_database: bool = False
) -> MigrationError | None:
    """What to say when a new tenant's tables refer to a relation outside ``schemas`` (the
    ones being built) that does not exist: most often a shared table whose stream has not run
    yet, or, for a tenant in a database of its own, a shared table of the main database
    (``None``: another error, left as it is)."""
    if getattr(exc.orig, "sqlstate", None) != UNDEFINED_TABLE:
        return None
    found = re.search(r'relation "([^"]+)" does not exist', str(exc.orig))
    relation = found.group(1) if found is not None else ""
    if "." not in relation or relation.split(".")[0] in schemas:
        return None  # a table of the tenant's own schema: the migration's own error
    if own_database:
        return ForeignKeyAcrossDatabases(tenant, [("", "", relation)], creating=True)
    return MigrationError(
        f"relation {relation!r} does not exist: if it is a shared table, run the shared "
        "stream first (Tenancy.migrate_shared(), CLI: tenantry migrate), then create the tenant"
    )


def provision(
    core: Core,
    work: TenantWork,
    name: str,
    location: Location,
    fill: Callable[[Connection, Location], str | None],
    record: Mapping[str, Any] | None = None,
) -> TenantInfo:
    """Make tenant ``name``'s storage at ``location``, ``fill`` it (returns the revision) and
    register it with its ``record``, in ``work``'s transaction; a failure (a record value
    refused too) leaves nothing behind."""
    if core.strategy.exists(work.main, location):
        raise TenantExists(
            f"storage {location.schema!r} for tenant {name!r} exists but is not "
            "registered; drop it or register it by hand"
        )
    own_steps = location.database is not None  # CREATE DATABASE commits on its own
    if own_steps:
        work.intend(Intent(work.operation or Operation.CREATE, name, None, location))
    try:
        with core.strategy.storage(work.main, name, location, create=True) as conn:
            revision = fill(conn, location)
            # registered before the storage commits: a refused record undoes the storage
            return work.insert(name, core.kind_of(location), location, revision, record)
    except BaseException:
        if own_steps:
            recovery.discard_failed_create(core.database_strategy(), core.engine, work.main,
                                           name, location)
        raise


def remove(core: Core, work: TenantWork, info: TenantInfo) -> None:
    """Drop ``info``'s storage and role and unregister it, in ``work``'s transaction."""
    core.strategy.drop(work.main, info.location)
    if core.strict_roles is not None:
        with core.role_connection(work.main, info.location) as roles_conn:
            core.strict_roles.drop(roles_conn, info.name, info.location)
    work.delete(info.name)


def drop(core: Core, name: str, *, confirm: bool = False) -> bool:
    """Drop tenant ``name`` and its data (needs ``confirm=True``); ``False``: no such tenant."""
    if not confirm:
        raise ConfirmationRequired(
            f"dropping tenant {name!r} destroys its data: pass confirm=True (CLI: --yes)"
        )
    validate_name(name, core.prefix)
    with core.store.work([name], Operation.DROP) as work:
        info = work.row(name)
        if info is None:
            return False
        pending = work.unfinished()
        if pending is None:  # inside hooks may veto: before the first step that commits
            core.events.inside("dropped", name, routed(work.main, name, info.location))
        if info.location.database is not None and pending is None:
            work.intend(Intent(Operation.DROP, name, info.location, None))
        remove(core, work, info)
    log.info("dropped tenant %s (%s)", name, info.location.schema, extra={"tenant": name})
    core.events.after("dropped", name, location=info.location)
    return True


def rename(core: Core, old: str, new: str) -> TenantInfo:
    """Rename tenant ``old`` to ``new`` (its storage too); idempotent and resumable.

    A database tenant's rename takes several commits; its intent records each, so that running
    the same rename again (or ``doctor --fix``) finishes one that stopped part-way. ``new ==
    old`` gives an adopted tenant's storage its conventional name (prefix + name).
    """
    validate_name(old, core.prefix)
    validate_name(new, core.prefix)
    with core.store.work([old, new], Operation.RENAME) as work:
        pending = work.unfinished()
        info, target = work.row(old), work.row(new)
        if info is None:
            if target is not None:
                return target
            raise UnknownTenant(old)
        if target is not None and new != old:
            raise TenantExists(f"cannot rename {old!r} to {new!r}: {new!r} exists")
        location = core.strategy.renamed(info.location, new)
        if location == info.location:
            return info  # already there (the storage of a tenant renamed to itself)
        if pending is None and core.strategy.exists(work.main, location):
            raise TenantExists(f"cannot rename {old!r}: storage {location.schema!r} exists")
        step: Callable[[str], None] | None = None
        if location.database is not None:  # renaming a database commits step by step
            if pending is None:  # inside hooks may veto: before the first step that commits
                core.events.inside("renamed", new, work.main, old=old)
                work.intend(Intent(Operation.RENAME, old, info.location, location, target=new))
            step = work.step_recorder(old)
        core.strategy.rename(work.main, info.location, location, step)
        if core.strict_roles is not None:
            with core.role_connection(work.main, info.location) as roles_conn:
                core.strict_roles.rename(roles_conn, new, info.location, location)
        renamed = work.update(old, name=new, location=location)
        if location.database is None:  # one transaction: the hooks see the renamed tables
            core.events.inside("renamed", new, routed(work.main, new, location), old=old)
    log.info("renamed tenant %s to %s", old, new, extra={"tenant": new})
    core.events.after("renamed", new, old=old)
    return renamed


def reset_logins(core: Core, tenants: Sequence[str] | None) -> int:
    """Make each tenant's role ``LOGIN`` with its derived password; returns how many."""
    roles = core.strict()
    if not isinstance(roles, LoginRoles):
        raise NotConfiguredFor("reset_logins needs Tenancy(..., strict='login')")
    names = list(tenants) if tenants is not None else [i.name for i in core.store.all()]
    for name in names:
        with core.store.work([name]) as work:
            info = work.row(name)
            if info is None:
                raise UnknownTenant(name)
            with core.role_connection(work.main, info.location) as conn:
                roles.log_in(conn, name, info.location)
    return len(names)

"""Alembic ``env.py`` helpers: autogenerate for tenantry's two streams.

``env.py`` of each stream is one call (``tenantry init`` writes it)::

    from alembic import context
    from tenantry.alembic import run_environment
    from app.tenancy import tenancy

    run_environment(context, tenancy, "tenant")   # or "shared"

tenantry runs the streams itself (``tenantry migrate``) and never reads ``env.py``; Alembic
uses it for ``alembic revision --autogenerate`` (and ``alembic check``).

The tenant stream: the tenant tables are compared with their placeholder schema removed
(:func:`tenant_metadata`), in a scratch schema migrated to the stream's head inside one
transaction that is rolled back, so revisions create unqualified tables (foreign keys to tenant
tables unqualified, to shared tables ``public.x``) and a second revision holds only what changed.
Shared tables are left out. The shared stream: only the shared tables, compared with
``public``; tenant tables and tenantry's own tables (``tenantry_*``) are left out. A revision
that would still name the placeholder schema is refused (:class:`PlaceholderInRevision`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import Operations
from alembic.operations.ops import DowngradeOps, MigrationScript, UpgradeOps
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from .aio import AsyncTenancy
from .core import registry
from .core.records import RECORDS_TABLE
from .errors import MigrationError
from .migrations.stream import upgrade_revs
from .models import SHARED_SCHEMA, TENANT_SCHEMA, is_tenant_table
from .names import quote
from .tenancy import Tenancy

__all__ = [
    "PlaceholderInRevision",
    "include_object",
    "refuse_placeholder",
    "run_environment",
    "tenant_metadata",
]

Stream = Literal["tenant", "shared"]
#: Tables tenantry keeps in ``public`` for itself (registry, templates): never in a revision.
OWN_TABLE_PREFIX = "tenantry_"
#: Prefix of the scratch schema a tenant autogenerate compares with (rolled back).
SCRATCH_PREFIX = "tenantry_autogenerate_"

WHY = (
    f"{TENANT_SCHEMA!r} is the placeholder schema of tenant models, translated to the tenant's "
    "schema when a query runs; it never exists in the database. tenantry runs tenant revisions "
    "in each tenant's schema under SET LOCAL search_path, so they must use unqualified names "
    "(and shared tables as public.name)"
)


class PlaceholderInRevision(MigrationError, CommandError):
    """A revision (generated or on disk) names the placeholder schema ``__tenant__``."""


def tenant_metadata(metadata: sa.MetaData) -> sa.MetaData:
    """A copy of ``metadata`` whose tenant tables have no schema.

    Foreign keys to tenant tables become unqualified; foreign keys to shared tables keep their
    schema (``public.users``). Shared tables are copied as they are (foreign keys resolve to
    them); :func:`include_object` leaves them out of the tenant stream.
    """
    copy = sa.MetaData(naming_convention=metadata.naming_convention)

    def referred(table: sa.Table, to_schema: str | None, constraint: Any,
                 referred_schema: str | None) -> str | None:
        return None if referred_schema == TENANT_SCHEMA else referred_schema

    if f"{SHARED_SCHEMA}.{RECORDS_TABLE}" in metadata.tables:  # its foreign key resolves
        registry.tenants.to_metadata(copy)
    for table in metadata.sorted_tables:
        if not is_tenant_table(table):
            table.to_metadata(copy, referred_schema_fn=referred)
            continue
        moved = table.to_metadata(
            copy, schema=None, referred_schema_fn=referred  # type: ignore[arg-type]
        )
        for column in moved.columns:  # enum types inherit the placeholder from the table
            kind = column.type
            if isinstance(kind, sa.Enum) and kind.schema == TENANT_SCHEMA:
                kind.schema = None
    return copy


def include_object(stream: Stream) -> Callable[..., bool]:
    """An Alembic ``include_object`` hook keeping only ``stream``'s tables.

    Tenant stream: tables without a schema (the tenant tables of :func:`tenant_metadata`).
    Shared stream: shared tables, not tenant tables nor tenantry's ``tenantry_*`` tables.
    """

    def include(obj: Any, name: str | None, type_: str, reflected: bool,
                compare_to: Any) -> bool:
        if type_ != "table":
            return True
        if stream == "tenant":
            return obj.schema is None
        if is_tenant_table(obj):
            return False
        return not (reflected and compare_to is None and (name or "").startswith(OWN_TABLE_PREFIX))

    return include


def refuse_placeholder(stream: Stream) -> Callable[[Any, Any, list[Any]], None]:
    """A ``process_revision_directives`` hook refusing a revision that names ``__tenant__``."""

    def check(context: Any, revision: Any, directives: list[Any]) -> None:
        for script in directives:
            if not isinstance(script, MigrationScript):
                continue
            for ops in (*script.upgrade_ops_list, *script.downgrade_ops_list):
                assert isinstance(ops, UpgradeOps | DowngradeOps)
                lines = [line.strip() for line in render_python_code(ops).splitlines()
                         if TENANT_SCHEMA in line]
                if lines:
                    raise PlaceholderInRevision(
                        f"refused: the new {stream} revision would name the placeholder schema "
                        f"({lines[0]}). {WHY}. Look for a model, type or default text naming "
                        f"{TENANT_SCHEMA!r} explicitly."
                    )

    return check


def check_revisions(script: ScriptDirectory) -> None:
    """Refuse a tenant stream whose revision files name the placeholder schema."""
    for revision in script.walk_revisions():
        path = revision.path
        with open(path, encoding="utf-8") as source:
            text = source.read()
        if TENANT_SCHEMA in text:
            raise PlaceholderInRevision(
                f"refused: tenant revision {revision.revision} ({path}) names the placeholder "
                f"schema. {WHY}. Edit the revision to use unqualified names."
            )


def admin_tenancy(tenancy: Tenancy | AsyncTenancy) -> Tenancy:
    """The sync :class:`Tenancy` (an :class:`AsyncTenancy`'s admin one)."""
    return tenancy.admin if isinstance(tenancy, AsyncTenancy) else tenancy


def run_environment(
    context: Any,
    tenancy: Tenancy | AsyncTenancy,
    stream: Stream,
    **configure: Any,
) -> None:
    """The whole ``env.py`` of ``stream``; ``configure`` goes to ``context.configure``.

    ``context`` is ``alembic.context``. The tenant stream serves ``revision`` and ``check``
    only (tenantry migrates tenants: ``tenantry migrate``); the shared stream serves every
    command, in ``public``.
    """
    if stream not in ("tenant", "shared"):
        raise MigrationError(f"stream must be 'tenant' or 'shared', not {stream!r}")
    admin = admin_tenancy(tenancy)
    url = admin.engine.url
    version_table = configure.pop("version_table", None) or _version_table(admin, stream)
    user_directives = configure.pop("process_revision_directives", None)
    check = refuse_placeholder(stream)

    def directives(ctx: Any, revision: Any, found: list[Any]) -> None:
        if user_directives is not None:
            user_directives(ctx, revision, found)
        check(ctx, revision, found)

    options: dict[str, Any] = dict(
        version_table=version_table,
        include_object=include_object(stream),
        process_revision_directives=directives,
        compare_type=True,
    )
    if stream == "shared":
        options.update(version_table_schema=SHARED_SCHEMA)
    options.update(configure)
    if context.is_offline_mode():
        if stream == "tenant":
            raise CommandError("the tenant stream has no offline mode here: `tenantry migrate "
                               "--dry-run` prints one tenant's SQL")
        context.configure(url=url, target_metadata=admin.metadata, literal_binds=True,
                          dialect_opts={"paramstyle": "named"}, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    writing = _writes_revision(context)
    if stream == "tenant" and not writing:
        raise CommandError(
            "tenantry runs the tenant stream in every tenant: use `tenantry migrate` (and "
            "`tenantry status`); Alembic uses this env.py for `revision --autogenerate` only"
        )
    engine_options: dict[str, Any] = {"poolclass": NullPool}
    if stream == "shared" and writing:
        # Nothing on the search path: the shared schemas are compared by name, so foreign keys
        # between shared tables reflect as public.x, as the models have them.
        engine_options["connect_args"] = {"options": "-c search_path=pg_catalog"}
        schemas = {SHARED_SCHEMA} | {t.schema for t in admin.metadata.tables.values()
                                     if not is_tenant_table(t) and t.schema}
        options.setdefault("include_schemas", True)
        options.setdefault("include_name", _schemas_named(schemas))
    engine = sa.create_engine(url, **engine_options)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            if stream == "tenant":
                metadata = tenant_metadata(admin.metadata)
                _scratch_at_head(conn, context.script, version_table)
            else:
                metadata = admin.metadata
                if not writing:
                    conn.exec_driver_sql(f"SET LOCAL search_path TO {quote(SHARED_SCHEMA)}")
            context.configure(connection=conn, target_metadata=metadata, **options)
            with context.begin_transaction():
                context.run_migrations()
            if writing:
                transaction.rollback()  # a revision changes nothing (the scratch schema goes)
    finally:
        engine.dispose()


def _version_table(tenancy: Tenancy, stream: Stream) -> str:
    found = tenancy.tenant_stream if stream == "tenant" else tenancy.shared_stream
    return found.version_table if found is not None else "alembic_version"


def _schemas_named(schemas: set[str]) -> Callable[..., bool]:
    """An ``include_name`` hook keeping only ``schemas`` (other names pass)."""

    def include(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "schema" or name in schemas

    return include


def _writes_revision(context: Any) -> bool:
    """Whether the command running ``env.py`` is ``revision`` or ``check`` (not a migration)."""
    context.configure(dialect_name="postgresql")  # the context's options say the command
    return "revision_context" in context.get_context().opts


def _scratch_at_head(conn: Connection, script: ScriptDirectory, version_table: str) -> None:
    """A new schema, the tenant stream run in it to its heads, alone on the search path."""
    check_revisions(script)
    scratch = SCRATCH_PREFIX + uuid.uuid4().hex[:12]
    conn.exec_driver_sql(f"CREATE SCHEMA {quote(scratch)}")
    conn.exec_driver_sql(f"SET LOCAL search_path TO {quote(scratch)}")
    ctx = MigrationContext.configure(conn, opts={
        "version_table": version_table,
        "version_table_schema": scratch,
        "transactional_ddl": True,
        "fn": lambda rev, _ctx: upgrade_revs(script, "heads", rev),
    })
    try:
        with Operations.context(ctx):
            ctx.run_migrations()
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise MigrationError(
            f"the tenant stream does not run in a scratch schema ({first}); a tenant revision "
            "needing shared tables needs the shared stream first: `tenantry migrate`"
        ) from exc

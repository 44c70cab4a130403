"""Alembic migration streams run through Alembic's runtime API: no ``alembic`` CLI, no env.py.

A :class:`MigrationStream` loads its script directory once and runs upgrades, downgrades and
stamps on a connection the caller has prepared: inside the caller's transaction, with the
caller's ``search_path``. That is what makes a tenant migration one transaction per tenant and
keeps Alembic's per-call overhead (loading scripts) out of fleet runs.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Table
from sqlalchemy.engine import Connection

from ..errors import MigrationError
from ..models import TENANT_SCHEMA
from . import streamconfig
from .results import Step
from .streamconfig import Stream, StreamSource

log = logging.getLogger("tenantry.migrations")
_alembic_log = logging.getLogger("alembic.runtime.migration")  # Alembic's "Running ..." lines


def _one(heads: Iterable[str]) -> str | None:
    revs = sorted(heads)
    if len(revs) > 1:
        raise MigrationError(f"several heads {revs}: merge them (alembic merge) first")
    return revs[0] if revs else None


def is_ancestor(script: ScriptDirectory, current: str, other: str) -> bool:
    """Whether ``other`` is a strict ancestor of ``current``."""
    return other != current and any(
        rev.revision == other for rev in script.revision_map.iterate_revisions(current, "base")
    )


# Alembic's private API, one function each: ``alembic upgrade``/``downgrade``/``stamp`` build
# their steps with these (there is no public way); tests/test_third_party.py checks them.


def upgrade_revs(script: ScriptDirectory, target: str, heads: Any) -> Any:
    """The steps from ``heads`` up to ``target`` (``ScriptDirectory._upgrade_revs``)."""
    return script._upgrade_revs(target, heads)


def downgrade_revs(script: ScriptDirectory, target: str, heads: Any) -> Any:
    """The steps from ``heads`` down to ``target`` (``ScriptDirectory._downgrade_revs``)."""
    return script._downgrade_revs(target, heads)


def stamp_revs(script: ScriptDirectory, target: str, heads: Any) -> Any:
    """The steps that stamp ``target`` over ``heads`` (``ScriptDirectory._stamp_revs``)."""
    return script._stamp_revs(target, heads)


def set_migration_context(env: EnvironmentContext, ctx: MigrationContext) -> None:
    """What ``EnvironmentContext.configure`` does with the context it builds: ``context.
    get_context()`` in a migration script then returns ``ctx``."""
    env._migration_context = ctx


def is_revision_name(script: ScriptDirectory, name: str) -> bool:
    """Whether ``name`` is a whole revision id or branch label as written (not a prefix,
    ``heads`` or a relative ``+1``): a key of ``RevisionMap._revision_map``."""
    return name in script.revision_map._revision_map


class KnownHeadsContext(MigrationContext):
    """A :class:`MigrationContext` told the version table's contents by its caller.

    Alembic starts every run by checking that the version table exists and reading it: two
    round trips. A fleet run reads the version row itself, together with its lock and registry
    update in one round trip, and hands it over; the first ``get_current_heads`` call (the one
    that starts the run) returns it, later calls read the table as usual.
    """

    known_heads: tuple[str, ...] | None = None

    def use_version_table(self, table: Table) -> None:
        """Read and write the version table through ``table`` (same name, columns)."""
        self._version = table

    def get_current_heads(self) -> tuple[str, ...]:
        known, self.known_heads = self.known_heads, None
        return known if known is not None else super().get_current_heads()


class MigrationStream:
    """One Alembic stream of revisions (``shared`` or ``tenant``), loaded once."""

    def __init__(self, source: StreamSource, *, version_table: str | None = None):
        """``source``: a folder holding ``versions/``, an alembic.ini, an Alembic ``Config``
        or a :class:`~tenantry.Stream` (see :mod:`tenantry.migrations.streamconfig`);
        ``version_table`` applies if the source names none."""
        loaded = streamconfig.load(source, version_table)
        #: The stream as plain paths and its version table (rebuilds it in other processes).
        self.spec: Stream = loaded.spec
        self.config, self.script = loaded.config, loaded.script
        self.version_table: str = loaded.spec.version_table or streamconfig.DEFAULT_VERSION_TABLE
        self._head = _one(self.script.get_heads())
        self._online_opts: dict[str, Any] | None = None  # see _run_known
        self._routed_version: Table | None = None
        self._steps: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        self._linear: dict[tuple[str, str], list[Any] | None] = {}
        # EnvironmentContext installs module-level proxies (alembic.op, alembic.context):
        # runs in one process must not interleave.
        self._lock = threading.Lock()

    @property
    def head(self) -> str | None:
        """The head revision (a stream has at least one revision)."""
        return self._head

    def current(self, conn: Connection, schema: str | None) -> str | None:
        """The revision recorded in ``schema``'s version table (``None``: none)."""
        ctx = MigrationContext.configure(
            conn, opts={"version_table": self.version_table, "version_table_schema": schema}
        )
        return _one(ctx.get_current_heads())

    def to(self, conn: Connection, schema: str | None, target: str = "heads") -> Step:
        """Upgrade or downgrade ``schema`` to ``target``, whichever way it lies."""
        if target not in ("head", "heads") and self._is_behind(conn, schema, target):
            return self.downgrade(conn, schema, target)
        return self.upgrade(conn, schema, target)

    def _is_behind(self, conn: Connection, schema: str | None, target: str) -> bool:
        """Whether ``target`` is an ancestor of (or base below) the current revision."""
        current = self.current(conn, schema)
        if current is None:
            return False
        if target == "base":
            return True
        try:
            wanted = self.script.get_revision(target)
            return wanted is not None and is_ancestor(self.script, current, wanted.revision)
        except CommandError as exc:
            raise MigrationError(f"unknown revision {target!r}: {exc}") from exc

    def upgrade(
        self,
        conn: Connection,
        schema: str | None,
        target: str = "heads",
        *,
        heads: Collection[str] | None = None,
    ) -> Step:
        """Upgrade ``schema`` to ``target`` within ``conn``'s current transaction.

        ``heads``: the version table's rows, already read by the caller in this transaction
        (Alembic then skips its own existence check and read).
        """
        return self._run(conn, schema, target, lambda rev: self._upgrade_steps(target, rev),
                         heads=heads)

    def _upgrade_steps(self, target: str, heads: Any) -> Any:
        """Alembic's upgrade steps from ``heads`` to ``target``, computed once per pair (a
        fleet run asks the same question for every tenant)."""
        if not isinstance(heads, tuple):
            return upgrade_revs(self.script, target, heads)
        key = (target, heads)
        steps = self._steps.get(key)
        if steps is None:
            revs = upgrade_revs(self.script, target, heads)
            steps = self._steps[key] = list(revs)
        return steps

    def linear(self, start: str, target: str) -> list[Any] | None:
        """The steps from ``start`` to ``target`` (either way) if each one only moves the single
        version row on: no branch made, merged or removed. ``None`` otherwise. Cached."""
        key = (start, target)
        if key not in self._linear:
            self._linear[key] = self._linear_steps(start, target)
        return self._linear[key]

    def _linear_steps(self, start: str, target: str) -> list[Any] | None:
        try:
            down = is_ancestor(self.script, start, target)
            steps = list(
                downgrade_revs(self.script, target, start) if down
                else upgrade_revs(self.script, target, start)
            )
        except (CommandError, RevisionError):
            return None
        heads = {start}
        for step in steps:
            if (step.should_create_branch(heads) or step.should_delete_branch(heads)
                    or step.should_merge_branches(heads) or step.should_unmerge_branches(heads)):
                return None
            old, new = step.update_version_num(heads)
            heads = (heads - {old}) | {new}
        return steps if heads == {target} else None

    def replay(self, conn: Connection, schema: str | None, start: str, target: str) -> Step:
        """Run the scripts of the :meth:`linear` path ``start -> target`` and nothing else.

        The caller has already moved the version row to ``target`` in this transaction (with
        its own bookkeeping, in one round trip): Alembic's per-step version writes are skipped.
        """
        steps = self.linear(start, target)
        if steps is None:
            raise MigrationError(f"{start} -> {target} is not a linear path")
        with self._environment(conn, schema, target) as (env, settings):
            self._run_known(env, settings, None, steps)
        return _logged(Step(start, target), schema)

    def downgrade(
        self,
        conn: Connection,
        schema: str | None,
        target: str,
        *,
        heads: Collection[str] | None = None,
    ) -> Step:
        """Downgrade ``schema`` to ``target`` within ``conn``'s current transaction."""
        return self._run(
            conn, schema, target, lambda rev: downgrade_revs(self.script, target, rev),
            heads=heads,
        )

    def stamp(self, conn: Connection, schema: str | None, target: str = "heads") -> Step:
        """Record ``target`` in ``schema``'s version table without running migrations."""
        return self._run(
            conn, schema, target, lambda rev: stamp_revs(self.script, target, rev), stamp=True
        )

    def sql(self, schema: str | None, target: str = "heads", start: str | None = None) -> str:
        """The SQL an upgrade of ``schema`` from ``start`` to ``target`` would run (offline)."""
        buf = io.StringIO()
        destination = f"{start}:{target}" if start else target
        with self._lock, EnvironmentContext(
            self.config,
            self.script,
            fn=lambda rev, _ctx: upgrade_revs(self.script, target, rev),
            as_sql=True,
            starting_rev=start,
            destination_rev=destination,
        ) as env:
            env.configure(
                dialect_name="postgresql",
                output_buffer=buf,
                version_table=self.version_table,
                version_table_schema=schema,
                transactional_ddl=True,
            )
            env.run_migrations()
        return buf.getvalue()

    def _run_known(
        self,
        env: EnvironmentContext,
        settings: dict[str, Any],
        heads: tuple[str, ...] | None,
        steps: list[Any] | None = None,
    ) -> None:
        """``env.configure(**settings); env.run_migrations()`` starting from ``heads``.

        With ``steps``, only their scripts run: no version-table read or write.

        ``EnvironmentContext.configure`` builds a :class:`MigrationContext` (its version
        ``Table`` included) that we would throw away: the options it fills in are kept from
        the first run and reused, so each run builds one context, ours.
        """
        if self._online_opts is None:
            env.configure(**settings)
            opts = env.get_context().opts
            self._online_opts = dict(opts)
        else:
            opts = env.context_opts  # what configure() fills in: Alembic's defaults, then ours
            for key, value in self._online_opts.items():
                opts.setdefault(key, value)
            opts["version_table_schema"] = settings["version_table_schema"]
            opts["on_version_apply"] = (settings["on_version_apply"],)
        conn: Connection = settings["connection"]
        ctx = KnownHeadsContext(conn.dialect, conn, opts, env)
        routes = conn.get_execution_options().get("schema_translate_map") or {}
        schema = settings["version_table_schema"]
        if schema is not None and routes.get(TENANT_SCHEMA) == schema:
            # One version Table for every tenant, named by the placeholder schema that the
            # connection routes to the tenant's: its statements compile once, not per tenant.
            if self._routed_version is None:
                self._routed_version = ctx.impl.version_table_impl(
                    version_table=self.version_table,
                    version_table_schema=TENANT_SCHEMA,
                    version_table_pk=opts.get("version_table_pk", True),
                )
            ctx.use_version_table(self._routed_version)
        ctx.known_heads = heads
        # what EnvironmentContext.run_migrations does, with our context (Alembic has no hook
        # for the context class); set on the environment so ``context.get_context()`` in a
        # migration script returns it
        set_migration_context(env, ctx)
        with Operations.context(ctx):
            if steps is None:
                ctx.run_migrations()
                return
            ctx.impl.start_migrations()
            for step in steps:  # MigrationContext.run_migrations without the version writes
                _alembic_log.info("Running %s", step)
                step.migration_fn()

    def _run(
        self,
        conn: Connection,
        schema: str | None,
        target: str,
        revs: Callable[[Any], Any],
        *,
        stamp: bool = False,
        heads: Collection[str] | None = None,
    ) -> Step:
        before: list[str | None] = []
        applied: list[Collection[str]] = []  # heads after each step: no re-read of the table

        def fn(rev: Any, _ctx: Any) -> Any:
            before.append(_one(rev) if isinstance(rev, tuple) else rev)
            return revs(rev)

        def track(
            ctx: MigrationContext, step: Any, heads: Collection[str], run_args: Mapping[str, Any]
        ) -> None:
            applied.append(heads)

        try:
            with self._environment(conn, schema, target, fn, track) as (env, settings):
                if heads is None:
                    env.configure(**settings)
                    env.run_migrations()
                else:
                    self._run_known(env, settings, tuple(heads))
        except CommandError as exc:
            raise MigrationError(str(exc)) from exc
        start = before[0] if before else None
        after = _one(applied[-1]) if applied else start
        return _logged(Step(start, after), schema, "stamped" if stamp else "migrated")

    @contextmanager
    def _environment(
        self,
        conn: Connection,
        schema: str | None,
        target: str,
        fn: Callable[[Any, Any], Any] | None = None,
        on_version_apply: Callable[..., None] | None = None,
    ) -> Iterator[tuple[EnvironmentContext, dict[str, Any]]]:
        """Alembic's environment for one run (exclusive in this process), with its settings."""
        with self._lock, EnvironmentContext(
            self.config, self.script, fn=fn, destination_rev=target
        ) as env:
            yield env, dict(
                connection=conn,
                version_table=self.version_table,
                version_table_schema=schema,
                transactional_ddl=True,
                on_version_apply=on_version_apply or _ignore,
            )


def _ignore(**_: Any) -> None:
    """An ``on_version_apply`` callback that does nothing."""


def _logged(step: Step, schema: str | None, verb: str = "migrated") -> Step:
    if step.changed:
        log.info("%s %s: %s -> %s", verb, schema or "default schema", step.before or "base",
                 step.after or "base")
    return step

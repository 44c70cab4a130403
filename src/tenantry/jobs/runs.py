"""Named runs of :meth:`~tenantry.Tenancy.each`: each tenant's outcome in ``public.tenantry_runs``
so that running the same run id again skips the tenants already done.

The table is made with the registry's (on its metadata, by :meth:`TenantStore.begin`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from ..core.registry import metadata
from ..errors import ConfigurationError
from ..models import SHARED_SCHEMA

#: The longest run id accepted (it is a key: short and human-chosen, e.g. ``nightly-2026-12-04``).
MAX_RUN_ID = 200

runs = sa.Table(
    "tenantry_runs",
    metadata,
    sa.Column("run", sa.Text, primary_key=True),
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    schema=SHARED_SCHEMA,
)


def checked_run_id(run: object) -> str:
    """``run`` if it is a usable run id (a non-empty string of printable characters)."""
    if not isinstance(run, str) or not run.strip() or not run.isprintable() \
            or len(run) > MAX_RUN_ID:
        raise ConfigurationError(
            f"run must be a non-empty printable string of at most {MAX_RUN_ID} characters, "
            f"not {run!r}"
        )
    return run


def done(conn: Connection, run: str) -> set[str]:
    """The tenants whose outcome in ``run`` is ``ok``."""
    query = sa.select(runs.c.tenant).where(runs.c.run == run, runs.c.outcome == "ok")
    return set(conn.scalars(query))


def record(conn: Connection, run: str, tenant: str, outcome: str, error: str | None) -> None:
    """Record (or replace) ``tenant``'s outcome in ``run``, in ``conn``'s transaction, which
    commits without waiting for the WAL flush: a record lost to a server crash only means that
    tenant runs again on resume, as if the process had died before recording it."""
    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    statement = insert(runs).values(run=run, tenant=tenant, outcome=outcome, error=error)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[runs.c.run, runs.c.tenant],
        set_={"outcome": statement.excluded.outcome, "error": statement.excluded.error,
              "finished_at": sa.func.now()},
    ))


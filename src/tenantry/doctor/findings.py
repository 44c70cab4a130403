"""What the doctor reports: typed findings, the report, and helpers naming storage."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from ..core.registry import Location, State

#: States a tenant is only in while an operation runs: seen unlocked, the operation died.
TRANSIENT_STATES = frozenset({State.PROVISIONING, State.MIGRATING, State.DROPPING})
#: Seconds doctor waits for a server to accept a connection before reporting it unreachable.
PROBE_TIMEOUT = 10


class Problem(enum.StrEnum):
    """What kind of inconsistency a finding reports."""

    ORPHAN_STORAGE = "orphan_storage"  # a schema with the tenant prefix, not registered
    MISSING_STORAGE = "missing_storage"  # a registered tenant whose schema is gone
    MISSING_SCHEMA = "missing_schema"  # a database tenant's database lacks its schema
    MISSING_TABLES = "missing_tables"  # tables every other tenant at its revision has
    STUCK = "stuck"  # provisioning/migrating/dropping, and nobody is working on it
    FAILED = "failed"  # the last migration failed
    REVISION_MISMATCH = "revision_mismatch"  # alembic_version in the schema != registry
    BEHIND_HEAD = "behind_head"  # registered revision is not the head
    ROLE_MISSING = "role_missing"  # strict mode: the tenant has no role
    ROLE_GRANTS = "role_grants"  # strict mode: role not in the group / not settable by the app
    OWNER_MISMATCH = "owner_mismatch"  # strict mode: schema or objects not owned by the role
    ORPHAN_ROLE = "orphan_role"  # strict mode: a tenant role with no tenant
    # subscription, slot, publication or marker table of a killed online move
    REPLICATION_LEFTOVER = "replication_leftover"
    CONNECTIONS_DISALLOWED = "connections_disallowed"  # a tenant database refusing connections
    TEMPLATE_LEFTOVER = "template_leftover"  # an unfinished or unused template database
    UNREGISTERED_COPY = "unregistered_copy"  # a copy of a tenant registered elsewhere
    SERVER_UNREACHABLE = "server_unreachable"  # a configured server cannot be reached
    UNREADABLE = "unreadable"  # a tenant's storage could not be examined
    UNFINISHED = "unfinished"  # an operation's intent, and nobody is running it


ROLE_PROBLEMS = {"role_missing": Problem.ROLE_MISSING, "owner_mismatch": Problem.OWNER_MISMATCH}


@dataclass(frozen=True)
class Finding:
    """One inconsistency, and the repair ``fix=True`` would make (``fix`` empty: none)."""

    problem: Problem
    tenant: str | None
    subject: str
    detail: str
    fix: str = ""
    destructive: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problem": self.problem.value}


@dataclass
class DoctorReport:
    """What the doctor found (after any repairs), what it fixed and what it could not."""

    findings: list[Finding]
    fixed: list[Finding] = field(default_factory=list)
    errors: list[tuple[Finding, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "findings": [f.as_dict() for f in self.findings],
            "fixed": [f.as_dict() for f in self.fixed],
            "errors": [{**f.as_dict(), "error": e} for f, e in self.errors],
        }


def probe_server(engine: Engine) -> None:
    """Connect to ``engine``'s database once, giving up after :data:`PROBE_TIMEOUT` seconds
    (libpq waits forever by default for a host that drops packets)."""
    probe = sa.create_engine(
        engine.url, poolclass=NullPool, connect_args={"connect_timeout": PROBE_TIMEOUT}
    )
    try:
        with probe.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        probe.dispose()


def storage_place(location: Location) -> tuple[str | None, str, str | None]:
    """What identifies storage: server (main if unset), database and schema."""
    if location.database is None:  # a schema of the main database
        return (None, location.schema, None)
    return (location.server or "main", location.schema, location.database)


def describe_storage(location: Location | None) -> str:
    """``location`` in words, for findings."""
    if location is None:
        return "nowhere"
    if location.database is None:
        return f"schema {location.schema!r} of the main database"
    return (f"schema {location.schema!r} of database {location.database!r} on server "
            f"{location.server or 'main'}")


def database_place(location: Location) -> tuple[str | None, str | None]:
    """What identifies a database: server (main if unset) and name (``None``: a schema)."""
    if location.database is None:
        return (None, None)
    return (location.server or "main", location.database)


def known_revision(stream: Any, revision: str) -> bool:
    """Whether ``stream``'s scripts know ``revision``."""
    try:
        return stream.script.get_revision(revision) is not None
    except Exception:  # alembic raises several types for unknown revisions
        return False

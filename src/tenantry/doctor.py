"""``tenantry doctor``: compare the registry with what exists, and repair what is safe.

Findings are typed (:class:`Problem`) and each says how it would be fixed. Fixes that cannot
lose data (re-running a migration, deleting the registry row of storage that is already gone,
registering an orphan schema that carries a known revision, making a missing strict-mode role,
removing what an interrupted operation left when :mod:`tenantry.leftovers` proves it holds
nothing of value, finishing or undoing an operation recorded by an intent) are *safe*; fixes
that destroy data (dropping an orphan schema, finishing an interrupted drop) are
*destructive*, run only when asked for explicitly (``destructive=True``, CLI ``--yes``), and
only with proof (:mod:`tenantry.proof`): the storage holds no rows, or the same rows as the
registered copy. Without proof the finding has no fix and says what to run. A server that is
down, a database that refuses connections or storage that cannot be read is a finding of its
own: the rest of the fleet is examined all the same.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import DropSchema

from . import intents, proof, recovery, registry, shapes
from .errors import InvalidTenantName, TenantryError
from .intents import Intent, Operation
from .leftovers import Kind, Leftover, Leftovers, first_line, place_of
from .names import quote, validate_name
from .registry import Location, State, TenantInfo
from .strategies.database import DatabaseStrategy
from .strict import RoleProblem

if TYPE_CHECKING:
    from .tenancy import Tenancy

log = logging.getLogger("tenantry.doctor")

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


_ROLE_PROBLEMS = {"role_missing": Problem.ROLE_MISSING, "owner_mismatch": Problem.OWNER_MISMATCH}


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


class Doctor:
    """Examines one :class:`~tenantry.Tenancy` and repairs it."""

    def __init__(self, tenancy: Tenancy) -> None:
        self.tenancy = tenancy
        self._orphans: dict[str, Location] = {}  # orphan storage by subject (examine)
        self._down: set[str] = set()  # servers that cannot be reached (examine)
        self._shut: set[tuple[str, str | None]] = set()  # databases refusing connections
        self._leftovers: dict[Finding, Leftover] = {}  # what each leftover finding is
        self._helper = Leftovers(tenancy, {})
        self._tables: dict[str, set[str]] = {}  # tenant -> its tables (examine)
        self._busy: set[tuple[str | None, str | None]] = set()  # databases of pending intents

    # -- examination ---------------------------------------------------------------------

    def examine(self) -> list[Finding]:
        """Every inconsistency between the registry and the database, in a stable order."""
        t = self.tenancy
        findings: list[Finding] = []
        t.setup()
        with t.engine.begin() as conn:
            infos = registry.all_tenants(conn)
            pending = intents.all_intents(conn)
            involved = {name for intent in pending for name in intent.names}
            self._busy = {_database_place(loc) for i in pending for loc in (i.source, i.dest)
                          if loc is not None and loc.database is not None}  # intents' databases
            servers = self._reachable(infos, findings)
            findings.extend(self._find_leftovers(conn, infos, servers))
            orphans = self._orphan_storage(conn, infos, pending)  # first: _tenant reads them
            findings.extend(self._unfinished(conn, pending))
            self._tables = {}
            for info in infos:
                if info.name not in involved:  # the intent's finding covers it
                    findings.extend(self._examined(conn, info))
            findings.extend(self._lost_tables(infos, findings))
            findings.extend(orphans)
            findings.extend(self._orphan_roles(conn, infos))
        return findings

    def _reachable(self, infos: list[TenantInfo], findings: list[Finding]) -> dict[str, Engine]:
        """The servers that answer; a finding for each that does not."""
        self._down = set()
        up = {}
        for server, engine in self._servers().items():
            try:
                if server != "main":  # the main server answered already (the registry)
                    _probe(engine)
            except sa.exc.DBAPIError as exc:
                self._down.add(server)
                held = [i.name for i in infos
                        if i.location.database and place_of(i.location)[0] == server]
                findings.append(Finding(
                    Problem.SERVER_UNREACHABLE, None, server,
                    f"server {server!r} cannot be reached ({first_line(exc)}); its "
                    f"{len(held)} tenant(s) were not examined: {', '.join(held[:20]) or '-'}"
                    f"{' ...' if len(held) > 20 else ''}: needs you (start it, or fix its URL)",
                ))
            else:
                up[server] = engine
        return up

    def _find_leftovers(
        self, conn: Connection, infos: list[TenantInfo], servers: dict[str, Engine]
    ) -> list[Finding]:
        self._helper = Leftovers(self.tenancy, servers)
        found = [lo for lo in self._helper.find(conn, infos, self._stored(conn) or [])
                 if (lo.server, lo.subject) not in self._busy]  # an intent's finding covers it
        self._shut = {(lo.server, lo.subject) for lo in found
                      if lo.kind is Kind.CONNECTIONS_DISALLOWED}
        self._leftovers = {
            Finding(Problem(lo.kind.value), lo.tenant, lo.subject, lo.detail, lo.fix): lo
            for lo in found
        }
        return list(self._leftovers)

    def _examined(self, conn: Connection, info: TenantInfo) -> list[Finding]:
        """The tenant's findings; none where a server or database finding covers it already,
        and an ``unreadable`` one when its storage cannot be examined."""
        if self._unreachable(info.location):
            return []
        try:
            with conn.begin_nested():
                return self._tenant(conn, info)
        except (sa.exc.DBAPIError, TenantryError) as exc:
            return [Finding(Problem.UNREADABLE, info.name, info.schema,
                            f"cannot be examined: {first_line(exc)}: needs you")]

    def _unreachable(self, location: Location) -> bool:
        """Whether ``location`` is on a server that is down or a database refusing
        connections (both reported on their own)."""
        if location.database is None:
            return False
        server, database = place_of(location)
        return server in self._down or (server, database) in self._shut

    def _unfinished(self, conn: Connection, pending: list[Intent]) -> list[Finding]:
        """Intents of operations that died (nobody holds their tenants' locks)."""
        found = []
        for intent in pending:
            if not all(self._idle(conn, name) for name in intent.names):
                continue  # running
            if intent.operation == Operation.MOVE:
                found.append(Finding(
                    Problem.UNFINISHED, intent.tenant, _describe(intent.dest),
                    f"{intent.describe()}: the registry still points at "
                    f"{_describe(intent.source)}, where its data is; the copy was not finished",
                    f"drop the unfinished copy at {_describe(intent.dest)} (then move again)",
                ))
                continue
            where = self._where(conn, intent)
            if intent.operation == Operation.RENAME:
                fix = f"finish the rename ({intent.command()})"
            elif intent.operation in (Operation.CREATE, Operation.IMPORT):
                fix = ("finish the create: register the database if the tenant's schema was "
                       "built, else drop it (it holds no tenant schema; create the tenant "
                       f"again with: {intent.command()})")
            elif where == "nowhere":
                fix = "finish the drop (its data is already gone)"
            else:
                fix = (f"keep the tenant (the drop removed nothing; to drop it: "
                       f"{intent.command()})")
            found.append(Finding(Problem.UNFINISHED, intent.tenant, where,
                                 f"{intent.describe()}; its data is now {where}", fix))
        return found

    def _where(self, conn: Connection, intent: Intent) -> str:
        """Where the data of ``intent``'s tenant is now (probed, not taken from the step)."""
        strategy = self.tenancy.strategy
        if not isinstance(strategy, DatabaseStrategy):
            return "unknown (not a database strategy)"
        places = []
        for location in (intent.source, intent.dest):
            if location is None or location.database is None or location in places:
                continue
            if strategy.exists(conn, location):
                places.append(location)
        if not places:
            return "nowhere"
        described = []
        for location in places:
            text = f"database {location.database!r} on server {location.server or 'main'}"
            try:
                schemas = strategy.schemas_in(location)
            except sa.exc.OperationalError:
                schemas = []
                text += " (refusing connections)"
            if schemas:
                text += f" (schema {', '.join(schemas)})"
            described.append(text)
        return " and ".join(described)

    def _tenant(self, conn: Connection, info: TenantInfo) -> list[Finding]:
        t, name, schema = self.tenancy, info.name, info.schema
        if not t.strategy.exists(conn, info.location):
            holders = [o for o in self._orphans.values() if o.schema == schema]
            if holders:  # e.g. a rename killed before it recorded an intent
                held = ", ".join(f"{o.database or 'the main database'}" for o in holders)
                return [Finding(Problem.MISSING_STORAGE, name, schema,
                                f"registered ({info.state}) but {schema!r} is not where the "
                                f"registry says; a schema of that name is in {held}: needs "
                                "you (point the registry row at it, or rename it back)")]
            return [Finding(Problem.MISSING_STORAGE, name, schema,
                            f"registered ({info.state}) but {schema!r} does not exist",
                            "delete the registry row (nothing left to lose)")]
        if not self._tables_inside(conn, info):
            return [Finding(Problem.MISSING_SCHEMA, name, schema,
                            f"database {info.location.database} exists but holds no schema "
                            f"{schema!r}: needs you (look for the tenant's tables in it)")]
        found: list[Finding] = []
        if info.state in TRANSIENT_STATES and self._idle(conn, name):
            detail = f"state {info.state} but no operation holds the tenant's lock"
            if info.state != State.DROPPING:
                found.append(Finding(Problem.STUCK, name, schema, detail,
                                     "re-run its migrations to the head"))
            elif self._empty(conn, info.location):  # the proof a drop needs
                found.append(Finding(Problem.STUCK, name, schema, f"{detail}; it holds no rows",
                                     "finish the drop", destructive=True))
            else:
                found.append(Finding(Problem.STUCK, name, schema, f"{detail}; it still holds "
                                     f"rows: needs you (to drop it: tenantry drop {name} --yes)"))
            return found
        if info.state == State.FAILED:
            found.append(Finding(Problem.FAILED, name, schema, info.error or "migration failed",
                                 "re-run its migrations to the head"))
        stream = t.tenant_stream
        if stream is not None and info.state == State.READY:
            actual = self._revision(conn, info)
            if actual != info.revision:
                found.append(Finding(
                    Problem.REVISION_MISMATCH, name, schema,
                    f"registry says {info.revision or 'base'}, the schema's version table "
                    f"says {actual or 'base'}",
                    "record the schema's revision in the registry",
                ))
            elif info.revision != stream.head:
                found.append(Finding(
                    Problem.BEHIND_HEAD, name, schema,
                    f"at {info.revision or 'base'}, head is {stream.head}",
                    "migrate it to the head",
                ))
        if t.strict_roles is not None:
            for p in self._role_problems(conn, info):
                problem = _ROLE_PROBLEMS.get(p.kind, Problem.ROLE_GRANTS)
                found.append(Finding(problem, name, t.strict_roles.role(conn, info.location),
                                     p.detail, "create/grant the role and give it the schema"))
        return found

    def _tables_inside(self, conn: Connection, info: TenantInfo) -> bool:
        """Whether the tenant's schema exists (noting its tables, for :meth:`_lost_tables`)."""
        strategy = self.tenancy.strategy
        if info.location.database is None or not isinstance(strategy, DatabaseStrategy):
            tables = shapes.tables_in(conn, info.schema)
        else:
            with strategy.engine(info.location).connect() as tenant:
                tables = shapes.tables_in(tenant, info.schema)
        if tables is None:
            return False
        self._tables[info.name] = tables
        return True

    def _lost_tables(self, infos: list[TenantInfo], findings: list[Finding]) -> list[Finding]:
        """Tenants without a table every other ready tenant at their revision has (tenants
        whose registered revision is in doubt are left out)."""
        doubtful = {f.tenant for f in findings if f.problem == Problem.REVISION_MISMATCH}
        ready = {i.name: i for i in infos if i.state == State.READY
                 and i.name in self._tables and i.name not in doubtful}
        tables = {name: self._tables[name] for name in ready}
        revisions = {name: info.revision for name, info in ready.items()}
        return [
            Finding(Problem.MISSING_TABLES, name, ready[name].schema,
                    f"lacks {', '.join(lacking)}, which the {others} other tenant(s) at "
                    f"revision {revisions[name] or 'base'} have (dropped by hand?): needs you "
                    "(restore it from a backup or an export)")
            for name, (lacking, others) in shapes.missing(tables, revisions).items()
        ]

    def _role_problems(self, conn: Connection, info: TenantInfo) -> list[RoleProblem]:
        """Strict-mode problems; a database tenant's schema is checked in its own database."""
        roles = self.tenancy._strict()
        if info.location.database is None:
            return roles.check(conn, info.location)
        with self.tenancy.strategy.storage(conn, info.name, info.location) as tenant:
            return roles.check(tenant, info.location)

    def _idle(self, conn: Connection, name: str) -> bool:
        with conn.begin_nested():
            return registry.try_lock_tenant(conn, name)

    def _revision(self, conn: Connection, info: TenantInfo) -> str | None:
        t = self.tenancy
        assert t.tenant_stream is not None
        with conn.begin_nested(), t.strategy.storage(conn, info.name, info.location) as tenant:
            return t.tenant_stream.current(tenant, info.schema)

    def _stored(self, conn: Connection) -> list[Location] | None:
        """Storage that looks like a tenant's; ``None`` when the strategy cannot list it.

        Database strategy: the databases with the prefix on every configured server (the
        prefix is the Tenancy's on a server: tenant database names would collide otherwise).
        """
        t = self.tenancy
        kind = t.strategy.kind
        if kind not in ("schema", "database", "hybrid"):  # hybrid: schemas and databases
            return None
        found: list[Location] = []
        if kind != "database":
            names = conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars()
            found += [Location(schema=n) for n in names if _tenant_name(n, t.prefix) is not None]
        if isinstance(t.strategy, DatabaseStrategy):
            found += self._stored_databases(t.strategy)
        return found

    def _stored_databases(self, strategy: DatabaseStrategy) -> list[Location]:
        found = []
        for server in strategy.servers:
            if server in self._down:
                continue
            with strategy.admin(server).connect() as admin:
                names = admin.execute(sa.text("SELECT datname FROM pg_database")).scalars()
                found += [
                    Location(schema=n, database=n, server=server)
                    for n in names if _tenant_name(n, self.tenancy.prefix) is not None
                ]
        return found

    def _stored_revision(self, conn: Connection, location: Location) -> str | None:
        stream = self.tenancy.tenant_stream
        assert stream is not None
        if location.database is None:
            with conn.begin_nested():
                return stream.current(conn, location.schema)
        name = location.schema
        with self.tenancy.strategy.storage(conn, name, location) as tenant:
            return stream.current(tenant, location.schema)

    def _orphan_storage(
        self, conn: Connection, infos: list[TenantInfo], pending: list[Intent]
    ) -> list[Finding]:
        stored = self._stored(conn)
        if stored is None:
            return []
        known = {_place(i.location) for i in infos}
        main_database = self.tenancy.engine.url.database
        known |= {_place(Location(schema=loc.schema)) for i in pending for loc in (i.dest,)
                  if loc is not None and loc.database == main_database}  # a demotion's copy
        registered = {i.name: i for i in infos}
        found = []
        stream = self.tenancy.tenant_stream
        for location in stored:
            if _place(location) in known or self._unreachable(location) or (
                location.database is not None and _database_place(location) in self._busy
            ):
                continue
            name = _tenant_name(location.database or location.schema, self.tenancy.prefix)
            location = self._inner_schema(location)
            self._orphans[location.database or location.schema] = location
            subject = location.database or location.schema
            what = "database" if location.database is not None else "schema"
            if name in registered:
                continue  # a copy of a tenant registered elsewhere: a leftover (UNREGISTERED_COPY)
            revision = None
            if stream is not None:
                try:
                    revision = self._stored_revision(conn, location)
                except (sa.exc.DBAPIError, TenantryError) as exc:
                    found.append(Finding(Problem.UNREADABLE, name, location.schema,
                                         f"not registered, and cannot be examined: "
                                         f"{first_line(exc)}: needs you"))
                    continue
            if revision is not None and stream is not None and _known(stream, revision):
                found.append(Finding(
                    Problem.ORPHAN_STORAGE, name, subject,
                    f"not registered; its version table says {revision}",
                    f"register it as tenant {name!r}",
                ))
            elif self._empty(conn, location):
                found.append(Finding(
                    Problem.ORPHAN_STORAGE, name, subject,
                    "not registered, not at a known revision, and holds no rows",
                    f"drop the {what} (nothing in it)", destructive=True,
                ))
            else:
                found.append(self._needs_you(
                    name, location, "not registered and not at a known revision"))
        return found

    def _needs_you(self, name: str | None, location: Location, why: str) -> Finding:
        """Storage doctor may not drop (no proof it is a duplicate or empty): the command."""
        if location.database is not None:
            server = location.server or "main"
            command = f"DROP DATABASE {quote(location.database)} WITH (FORCE)  -- server {server}"
        else:
            command = f"DROP SCHEMA {quote(location.schema)} CASCADE"
        return Finding(
            Problem.ORPHAN_STORAGE, name, location.database or location.schema,
            f"{why}: needs you. Register it or keep it; to drop it, after checking: {command}",
        )

    def _inner_schema(self, location: Location) -> Location:
        """An orphan database's location with the schema it really holds (a killed rename
        leaves the old schema name in the new database)."""
        strategy = self.tenancy.strategy
        if location.database is None or not isinstance(strategy, DatabaseStrategy):
            return location
        try:
            schemas = strategy.schemas_in(location)
        except sa.exc.OperationalError:  # refusing connections: reported as it is
            return location
        if location.schema in schemas or len(schemas) != 1:
            return location
        return Location(schema=schemas[0], database=location.database, server=location.server)

    def _fingerprint(self, conn: Connection, location: Location) -> proof.Fingerprint | None:
        """``location``'s fingerprint; ``None`` when it cannot be read."""
        try:
            if location.database is None:
                with conn.begin_nested():
                    return proof.fingerprint(conn, location.schema)
            with self.tenancy.strategy.engine(location).connect() as tenant:
                return proof.fingerprint(tenant, location.schema)
        except sa.exc.SQLAlchemyError:
            return None

    def _empty(self, conn: Connection, location: Location) -> bool:
        """Whether ``location`` holds no rows (the version table aside)."""
        stream = self.tenancy.tenant_stream
        ignore = frozenset(
            {f"{location.schema}.{stream.version_table}"} if stream is not None else ()
        )
        found = self._fingerprint(conn, location)
        return found is not None and proof.rows(found, ignore=ignore) == 0

    def _servers(self) -> dict[str, Engine]:
        """An AUTOCOMMIT engine on every server of the Tenancy."""
        strategy = self.tenancy.strategy
        if isinstance(strategy, DatabaseStrategy):
            return {server: strategy.admin(server) for server in strategy.servers}
        return {"main": self.tenancy.engine.execution_options(isolation_level="AUTOCOMMIT")}

    def _orphan_roles(self, conn: Connection, infos: list[TenantInfo]) -> list[Finding]:
        roles = self.tenancy.strict_roles
        if roles is None:
            return []
        expected = {roles.role(conn, i.location) for i in infos}
        stored = self._stored(conn) or []
        expected |= {roles.role(conn, loc) for loc in stored}  # orphan schemas keep theirs
        return [
            Finding(Problem.ORPHAN_ROLE, None, role, "a tenant role without a tenant",
                    "drop the role (it owns nothing)")
            for role in roles.roles(conn) if role not in expected
        ]

    # -- repair --------------------------------------------------------------------------

    def repair(self, *, destructive: bool = False, rounds: int = 3) -> DoctorReport:
        """Apply safe fixes (and destructive ones if ``destructive``) until nothing changes."""
        fixed: list[Finding] = []
        errors: list[tuple[Finding, str]] = []
        findings = self.examine()
        for _ in range(rounds):
            todo = [f for f in findings if f.fix and (destructive or not f.destructive)
                    and f not in fixed and all(f != e for e, _ in errors)]
            if not todo:
                break
            for finding in todo:
                try:
                    self._fix(finding)
                except (TenantryError, sa.exc.SQLAlchemyError) as exc:
                    log.error("doctor could not fix %s %s: %s",
                              finding.problem, finding.subject, exc)
                    errors.append((finding, f"{type(exc).__name__}: {exc}".splitlines()[0]))
                else:
                    log.info("doctor fixed %s %s: %s", finding.problem, finding.subject,
                             finding.fix, extra={"tenant": finding.tenant})
                    fixed.append(finding)
            findings = self.examine()
        return DoctorReport(findings, fixed, errors)

    def _fix(self, f: Finding) -> None:
        t = self.tenancy
        actions: dict[Problem, Callable[[Finding], None]] = {
            Problem.MISSING_STORAGE: self._forget,
            Problem.STUCK: self._finish,
            Problem.FAILED: self._remigrate,
            Problem.BEHIND_HEAD: self._remigrate,
            Problem.REVISION_MISMATCH: self._record_revision,
            Problem.ROLE_MISSING: self._provision,
            Problem.ROLE_GRANTS: self._provision,
            Problem.OWNER_MISMATCH: self._provision,
            Problem.ORPHAN_STORAGE: self._adopt_or_drop,
            Problem.ORPHAN_ROLE: self._drop_role,
            Problem.REPLICATION_LEFTOVER: self._fix_leftover,
            Problem.CONNECTIONS_DISALLOWED: self._fix_leftover,
            Problem.TEMPLATE_LEFTOVER: self._fix_leftover,
            Problem.UNREGISTERED_COPY: self._fix_leftover,
            Problem.UNFINISHED: self._finish_intent,
        }
        actions[f.problem](f)
        t._forget(f.tenant or "")

    def _fix_leftover(self, f: Finding) -> None:
        self._helper.fix(self._leftovers[f])

    def _forget(self, f: Finding) -> None:
        assert f.tenant is not None
        t = self.tenancy
        with self.tenancy.engine.begin() as conn:
            registry.lock_tenants(conn, [f.tenant])
            info = registry.get(conn, f.tenant)
            if info is None or t.strategy.exists(conn, info.location):
                return  # changed meanwhile
            if t.strict_roles is not None:
                with t._role_connection(conn, info.location) as roles_conn:
                    t.strict_roles.drop(roles_conn, f.tenant, info.location)
            registry.delete(conn, f.tenant)

    def _finish_intent(self, f: Finding) -> None:
        """Roll an unfinished operation forward (a drop that removed nothing: back)."""
        assert f.tenant is not None
        t = self.tenancy
        with t.engine.begin() as conn:
            intent = intents.find(conn, f.tenant)
        if intent is None:
            return  # finished meanwhile
        if intent.operation == Operation.RENAME:
            assert intent.target is not None
            t.rename_tenant(intent.tenant, intent.target)
        elif intent.operation in (Operation.CREATE, Operation.IMPORT):
            strategy = t.strategy
            assert isinstance(strategy, DatabaseStrategy) and intent.dest is not None
            with t.engine.begin() as conn:
                registry.lock_tenants(conn, intent.names)
                if registry.get(conn, intent.tenant) is not None:
                    intents.clear(conn, intent.tenant)
                    return
                recovery.resume_create(strategy, t.tenant_stream, t.engine, conn, intent.tenant,
                                       intent.dest)
        elif intent.operation == Operation.MOVE:
            assert isinstance(t.strategy, DatabaseStrategy)
            with t.engine.begin() as conn:
                registry.lock_tenants(conn, intent.names)
                info = registry.get(conn, intent.tenant)
                if info is None:
                    intents.clear(conn, intent.tenant)
                else:
                    recovery.undo_move(t.strategy, intent, info.location)
        else:
            with t.engine.begin() as conn:
                registry.lock_tenants(conn, intent.names)
                info = registry.get(conn, intent.tenant)
                if info is not None and t.strategy.exists(conn, info.location):
                    intents.clear(conn, intent.tenant)  # the data is all there: keep it
                    return
            t.drop_tenant(intent.tenant, confirm=True)  # nothing left to lose
            intents.discard(t.engine, intent.tenant)

    def _finish(self, f: Finding) -> None:
        assert f.tenant is not None
        if f.destructive:
            self.tenancy.drop_tenant(f.tenant, confirm=True)
        else:
            self._remigrate(f)

    def _remigrate(self, f: Finding) -> None:
        assert f.tenant is not None
        self.tenancy.migrate_tenant(f.tenant)

    def _record_revision(self, f: Finding) -> None:
        assert f.tenant is not None
        with self.tenancy.engine.begin() as conn:
            registry.lock_tenants(conn, [f.tenant])
            info = registry.get(conn, f.tenant)
            if info is not None:
                registry.update(conn, f.tenant, revision=self._revision(conn, info))

    def _provision(self, f: Finding) -> None:
        assert f.tenant is not None
        t = self.tenancy
        roles = t._strict()
        roles.ensure_group()
        with self.tenancy.engine.begin() as conn:
            registry.lock_tenants(conn, [f.tenant])
            info = registry.get(conn, f.tenant)
            if info is not None:
                with t.strategy.storage(conn, f.tenant, info.location) as tenant:
                    roles.provision(tenant, f.tenant, info.location)

    def _adopt_or_drop(self, f: Finding) -> None:
        assert f.tenant is not None
        t = self.tenancy
        location = self._orphans.get(f.subject, Location(schema=f.subject))
        if f.destructive:  # the proof was taken when examined: take it again, under the lock
            with t.engine.begin() as conn:
                registry.lock_tenants(conn, [f.tenant])
                if not self._still_proven(conn, f.tenant, location):
                    log.warning("doctor kept %s: it is no longer a proven duplicate or empty",
                                f.subject)
                    return
        if location.database is not None:
            with self.tenancy.engine.begin() as conn:
                registry.lock_tenants(conn, [f.tenant])
                if not self._still_orphan(conn, f, location):
                    return
                self._adopt_or_drop_database(conn, f, location)
            if t.strict_roles is not None and not f.destructive:
                self._provision(f)
            return
        with self.tenancy.engine.begin() as conn:
            registry.lock_tenants(conn, [f.tenant])
            if not self._still_orphan(conn, f, location):
                return
            if f.destructive:
                conn.execute(DropSchema(f.subject, cascade=True, if_exists=True))
                if t.strict_roles is not None:
                    t.strict_roles.drop(conn, f.tenant, location)
                log.warning("doctor dropped orphan schema %s", f.subject)
                return
            assert t.tenant_stream is not None
            revision = t.tenant_stream.current(conn, f.subject)
            registry.insert(conn, f.tenant, t.strategy.kind, location, State.READY, revision)
            log.info("doctor registered orphan schema %s as tenant %s", f.subject, f.tenant,
                     extra={"tenant": f.tenant})
        if t.strict_roles is not None:
            self._provision(f)

    def _still_proven(self, conn: Connection, tenant: str, location: Location) -> bool:
        """Under the tenant's lock: still unregistered and still empty (copies of registered
        tenants are :mod:`tenantry.leftovers`')."""
        return registry.get(conn, tenant) is None and self._empty(conn, location)

    @staticmethod
    def _still_orphan(conn: Connection, f: Finding, location: Location) -> bool:
        """Under the tenant's lock: unregistered, or (to drop) registered elsewhere."""
        assert f.tenant is not None
        info = registry.get(conn, f.tenant)
        if info is None:
            return True
        return f.destructive and _place(info.location) != _place(location)

    def _adopt_or_drop_database(self, conn: Connection, f: Finding, location: Location) -> None:
        """Orphan tenant database: drop it (destructive) or register it (under the lock)."""
        assert f.tenant is not None and location.database is not None
        t = self.tenancy
        strategy = t.strategy
        assert isinstance(strategy, DatabaseStrategy)
        if f.destructive:
            strategy.drop_database(strategy._server(location), location.database)
            if t.strict_roles is not None:
                with t._role_connection(conn, location) as roles_conn:
                    t.strict_roles.drop(roles_conn, f.tenant, location)
            log.warning("doctor dropped orphan database %s", location.database)
            return
        revision = self._stored_revision(conn, location)
        registry.insert(conn, f.tenant, strategy.kind, location, State.READY, revision)
        log.info("doctor registered orphan database %s as tenant %s", location.database,
                 f.tenant, extra={"tenant": f.tenant})

    def _drop_role(self, f: Finding) -> None:
        with self.tenancy.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {quote(f.subject)}")


def _probe(engine: Engine) -> None:
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


def _place(location: Location) -> tuple[str | None, str, str | None]:
    """What identifies storage: server (main if unset), database and schema."""
    if location.database is None:  # a schema of the main database
        return (None, location.schema, None)
    return (location.server or "main", location.schema, location.database)


def _describe(location: Location | None) -> str:
    if location is None:
        return "nowhere"
    if location.database is None:
        return f"schema {location.schema!r} of the main database"
    return (f"schema {location.schema!r} of database {location.database!r} on server "
            f"{location.server or 'main'}")


def _database_place(location: Location) -> tuple[str | None, str | None]:
    """What identifies a database: server (main if unset) and name (``None``: a schema)."""
    if location.database is None:
        return (None, None)
    return (location.server or "main", location.database)


def _tenant_name(schema: str, prefix: str) -> str | None:
    """The tenant name a schema would belong to, or ``None`` when it is not a tenant's."""
    if not schema.startswith(prefix):
        return None
    try:
        return validate_name(schema[len(prefix):], prefix)
    except InvalidTenantName:
        return None


def _known(stream: Any, revision: str) -> bool:
    try:
        return stream.script.get_revision(revision) is not None
    except Exception:  # alembic raises several types for unknown revisions
        return False

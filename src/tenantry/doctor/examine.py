"""The doctor's examination: every inconsistency between the registry and what exists."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..core import intents, registry
from ..core.intents import Intent, Operation
from ..core.registry import State, TenantInfo
from ..errors import TenantryError
from ..provisioning.template import TEMPLATE_SCHEMA
from ..relocation import shapes
from ..strategies.database import DatabaseStrategy
from ..strict.roles import RoleProblem
from .findings import (
    ROLE_PROBLEMS,
    TRANSIENT_STATES,
    Finding,
    Problem,
    database_place,
    describe_storage,
    probe_server,
)
from .leftovers import Kind, Leftovers, first_line, place_of
from .survey import Survey

#: The template's place among the tenants compared by :meth:`Examination._lost_tables` (never
#: a tenant name: names are lowercase letters, digits and underscores).
_TEMPLATE = "<template>"


class Examination(Survey):
    """Examines one Tenancy's core: :meth:`examine` lists what is inconsistent."""

    # -- examination ---------------------------------------------------------------------

    def examine(self) -> list[Finding]:
        """Every inconsistency between the registry and the database, in a stable order."""
        t = self.core
        findings: list[Finding] = []
        with t.store.begin():  # the registry tables exist
            pass
        with t.engine.begin() as conn:
            infos = registry.all_tenants(conn)
            pending = intents.all_intents(conn)
            involved = {name for intent in pending for name in intent.names}
            self._busy = {database_place(loc) for i in pending for loc in (i.source, i.dest)
                          if loc is not None and loc.database is not None}  # intents' databases
            servers = self._reachable(infos, findings)
            findings.extend(self._find_leftovers(conn, infos, servers))
            orphans = self._orphan_storage(conn, infos, pending)  # first: _tenant reads them
            findings.extend(self._unfinished(conn, pending))
            self._tables = {}
            for info in infos:
                if info.name not in involved:  # the intent's finding covers it
                    findings.extend(self._examined(conn, info))
            findings.extend(self._lost_tables(infos, findings, self._template_shape(conn)))
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
                    probe_server(engine)
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
        self._helper = Leftovers(self.core, servers)
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

    def _unfinished(self, conn: Connection, pending: list[Intent]) -> list[Finding]:
        """Intents of operations that died (nobody holds their tenants' locks)."""
        found = []
        for intent in pending:
            if not all(self._idle(conn, name) for name in intent.names):
                continue  # running
            if intent.operation == Operation.MOVE:
                found.append(Finding(
                    Problem.UNFINISHED, intent.tenant, describe_storage(intent.dest),
                    f"{intent.describe()}: the registry still points at "
                    f"{describe_storage(intent.source)}, where its data is; the copy was not "
                    "finished",
                    f"drop the unfinished copy at {describe_storage(intent.dest)} "
                    "(then move again)",
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
        strategy = self.core.strategy
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
        t, name, schema = self.core, info.name, info.schema
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
                problem = ROLE_PROBLEMS.get(p.kind, Problem.ROLE_GRANTS)
                found.append(Finding(problem, name, t.strict_roles.role(conn, info.location),
                                     p.detail, "create/grant the role and give it the schema"))
        return found

    def _tables_inside(self, conn: Connection, info: TenantInfo) -> bool:
        """Whether the tenant's schema exists (noting its tables, for :meth:`_lost_tables`)."""
        strategy = self.core.strategy
        if info.location.database is None or not isinstance(strategy, DatabaseStrategy):
            tables = shapes.tables_in(conn, info.schema)
        else:
            with strategy.engine(info.location).connect() as tenant:
                tables = shapes.tables_in(tenant, info.schema)
        if tables is None:
            return False
        self._tables[info.name] = tables
        return True

    def _template_shape(self, conn: Connection) -> tuple[str | None, set[str]] | None:
        """The template's revision and tables, if there is a template (a reference even for a
        lone tenant at its revision)."""
        stream = self.core.tenant_stream
        if self.core.templates is None or stream is None:
            return None
        tables = shapes.tables_in(conn, TEMPLATE_SCHEMA)
        if tables is None:
            return None
        with conn.begin_nested():
            return stream.current(conn, TEMPLATE_SCHEMA), tables

    def _lost_tables(
        self,
        infos: list[TenantInfo],
        findings: list[Finding],
        template: tuple[str | None, set[str]] | None,
    ) -> list[Finding]:
        """Tenants without a table that every other ready tenant at their revision has, and the
        template if it is at that revision (tenants whose registered revision is in doubt are
        left out)."""
        doubtful = {f.tenant for f in findings if f.problem == Problem.REVISION_MISMATCH}
        ready = {i.name: i for i in infos if i.state == State.READY
                 and i.name in self._tables and i.name not in doubtful}
        tables = {name: self._tables[name] for name in ready}
        revisions = {name: info.revision for name, info in ready.items()}
        if template is not None:
            revisions[_TEMPLATE], tables[_TEMPLATE] = template
        return [
            Finding(Problem.MISSING_TABLES, name, ready[name].schema,
                    f"lacks {', '.join(lacking)}, which the {others} other tenant(s) or "
                    f"template at revision {revisions[name] or 'base'} have (dropped by hand?): "
                    "needs you (restore it from a backup or an export)")
            for name, (lacking, others) in shapes.missing(tables, revisions).items()
            if name != _TEMPLATE
        ]

    def _role_problems(self, conn: Connection, info: TenantInfo) -> list[RoleProblem]:
        """Strict-mode problems; a database tenant's schema is checked in its own database."""
        roles = self.core.strict()
        if info.location.database is None:
            return roles.check(conn, info.location)
        with self.core.strategy.storage(conn, info.name, info.location) as tenant:
            return roles.check(tenant, info.location)

    def _idle(self, conn: Connection, name: str) -> bool:
        with conn.begin_nested():
            return registry.try_lock_tenant(conn, name)

    def _revision(self, conn: Connection, info: TenantInfo) -> str | None:
        t = self.core
        assert t.tenant_stream is not None
        with conn.begin_nested(), t.strategy.storage(conn, info.name, info.location) as tenant:
            return t.tenant_stream.current(tenant, info.schema)

"""The doctor's repairs: safe fixes always, destructive ones when asked and proven."""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import DropSchema

from ..core import intents, registry
from ..core.intents import Operation
from ..core.registry import Location, State
from ..errors import TenantryError
from ..migrations import fleet
from ..names import quote
from ..provisioning import lifecycle
from ..relocation import recovery
from ..strategies.database import DatabaseStrategy
from .examine import Examination
from .findings import (
    DoctorReport,
    Finding,
    Problem,
    storage_place,
)

log = logging.getLogger("tenantry.doctor")


class Doctor(Examination):
    """Examines one Tenancy's core and repairs it."""

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
        t = self.core
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
        t.store.changed(f.tenant or "")

    def _fix_leftover(self, f: Finding) -> None:
        self._helper.fix(self._leftovers[f])

    def _forget(self, f: Finding) -> None:
        assert f.tenant is not None
        t = self.core
        with self.core.engine.begin() as conn:
            registry.lock_tenants(conn, [f.tenant])
            info = registry.get(conn, f.tenant)
            if info is None or t.strategy.exists(conn, info.location):
                return  # changed meanwhile
            if t.strict_roles is not None:
                with t.role_connection(conn, info.location) as roles_conn:
                    t.strict_roles.drop(roles_conn, f.tenant, info.location)
            registry.delete(conn, f.tenant)

    def _finish_intent(self, f: Finding) -> None:
        """Roll an unfinished operation forward (a drop that removed nothing: back)."""
        assert f.tenant is not None
        t = self.core
        with t.engine.begin() as conn:
            intent = intents.find(conn, f.tenant)
        if intent is None:
            return  # finished meanwhile
        if intent.operation == Operation.RENAME:
            assert intent.target is not None
            lifecycle.rename(t, intent.tenant, intent.target)
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
            lifecycle.drop(t, intent.tenant, confirm=True)  # nothing left to lose
            intents.discard(t.engine, intent.tenant)

    def _finish(self, f: Finding) -> None:
        assert f.tenant is not None
        if f.destructive:
            lifecycle.drop(self.core, f.tenant, confirm=True)
        else:
            self._remigrate(f)

    def _remigrate(self, f: Finding) -> None:
        assert f.tenant is not None
        fleet.migrate_tenant(self.core, f.tenant)

    def _record_revision(self, f: Finding) -> None:
        assert f.tenant is not None
        with self.core.engine.begin() as conn:
            registry.lock_tenants(conn, [f.tenant])
            info = registry.get(conn, f.tenant)
            if info is not None:
                registry.update(conn, f.tenant, revision=self._revision(conn, info))

    def _provision(self, f: Finding) -> None:
        assert f.tenant is not None
        t = self.core
        roles = t.strict()
        roles.ensure_group()
        with self.core.engine.begin() as conn:
            registry.lock_tenants(conn, [f.tenant])
            info = registry.get(conn, f.tenant)
            if info is not None:
                with t.strategy.storage(conn, f.tenant, info.location) as tenant:
                    roles.provision(tenant, f.tenant, info.location)

    def _adopt_or_drop(self, f: Finding) -> None:
        assert f.tenant is not None
        t = self.core
        location = self._orphans.get(f.subject, Location(schema=f.subject))
        if f.destructive:  # the proof was taken when examined: take it again, under the lock
            with t.engine.begin() as conn:
                registry.lock_tenants(conn, [f.tenant])
                if not self._still_proven(conn, f.tenant, location):
                    log.warning("doctor kept %s: it is no longer a proven duplicate or empty",
                                f.subject)
                    return
        if location.database is not None:
            with self.core.engine.begin() as conn:
                registry.lock_tenants(conn, [f.tenant])
                if not self._still_orphan(conn, f, location):
                    return
                self._adopt_or_drop_database(conn, f, location)
            if t.strict_roles is not None and not f.destructive:
                self._provision(f)
            return
        with self.core.engine.begin() as conn:
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
        tenants are :mod:`tenantry.doctor.leftovers`')."""
        return registry.get(conn, tenant) is None and self._empty(conn, location)

    @staticmethod
    def _still_orphan(conn: Connection, f: Finding, location: Location) -> bool:
        """Under the tenant's lock: unregistered, or (to drop) registered elsewhere."""
        assert f.tenant is not None
        info = registry.get(conn, f.tenant)
        if info is None:
            return True
        return f.destructive and storage_place(info.location) != storage_place(location)

    def _adopt_or_drop_database(self, conn: Connection, f: Finding, location: Location) -> None:
        """Orphan tenant database: drop it (destructive) or register it (under the lock)."""
        assert f.tenant is not None and location.database is not None
        t = self.core
        strategy = t.strategy
        assert isinstance(strategy, DatabaseStrategy)
        if f.destructive:
            strategy.drop_database(strategy.server_of(location), location.database)
            if t.strict_roles is not None:
                with t.role_connection(conn, location) as roles_conn:
                    t.strict_roles.drop(roles_conn, f.tenant, location)
            log.warning("doctor dropped orphan database %s", location.database)
            return
        revision = self._stored_revision(conn, location)
        registry.insert(conn, f.tenant, strategy.kind, location, State.READY, revision)
        log.info("doctor registered orphan database %s as tenant %s", location.database,
                 f.tenant, extra={"tenant": f.tenant})

    def _drop_role(self, f: Finding) -> None:
        with self.core.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {quote(f.subject)}")


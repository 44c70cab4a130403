"""The tenant-lifecycle state machine of the evidence tests, checked against an in-memory model.

Runs in strict mode, so every step also exercises role creation, renaming and dropping, and
every read checks that another tenant's schema is out of reach.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tenantry import (
    Tenancy,
    TenantExists,
    TenantIsolationError,
    UnknownTenant,
)
from tenantry.names import quote
from tests.app.models import Customer
from tests.support.evidence import Tally

NAMES = st.sampled_from(["a", "b", "c"])
# Core statements naming only the columns every revision has (t001 lacks customers.email).
customers = Customer.__table__
tally = Tally()


class Lifecycle(RuleBasedStateMachine):
    tenancy: Tenancy
    #: What reading another tenant's schema from a session raises: strict mode's permission
    #: error for schema tenants; for database tenants that schema is not in the database.
    refused: tuple[type[BaseException], ...] = (TenantIsolationError,)

    def __init__(self) -> None:
        super().__init__()
        for info in self.tenancy.list_tenants():  # reset: one database for every example
            self.tenancy.drop_tenant(info.name, confirm=True)
        self.model: dict[str, list[str]] = {}  # tenant -> values written, in order
        self.revision: dict[str, str] = {}
        self.serial = 0
        tally.add("examples")

    @initialize()
    def start_with_two(self) -> None:
        self.create("a")
        self.create("b")
        self.write("a")  # rows from the start: a read that crossed tenants would show them
        self.write("b")
        self.read("a", "b")  # every example checks rows and a cross-tenant read at least once

    @rule(name=NAMES)
    def create(self, name: str) -> None:
        info = self.tenancy.create_tenant(name)
        if name not in self.model:
            self.model[name], self.revision[name] = [], "t002"
        assert info.revision == self.revision[name]
        tally.add("operations")

    @rule(name=NAMES)
    def drop(self, name: str) -> None:
        assert self.tenancy.drop_tenant(name, confirm=True) == (name in self.model)
        self.model.pop(name, None)
        self.revision.pop(name, None)
        tally.add("operations")

    @rule(old=NAMES, new=NAMES)
    def rename(self, old: str, new: str) -> None:
        tally.add("operations")
        if old in self.model and new not in self.model:
            assert self.tenancy.rename_tenant(old, new).name == new
            self.model[new], self.revision[new] = self.model.pop(old), self.revision.pop(old)
        elif old not in self.model and new in self.model:
            assert self.tenancy.rename_tenant(old, new).name == new  # idempotent re-run
        elif old not in self.model:
            with pytest.raises(UnknownTenant):
                self.tenancy.rename_tenant(old, new)
        elif old == new:  # its storage already has the conventional name: nothing to do
            assert self.tenancy.rename_tenant(old, new).name == old
        else:
            with pytest.raises(TenantExists):
                self.tenancy.rename_tenant(old, new)

    @rule(name=NAMES)
    def write(self, name: str) -> None:
        tally.add("operations")
        self.serial += 1
        value = f"v{self.serial}"
        if name not in self.model:
            with pytest.raises(UnknownTenant):
                self.tenancy.session(name)
            return
        with self.tenancy.session(name) as s:
            s.execute(customers.insert().values(name=value))
            s.commit()
        self.model[name].append(value)

    @rule(name=NAMES, other=NAMES)
    def read(self, name: str, other: str) -> None:
        tally.add("operations")
        for tenant, values in self.model.items():  # every tenant holds exactly its own rows
            with self.tenancy.session(tenant) as s:
                query = sa.select(customers.c.name).order_by(customers.c.id)
                assert list(s.execute(query).scalars()) == values
            tally.add("rows checked", len(values))
        if name not in self.model:
            return
        if other in self.model and other != name:
            schema = self.tenancy.get_tenant(other).schema
            with self.tenancy.session(name) as s, pytest.raises(self.refused):
                s.execute(sa.text(f"SELECT * FROM {quote(schema)}.customers")).all()  # noqa: S608
            tally.add("cross-tenant reads refused")

    @rule(name=NAMES, revision=st.sampled_from(["t001", "heads"]))
    def migrate(self, name: str, revision: str) -> None:
        tally.add("operations")
        if name not in self.model:
            with pytest.raises(UnknownTenant):
                self.tenancy.migrate_tenant(name, revision)
            return
        outcome = self.tenancy.migrate_tenant(name, revision)
        self.revision[name] = "t002" if revision == "heads" else "t001"
        assert outcome.after == self.revision[name]

    @rule(old=NAMES, new=NAMES)
    def export_import(self, old: str, new: str) -> None:
        """Export ``old`` and import it as ``new`` (upgraded to the head; strict: its role)."""
        tally.add("operations")
        with tempfile.TemporaryDirectory() as tmp:
            if old not in self.model:
                with pytest.raises(UnknownTenant):
                    self.tenancy.export_tenant(old, Path(tmp) / "x")
                return
            self.tenancy.export_tenant(old, Path(tmp) / "x")
            if new in self.model:
                with pytest.raises(TenantExists):
                    self.tenancy.import_tenant(Path(tmp) / "x", new)
                return
            info = self.tenancy.import_tenant(Path(tmp) / "x", new)
        self.model[new], self.revision[new] = list(self.model[old]), "t002"
        assert info.revision == "t002"
        tally.add("exports imported")

    @invariant()
    def registry_matches_model(self) -> None:
        infos = {i.name: i.revision for i in self.tenancy.list_tenants()}
        assert infos == self.revision

    def teardown(self) -> None:
        behind = {n for n, r in self.revision.items() if r != "t002"}  # migrated down on purpose
        findings = self.tenancy.doctor().findings
        assert all(f.problem == "behind_head" and f.tenant in behind for f in findings), findings
        tally.add("doctor runs")


def run_lifecycle(
    tenancy: Tenancy,
    *,
    refused: tuple[type[BaseException], ...] = (TenantIsolationError,),
    max_examples: int = 40,
    steps: int = 30,
) -> None:
    """Run the state machine on ``tenancy`` (schema or database strategy)."""

    class Run(Lifecycle):
        pass

    Run.tenancy, Run.refused = tenancy, refused
    run_state_machine_as_test(
        Run,
        settings=settings(max_examples=max_examples, stateful_step_count=steps, deadline=None),
    )

"""The tenant store: transactions on the main database, the per-tenant lock, the registry row,
and the unit of work every change of a tenant goes through."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ..errors import UnfinishedOperation, UnknownTenant
from . import generation, intents, registry
from .generation import Freshness
from .intents import Intent, Operation
from .records import Records, Where, check_fields, read_tenants
from .registry import Location, State, TenantInfo


class TenantStore:
    """The registry of one main database, and who must hear when a tenant changes."""

    def __init__(self, engine: Engine, records: Records | None = None) -> None:
        self.engine = engine
        #: The application's tenant records (``Tenancy(tenant_columns=...)``), if any.
        self.records = records
        self._ready = False
        self._listeners: list[Callable[[str], None]] = []
        #: When changes made by other processes are noticed (:mod:`.generation`).
        self.freshness = Freshness(self.begin)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` after a unit of work on tenant ``name`` (route caches)."""
        self._listeners.append(listener)

    def changed(self, *names: str) -> None:
        """Tell the listeners that ``names`` changed (their cached routes may be stale)."""
        for name in names:
            for listener in self._listeners:
                listener(name)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction on the main database, the registry and intent tables guaranteed to
        exist (created and committed first: intents are written on connections of their own)."""
        if not self._ready:
            with self.engine.begin() as conn:
                registry.ensure(conn)
                generation.ensure(conn)
                intents.ensure(conn)
                if self.records is not None:
                    self.records.ensure(conn)
            self._ready = True
        with self.engine.begin() as conn:
            yield conn

    def all(self, where: Where | None = None) -> list[TenantInfo]:
        """Every registered tenant (matching ``where``), by name, with its record."""
        with self.begin() as conn:
            return read_tenants(conn, self.records, where=where)

    def find(self, name: str) -> TenantInfo | None:
        """The registry row of ``name`` with its record, or ``None``."""
        with self.begin() as conn:
            found = read_tenants(conn, self.records, name=name)
        return found[0] if found else None

    def get(self, name: str) -> TenantInfo:
        """The registry row of ``name``; :class:`UnknownTenant` if there is none."""
        info = self.find(name)
        if info is None:
            raise UnknownTenant(name)
        return info

    @contextmanager
    def work(
        self, names: Sequence[str], operation: Operation | None = None
    ) -> Iterator[TenantWork]:
        """One unit of work on ``names``: a transaction holding their locks; the listeners
        hear of them afterwards, whatever happened. ``operation``: the kind of intent this
        work may resume (``None``: it writes none)."""
        try:
            with self.begin() as main:
                registry.lock_tenants(main, names)
                yield TenantWork(self.engine, main, list(names), operation, self.records)
        finally:
            self.changed(*names)


class TenantWork:
    """What a unit of work does on the registry, under the tenants' locks.

    Steps that commit on their own (``CREATE DATABASE``, renames, moves) are recorded as an
    intent first (:meth:`intend`), so that a crash part-way can be finished or undone.
    """

    def __init__(
        self, engine: Engine, main: Connection, names: list[str], operation: Operation | None,
        records: Records | None = None,
    ) -> None:
        self.engine = engine
        self.main = main
        self.names = names
        self.operation = operation
        self.records = records

    def row(self, name: str) -> TenantInfo | None:
        """``name``'s registry row with its record, or ``None``."""
        found = read_tenants(self.main, self.records, name=name)
        return found[0] if found else None

    def unfinished(self) -> Intent | None:
        """This operation's unfinished intent on the names (to resume); raises
        :class:`UnfinishedOperation` if another operation's is."""
        for name in self.names:
            pending = intents.find(self.main, name)
            if pending is None:
                continue
            if self.operation is None or pending.operation != self.operation or (
                self.operation == Operation.RENAME and pending.names != self.names
            ):
                raise UnfinishedOperation(
                    f"tenant {name!r} has an unfinished {pending.describe()}: finish it first "
                    f"({pending.command()}, or tenantry doctor --fix)"
                )
            return pending
        return None

    def intend(self, intent: Intent) -> None:
        """Record ``intent`` in a transaction of its own, before the first step that commits."""
        intents.begin(self.engine, intent)

    def step_recorder(self, tenant: str) -> Callable[[str], None]:
        """A callable recording each step of ``tenant``'s intent as it commits."""
        return partial(intents.advance, self.engine, tenant)

    def insert(self, name: str, kind: str, location: Location, revision: str | None,
               record: Mapping[str, Any] | None = None) -> TenantInfo:
        """Register ``name`` as ready, with its ``record`` (the other fields: their defaults);
        its intent (if any) is done."""
        info = registry.insert(self.main, name, kind, location, State.READY, revision)
        if self.records is not None:
            self.records.write(self.main, name, record or {})
            info = self.row(name) or info
        elif record:
            check_fields(None, record)
        intents.clear(self.main, name)
        return info

    def set_record(self, name: str, values: Mapping[str, Any]) -> TenantInfo:
        """Set fields of ``name``'s record (a row is made if it had none)."""
        check_fields(self.records, values)
        if self.records is not None:
            self.records.write(self.main, name, values)
        info = self.row(name)
        if info is None:
            raise UnknownTenant(name)
        return info

    def update(self, name: str, /, **values: Any) -> TenantInfo:
        """Change ``name``'s row (``name=`` renames it); its intent is done."""
        registry.update(self.main, name, **values)
        generation.bump(self.main)
        intents.clear(self.main, name)
        info = self.row(values.get("name", name))
        assert info is not None
        return info

    def delete(self, name: str) -> None:
        """Unregister ``name``; its intent is done."""
        registry.delete(self.main, name)
        generation.bump(self.main)
        intents.clear(self.main, name)

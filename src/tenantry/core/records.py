"""The tenant record: the application's own columns on each tenant (plan, owner, paid until).

Declared once (``Tenancy(..., tenant_columns=[sa.Column("plan", sa.Text), ...])``), they make
the shared table ``public.tenant_records`` on the application's metadata: one row per tenant,
``name`` referencing the registry row (renames cascade to it, drops remove it). Being a
shared table of the metadata, the shared stream's autogenerate writes it; without a shared
stream tenantry creates it. Registry reads for listing join it (:meth:`Records.select`);
routing does not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn

from ..errors import ConfigurationError, InvalidRecord, MigrationError, UnknownRecordField
from ..models import SHARED_SCHEMA
from . import registry
from .registry import TenantInfo

log = logging.getLogger("tenantry")

#: The record table's name (in ``public``). Not ``tenantry_*``: it is the application's table,
#: so the shared stream's autogenerate keeps it.
RECORDS_TABLE = "tenant_records"
#: ``where=``: ``{"field": value}`` (equality; a list: any of; ``None``: IS NULL) or a
#: SQLAlchemy boolean expression on :attr:`Tenancy.records` (and the registry's columns).
Where = Mapping[str, Any] | sa.ColumnElement[bool]

_UNDEFINED_TABLE = "42P01"
_REFUSED_CLASSES = ("22", "23")  # data exceptions, integrity violations: the values' fault
_MARK = "tenantry_records"  # Table.info key of the tables tenantry made
_REGISTRY_WIDTH = len(registry.tenants.c)  # where a row of Records.select has its record


class Records:
    """The record table of one Tenancy: its columns, and the SQL reading, writing and filtering
    records. ``managed``: tenantry creates the table (there is no shared stream to)."""

    def __init__(self, metadata: sa.MetaData, columns: Sequence[sa.Column[Any]],
                 managed: bool) -> None:
        self.table = _table(metadata, columns)
        #: The declared fields, in table order.
        self.fields: tuple[str, ...] = tuple(c.name for c in self.table.c if c.name != "name")
        self.managed = managed

    def ensure(self, conn: Connection) -> None:
        """If tenantry manages the table: create it, or add the declared columns it lacks
        (under the global lock the registry's set-up holds). Columns are never dropped or
        changed: that is a migration's work."""
        if not self.managed:
            return
        self.table.create(conn, checkfirst=True)
        present = {c["name"] for c in sa.inspect(conn).get_columns(RECORDS_TABLE, SHARED_SCHEMA)}
        for column in self._field_columns():
            if column.name in present:
                continue
            if isinstance(column.type, sa.types.SchemaType):  # an enum's type first
                column.type.create(conn, checkfirst=True)
            definition = str(CreateColumn(column).compile(dialect=conn.dialect))
            conn.exec_driver_sql(  # the column's DDL as SQLAlchemy renders it, names quoted
                f"ALTER TABLE {SHARED_SCHEMA}.{RECORDS_TABLE} ADD COLUMN "
                + definition.replace("%", "%%")
            )
            log.info("added column %s to %s.%s", column.name, SHARED_SCHEMA, RECORDS_TABLE)

    # -- reading -----------------------------------------------------------------------------

    def select(self) -> sa.Select[Any]:
        """Registry rows LEFT JOIN their records (the record's columns after the registry's,
        labelled ``record_<i>``)."""
        labelled = [c.label(f"record_{i}") for i, c in enumerate(self._field_columns())]
        return sa.select(registry.tenants, *labelled).select_from(
            registry.tenants.outerjoin(self.table, self.table.c.name == registry.tenants.c.name)
        )

    def record_of(self, row: Any) -> dict[str, Any]:
        """The record of a row of :meth:`select`."""
        return dict(zip(self.fields, row[_REGISTRY_WIDTH:], strict=True))

    def text_record(self, conn: Connection, name: str) -> dict[str, str | None] | None:
        """Tenant ``name``'s record as each value's PostgreSQL text form (``None``: no row)."""
        columns = [sa.cast(c, sa.Text).label(c.name) for c in self._field_columns()]
        with explaining_missing():
            row = conn.execute(
                sa.select(*columns).where(self.table.c.name == name)
            ).first()
        return dict(zip(self.fields, row, strict=True)) if row is not None else None

    # -- writing -----------------------------------------------------------------------------

    def check(self, values: Mapping[str, Any]) -> None:
        """Raise :class:`UnknownRecordField` unless every key of ``values`` is a field."""
        unknown = sorted(set(values) - set(self.fields))
        if unknown:
            raise UnknownRecordField(
                f"unknown record field(s) {unknown}: the record has {list(self.fields)}"
            )

    def write(self, conn: Connection, name: str, values: Mapping[str, Any]) -> None:
        """Insert or update tenant ``name``'s record with ``values`` (the other fields keep
        their value, or their default for a new row), in a savepoint: a value the columns
        refuse raises :class:`InvalidRecord` and leaves ``conn``'s transaction usable."""
        self.check(values)
        sql_values = {k: value_for(self.table.c[k], v) for k, v in values.items()}
        statement = pg_insert(self.table).values(name=name, **sql_values)
        if sql_values:
            statement = statement.on_conflict_do_update(index_elements=["name"], set_=sql_values)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["name"])
        try:
            with explaining_missing(), conn.begin_nested():
                conn.execute(statement)
        except DBAPIError as exc:
            state = str(getattr(exc.orig, "sqlstate", "") or "")
            if not state.startswith(_REFUSED_CLASSES):
                raise
            first = (str(exc.orig).strip().splitlines() or [""])[0]
            raise InvalidRecord(f"record of tenant {name!r} refused: {first}") from exc

    # -- filtering ---------------------------------------------------------------------------

    def clause(self, where: Where) -> sa.ColumnElement[bool]:
        """``where`` as a condition on :meth:`select`'s rows."""
        if isinstance(where, Mapping):
            self.check(where)
            return sa.and_(sa.true(), *(
                equals(self.table.c[k], v) for k, v in where.items()
            ))
        return boolean(where)

    def _field_columns(self) -> list[sa.Column[Any]]:
        return [c for c in self.table.c if c.name != "name"]


def value_for(column: sa.Column[Any], value: Any) -> Any:
    """``value`` for ``column``: a ``str`` for a column that is not text is read as the
    column type's text form (as the CLI gives it: ``paid_until=2027-01-31``)."""
    if isinstance(value, str) and not isinstance(column.type, sa.String):
        return sa.cast(sa.literal(value, sa.Text()), column.type)
    return value


def equals(column: sa.Column[Any], value: Any) -> sa.ColumnElement[bool]:
    """``column`` is ``value`` (``None``: IS NULL; a list, tuple or set: any of them)."""
    if value is None:
        return column.is_(None)
    if isinstance(value, list | tuple | set | frozenset):
        return column.in_([value_for(column, v) for v in value])
    matched: sa.ColumnElement[bool] = column == value_for(column, value)
    return matched


def boolean(where: Any) -> sa.ColumnElement[bool]:
    """``where`` if it is a SQLAlchemy expression (else :class:`InvalidRecord`)."""
    if not isinstance(where, sa.ColumnElement):
        raise InvalidRecord(
            f"where= takes a mapping {{field: value}} or a SQLAlchemy expression on "
            f"tenancy.records, not {type(where).__name__}"
        )
    return where


def check_fields(records: Records | None, values: Mapping[str, Any]) -> None:
    """Raise :class:`UnknownRecordField` unless every key of ``values`` is a field of
    ``records`` (``None``: a Tenancy without record columns)."""
    if records is not None:
        records.check(values)
    elif values:
        raise UnknownRecordField(
            f"unknown record field(s) {sorted(values)}: this Tenancy declares no record "
            "columns (Tenancy(..., tenant_columns=[...]); CLI: --app)"
        )


def registry_clause(where: Where) -> sa.ColumnElement[bool]:
    """``where`` without record columns: only an expression on the registry's columns."""
    if isinstance(where, Mapping):
        check_fields(None, where)
        return sa.true()
    return boolean(where)


@contextmanager
def explaining_missing() -> Iterator[None]:
    """Say what to do when the record table does not exist yet (a shared stream not run)."""
    try:
        yield
    except DBAPIError as exc:
        if (getattr(exc.orig, "sqlstate", None) != _UNDEFINED_TABLE
                or RECORDS_TABLE not in str(exc.orig)):
            raise
        raise MigrationError(
            f"table {SHARED_SCHEMA}.{RECORDS_TABLE} (the tenant records) does not exist: add "
            "it to the shared stream (tenantry revision --shared --autogenerate) and run it "
            "(tenantry migrate)"
        ) from exc


def _table(metadata: sa.MetaData, columns: Sequence[sa.Column[Any]]) -> sa.Table:
    """The record table on ``metadata`` (made once; a Tenancy rebuilt on the same metadata
    with the same columns shares it)."""
    source = _source(columns)
    key = f"{SHARED_SCHEMA}.{RECORDS_TABLE}"
    existing = metadata.tables.get(key)
    if existing is not None:
        if not existing.info.get(_MARK):
            raise ConfigurationError(
                f"the metadata already has a table {key}: declare its columns as "
                "tenant_columns instead"
            )
        if _shape(existing) != _shape(source):
            raise ConfigurationError(
                f"the metadata's {key} has other columns ({[c.name for c in existing.c]}) "
                "than these tenant_columns: one application, one record"
            )
        return existing
    table = source.to_metadata(metadata, schema=SHARED_SCHEMA)
    table.info[_MARK] = True
    table.append_constraint(sa.ForeignKeyConstraint(
        [table.c.name], [registry.tenants.c.name], name="tenant_records_name_fkey",
        onupdate="CASCADE", ondelete="CASCADE",
    ))
    for column in table.c:  # enum types would take the metadata's default schema
        kind = column.type
        if isinstance(kind, sa.types.SchemaType) and getattr(kind, "schema", None) is None:
            kind.schema = SHARED_SCHEMA
    return table


def _source(columns: Sequence[sa.Column[Any]]) -> sa.Table:
    """The declared columns on a table of their own, after ``name`` (the columns given to
    a Tenancy before are already on it: a rebuilt Tenancy, a worker process's)."""
    if isinstance(columns, sa.Column) or not all(isinstance(c, sa.Column) for c in columns):
        raise ConfigurationError("tenant_columns must be a list of sqlalchemy Column objects")
    names = [c.name for c in columns]
    if "name" in names or len(set(names)) != len(names):
        raise ConfigurationError(
            f"tenant_columns {names}: names must be unique and not 'name' (the tenant's)"
        )
    if any(c.primary_key for c in columns):
        raise ConfigurationError("tenant_columns: the record's primary key is the tenant name")
    holders = {id(c.table): c.table for c in columns if getattr(c, "table", None) is not None}
    if not holders:
        return sa.Table(RECORDS_TABLE, sa.MetaData(), _name_column(), *columns)
    holder = next(iter(holders.values()))
    if (len(holders) != 1 or holder.name != RECORDS_TABLE or holder.schema is not None
            or [c for c in holder.c if c.name != "name"] != list(columns)):
        raise ConfigurationError(
            "tenant_columns must be new Column objects, not columns of a table"
        )
    return holder


def _name_column() -> sa.Column[str]:
    return sa.Column("name", sa.Text, primary_key=True)


def _shape(table: sa.Table) -> list[tuple[str, str]]:
    return [(c.name, type(c.type).__name__) for c in table.c]


def read_tenants(
    conn: Connection, records: Records | None, *, name: str | None = None,
    where: Where | None = None,
) -> list[TenantInfo]:
    """Registry rows (of ``name``, or matching ``where``) with their records, by name."""
    if records is None:
        query = sa.select(registry.tenants)
        if where is not None:
            query = query.where(registry_clause(where))
    else:
        query = records.select()
        if where is not None:
            query = query.where(records.clause(where))
    if name is not None:
        query = query.where(registry.tenants.c.name == name)
    with explaining_missing():
        rows = conn.execute(query.order_by(registry.tenants.c.name)).all()
    if records is None:
        return [TenantInfo.from_row(r) for r in rows]
    return [TenantInfo.from_row(r, records.record_of(r)) for r in rows]

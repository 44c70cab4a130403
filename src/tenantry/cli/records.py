"""The tenant record on the command line: ``--set field=value``, ``--where field=value``, and
the record's fields as table columns and JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from ..errors import InvalidRecord
from ..tenancy import Tenancy

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="FIELD=VALUE", show_default=False,
                 help="A field of the tenant's record (repeatable; FIELD= sets NULL). The "
                      "value is read as the column type's text form."),
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option("--where", metavar="FIELD=VALUE", show_default=False,
                 help="Only tenants whose record has FIELD = VALUE (repeatable: all must hold; "
                      "the same FIELD twice: either value; FIELD= is NULL)."),
]


def pairs(option: str, specs: Sequence[str] | None) -> dict[str, list[str | None]]:
    """``FIELD=VALUE`` options by field (an empty value is ``None``: SQL NULL)."""
    found: dict[str, list[str | None]] = {}
    for spec in specs or ():
        field, sep, value = spec.partition("=")
        if not sep or not field.strip():
            raise InvalidRecord(f"{option} wants FIELD=VALUE, not {spec!r}")
        found.setdefault(field.strip(), []).append(value if value != "" else None)
    return found


def values_of(specs: Sequence[str] | None) -> dict[str, str | None]:
    """``--set`` options as record values (a field set twice is an error)."""
    found = pairs("--set", specs)
    twice = sorted(k for k, v in found.items() if len(v) > 1)
    if twice:
        raise InvalidRecord(f"--set gives {twice} more than once")
    return {k: v[0] for k, v in found.items()}


def where_of(specs: Sequence[str] | None) -> dict[str, Any] | None:
    """``--where`` options as a ``where=`` mapping (``None``: no filter)."""
    found = pairs("--where", specs)
    if not found:
        return None
    return {k: v[0] if len(v) == 1 else v for k, v in found.items()}


def fields(tenancy: Tenancy) -> list[str]:
    """The record fields of ``tenancy`` (none without ``tenant_columns``)."""
    records = tenancy.core.records
    return list(records.fields) if records is not None else []


def jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with values JSON can hold (dates and times in ISO 8601, others as text)."""
    return {k: _json_value(v) for k, v in record.items()}


def cells(names: Sequence[str], record: Mapping[str, Any]) -> list[str]:
    """The record's values under the columns ``names``, for a table (``-`` for NULL)."""
    return [_text(record.get(n)) for n in names]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)

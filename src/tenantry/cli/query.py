"""The ``query`` command: one read-only SELECT across many tenants."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from ..crosstenant.across import DEFAULT_CHUNK
from ..errors import ConfigurationError
from .console import err, out
from .exits import handle_errors
from .records import WhereOpt, where_of
from .settings import tenancy_of


@handle_errors
def query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(
        help="A read-only SELECT; name tenant tables as __tenant__.table.", show_default=False)],
    all_tenants: Annotated[bool, typer.Option("--all-tenants", help="Every tenant.")] = False,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Only these tenants (repeatable).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Batches run concurrently.", min=1)] = 1,
    chunk: Annotated[int, typer.Option(help="Tenants per round trip.", min=1)] = DEFAULT_CHUNK,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
    where: WhereOpt = None,
) -> None:
    """Run a read-only SQL query in many tenants; each row is tagged with its tenant."""
    if all_tenants == bool(tenant):
        raise ConfigurationError("pass either --all-tenants or --tenant NAME (repeatable)")
    tenancy = tenancy_of(ctx)
    names = None if all_tenants else tenant
    chosen = where_of(where)
    total = len(tenancy.list_tenants(where=chosen)) if names is None else len(set(names))
    with _progress(total) as advance:
        rows = tenancy.across(sa.text(sql), names, jobs=jobs, chunk=chunk, progress=advance,
                              where=chosen)
        if as_json:
            for r in rows:
                print(json.dumps({"tenant": r.tenant, **r.mapping()}, default=str), flush=True)
            return
        table: Table | None = None
        for r in rows:
            if table is None:
                table = Table("tenant", *r.columns)
            table.add_row(r.tenant, *("" if v is None else str(v) for v in r.row))
    out.print(table if table is not None else "no rows")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal; a no-op callback otherwise."""
    if not err.is_terminal:
        yield lambda n: None
        return
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("tenants", total=total)
        yield lambda n: bar.advance(task, n)

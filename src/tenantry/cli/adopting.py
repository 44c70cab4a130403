"""``tenantry adopt``: register existing schemas or databases as tenants, one or a fleet."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..core.registry import Location
from ..errors import ConfigurationError
from ..provisioning.adoption import Adoption, adopt_all
from .console import err, out
from .exits import handle_errors
from .options import JsonOpt
from .settings import tenancy_of


@handle_errors
def adopt(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help="Tenant name (not with --all).", show_default=False),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="The existing schema (any name, a UUID too); with "
                     "--database: the schema of its tables (default: one named as the "
                     "database, else public).", show_default=False),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", help="The existing database (database tenants).",
                     show_default=False),
    ] = None,
    on_server: Annotated[
        str | None,
        typer.Option("--on-server", help="The server holding --database, or the databases "
                     "--all looks at (a name given to --server; default main).",
                     show_default=False),
    ] = None,
    rename: Annotated[
        bool, typer.Option("--rename", help="Then give the storage tenantry's name "
                           "(prefix + tenant name).")
    ] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="Adopt every unregistered schema (or database) "
                           "matching --pattern.")
    ] = False,
    pattern: Annotated[
        str, typer.Option("--pattern", help="With --all: a glob on storage names.")
    ] = "*",
    strip: Annotated[
        str | None,
        typer.Option("--strip", help="With --all: the prefix dropped from storage names to "
                     "name tenants (default: the tenant prefix).", show_default=False),
    ] = None,
    databases: Annotated[
        bool | None,
        typer.Option("--databases/--schemas", help="With --all: look for databases or for "
                     "schemas (default: databases with the database strategy).",
                     show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --all: print the plan, adopt nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register existing storage as tenants, at the revision each records (idempotent)."""
    tenancy = tenancy_of(ctx)
    if not all_:
        if name is None or (schema is None and database is None):
            raise ConfigurationError("name a tenant and its --schema or --database (or --all)")
        info = tenancy.adopt_tenant(name, schema=schema, database=database, server=on_server,
                                    rename=rename)
        out.print(f"tenant {info.name}: adopted, {info.state} in {describe(info.location)} "
                  f"(revision {info.revision or '-'})", highlight=False)
        return
    if name is not None or schema is not None or database is not None:
        raise ConfigurationError("--all finds the storage itself: no name, --schema or "
                                 "--database (narrow it with --pattern)")
    found = adopt_all(tenancy, pattern, strip=strip, databases=databases, server=on_server,
                      rename=rename, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps([as_dict(a) for a in found]))
    else:
        report(found, dry_run)
    if any(a.problem is not None for a in found):
        raise typer.Exit(1)


def describe(location: Location) -> str:
    """``schema``, or ``database/schema`` for a database tenant (as ``tenantry list``)."""
    if location.database is None:
        return location.schema
    return f"{location.database}/{location.schema}"


def report(found: list[Adoption], dry_run: bool) -> None:
    for a in found:
        if a.problem is not None:
            err.print(f"skipped {a.storage}: {a.problem}", highlight=False)
            continue
        if a.note is not None:
            err.print(f"note: {a.note}", highlight=False)
        if a.info is None:
            out.print(f"would adopt {a.storage} as tenant {a.name}", highlight=False)
        else:
            out.print(f"tenant {a.name}: adopted {a.storage}, now {describe(a.info.location)} "
                      f"(revision {a.info.revision or '-'})", highlight=False)
    adopted = sum(a.info is not None for a in found)
    skipped = sum(a.problem is not None for a in found)
    what = f"{len(found) - skipped} to adopt" if dry_run else f"{adopted} adopted"
    out.print(f"{what}, {skipped} skipped (dry run: nothing changed)" if dry_run
              else f"{what}, {skipped} skipped", highlight=False)


def as_dict(a: Adoption) -> dict[str, object]:
    info = a.info
    return {
        "storage": a.storage, "tenant": a.name, "note": a.note, "problem": a.problem,
        "adopted": info is not None,
        "schema": info.schema if info else None,
        "database": info.location.database if info else None,
        "revision": info.revision if info else None,
    }

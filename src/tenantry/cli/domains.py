"""``tenantry domains ...``: the domains of tenants."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ..domains import normalise_domain
from .console import out
from .exits import handle_errors
from .options import JsonOpt
from .settings import tenancy_of

app = typer.Typer(name="domains", help="Domains of tenants (docs/domains.md).",
                  no_args_is_help=True)

TenantArg = Annotated[str, typer.Argument(help="Tenant name.", show_default=False)]
DomainArg = Annotated[str, typer.Argument(help="Domain (Unicode or punycode, no port).",
                                          show_default=False)]


@app.command()
@handle_errors
def add(
    ctx: typer.Context,
    tenant: TenantArg,
    domain: DomainArg,
    primary: Annotated[bool, typer.Option("--primary", help="Make it the tenant's primary "
                                          "domain (its first domain is anyway).")] = False,
) -> None:
    """Give a domain to a tenant (idempotent)."""
    tenancy = tenancy_of(ctx)
    name = tenancy.add_domain(tenant, domain, primary=primary)
    first = tenancy.primary_domain(tenant) == name
    out.print(f"domain {name}: tenant {tenant}{' (primary)' if first else ''}", highlight=False)


@app.command()
@handle_errors
def remove(ctx: typer.Context, domain: DomainArg) -> None:
    """Take a domain from its tenant."""
    removed = tenancy_of(ctx).remove_domain(domain)
    said = "removed" if removed else "not registered"
    out.print(f"domain {normalise_domain(domain)}: {said}", highlight=False)


@app.command()
@handle_errors
def primary(ctx: typer.Context, tenant: TenantArg, domain: DomainArg) -> None:
    """Make one of a tenant's domains its primary."""
    tenancy_of(ctx).set_primary_domain(tenant, domain)
    out.print(f"domain {normalise_domain(domain)}: primary of tenant {tenant}", highlight=False)


@app.command("list")
@handle_errors
def list_(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Argument(help="Only this tenant's.",
                                                 show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """List domains (of every tenant, or of one)."""
    found = tenancy_of(ctx).domains(tenant)
    if as_json:
        out.print_json(json.dumps([
            {"domain": d.domain, "unicode": d.unicode, "tenant": d.tenant,
             "primary": d.primary, "created_at": d.created_at.isoformat()}
            for d in found
        ]))
        return
    table = Table("domain", "tenant", "primary", "added")
    for d in found:
        shown = d.domain if d.unicode == d.domain else f"{d.unicode} ({d.domain})"
        table.add_row(shown, d.tenant, "yes" if d.primary else "",
                      d.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)
    out.print(f"{len(found)} domain(s)")

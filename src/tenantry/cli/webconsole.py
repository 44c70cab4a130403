"""The ``console`` command: serve the operator console (:mod:`tenantry.console`) with uvicorn."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from .console import err
from .exits import handle_errors
from .settings import tenancy_of

try:  # the console extra: pip install 'tenantry[console]'
    import uvicorn

    from ..console import console_app
    from ..console.security import is_loopback
except ImportError as exc:  # pragma: no cover - the dev extra installs it
    MISSING: ImportError | None = exc
else:
    MISSING = None


@handle_errors
def console(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (default: this machine "
                                           "only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(envvar="TENANTRY_CONSOLE_TOKEN", show_default=False,
                     help="Access token (default: a new random one, printed once)."),
    ] = None,
    writable: Annotated[
        bool, typer.Option("--writable", help="Offer suspend, resume and drop on tenant "
                                              "pages (read-only without).")
    ] = False,
) -> None:
    """Serve the operator console: the fleet, each tenant, and (--writable) actions.

    Every request needs the token: open the printed URL once, a cookie keeps it.
    """
    if MISSING is not None:
        err.print(f"[red]error:[/red] the console needs its extra: pip install "
                  f"'tenantry\\[console]' ({MISSING})", highlight=False)
        raise typer.Exit(1)
    tenancy = tenancy_of(ctx)
    tenancy.setup()  # the registry exists, and the database answers, before serving
    generated = token is None
    token = token or secrets.token_urlsafe(32)
    app = console_app(tenancy, token=token, writable=writable)
    where = f"[{host}]" if ":" in host else host
    if not is_loopback(host):
        err.print(f"[yellow]warning:[/yellow] listening on {host}, not only this machine: "
                  "anyone who can reach it and learns the token can use the console "
                  "(put it behind TLS)", highlight=False)
    shown = token if generated else "<your token>"
    err.print(f"console ({'writable' if writable else 'read-only'}): "
              f"http://{where}:{port}/?token={shown}", highlight=False, markup=False,
              soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")

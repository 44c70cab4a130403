"""How a command fails: tenantry and database errors become one line on stderr and exit 1."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
import typer

from ..errors import TenantryError
from .console import err
from .settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


def describe_db_error(exc: sa.exc.DBAPIError) -> str:
    """One line about a driver error, without SQL parameters or credentials."""
    first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return first


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn tenantry and database errors into a message on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx: Any = kwargs["ctx"]  # every command takes ctx: typer.Context
        try:
            return fn(*args, **kwargs)
        except TenantryError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        except sa.exc.OperationalError as exc:
            where = _safe_url(ctx)
            err.print(f"[red]error:[/red] cannot reach the database {where}: "
                      f"{describe_db_error(exc)}", highlight=False)
        except sa.exc.DBAPIError as exc:
            err.print(f"[red]error:[/red] database error: {describe_db_error(exc)}",
                      highlight=False)
        finally:
            settings = ctx.find_object(Settings)
            if settings is not None:
                settings.close()
        raise typer.Exit(1)

    return wrapper


def _safe_url(ctx: Any) -> str:
    settings = ctx.find_object(Settings)
    if settings is None or not settings.url:
        return "(from --app)"
    try:
        return sa.make_url(settings.url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "(unparseable URL)"

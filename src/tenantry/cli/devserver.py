"""The ``dev`` command: persistent development servers in the project folder."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from .. import devserver
from ..errors import DevServerBusy, TenantryError
from .console import err, out

#: How often the foreground process checks that its servers still run (seconds).
POLL = 0.5


def dev(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Folder holding the servers' data (kept across runs)."),
    ] = devserver.DEFAULT_DIRECTORY,
    count: Annotated[
        int, typer.Option("--count", min=1, help="How many servers (2: one for moves and "
                                                  "database tenants on another server).")
    ] = 1,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop the servers of --dir that are running.")
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show which servers of --dir run; print their "
                                            "export lines (exit 1 if server 1 does not run).")
    ] = False,
) -> None:
    """Run development PostgreSQL servers in the foreground until Ctrl-C (data in --dir).

    Prints export lines with the servers' URLs: TENANTRY_URL and the test suite's
    TENANTRY_TEST_URL (and TENANTRY_TEST_URL2 with --count 2).
    """
    try:
        if stop:
            _stop(directory)
        elif status:
            _status(directory)
        else:
            _run(devserver.servers(directory, count))
    except TenantryError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        if isinstance(exc, DevServerBusy) and exc.urls:
            _print_exports(exc.urls)
        raise typer.Exit(1) from None


def _run(chosen: list[devserver.DevServer]) -> None:
    with devserver.hold(chosen), _terminated_as_interrupt():
        started: list[devserver.DevServer] = []
        try:
            urls = []
            for server in chosen:
                running, was_running = devserver.start(server)
                started.append(server)
                urls.append(running.url)
                note = f" (already running, postmaster pid {running.pid})" if was_running else ""
                err.print(f"server {server.number}: {server.data}{note}", highlight=False)
            _print_exports(urls)
            err.print("running; Ctrl-C stops the servers (data kept)", highlight=False)
            _wait(started)
        except KeyboardInterrupt:
            pass
        finally:
            for server in reversed(started):
                if devserver.stop(server):
                    err.print(f"server {server.number}: stopped", highlight=False)


def _wait(started: list[devserver.DevServer]) -> None:
    """Until Ctrl-C (or SIGTERM), or until a server stops from outside."""
    while True:
        for server in started:
            if server.running() is None:
                err.print(f"server {server.number} stopped from outside; exiting",
                          highlight=False)
                return
        time.sleep(POLL)


def _stop(directory: Path) -> None:
    found = devserver.servers(directory)
    stopped = [s for s in found if devserver.stop(s)]
    for server in stopped:
        err.print(f"server {server.number}: stopped", highlight=False)
    if not stopped:
        err.print(f"no server running in {directory}", highlight=False)


def _status(directory: Path) -> None:
    urls: list[str] = []
    gap = False  # exports name servers 1, 2...: only those before the first stopped one
    for server in devserver.servers(directory):
        running = server.running()
        if running is None:
            err.print(f"server {server.number}: stopped ({server.data})", highlight=False)
            gap = True
            continue
        holder = server.holder()
        by = f", held by tenantry dev pid {holder}" if holder and holder > 0 else ""
        err.print(f"server {server.number}: running (postmaster pid {running.pid}{by})",
                  highlight=False)
        if not gap:
            urls.append(running.url)
    if not urls:
        err.print(f"server 1 of {directory} is not running", highlight=False)
        raise typer.Exit(1)
    _print_exports(urls)


def _print_exports(urls: list[str]) -> None:
    for line in devserver.export_lines(urls):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


@contextlib.contextmanager
def _terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``) and SIGINT stop the servers as Ctrl-C does, also when started in
    the background by a shell (which makes it ignore SIGINT)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""Options that several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="TENANTRY_URL", help="Database URL (main database).",
                 show_default=False),
]
JobsOpt = Annotated[
    str, typer.Option("--jobs", "-j", metavar="N|auto",
                      help="Processes migrating: this one and N-1 helpers; auto: helpers only "
                           "when the work left is worth their start-up.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
OnlineOpt = Annotated[
    bool | None,
    typer.Option(
        "--online/--offline",
        help="Online: logical replication, writes wait only for the switch (needs "
        "wal_level=logical). Offline: writes wait for the whole copy. Default: online when "
        "the source server allows it.",
        show_default=False,
    ),
]

"""Options that several commands share."""

from __future__ import annotations

from pathlib import Path
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
PerServerOpt = Annotated[
    int | None,
    typer.Option("--per-server", metavar="K", show_default=False,
                 help="At most K tenants of one database server migrating at once."),
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

# -- where the migration streams are (global options; see docs/alembic.md) --

AlembicIniOpt = Annotated[
    Path | None,
    typer.Option("--alembic-ini", envvar="TENANTRY_ALEMBIC_INI", show_default=False,
                 help="The alembic.ini that --tenant-section/--shared-section read "
                      "[default: alembic.ini]."),
]
TenantSectionOpt = Annotated[
    str | None,
    typer.Option("--tenant-section", envvar="TENANTRY_TENANT_SECTION", show_default=False,
                 help="The ini section of the tenant stream (as alembic -n)."),
]
SharedSectionOpt = Annotated[
    str | None,
    typer.Option("--shared-section", envvar="TENANTRY_SHARED_SECTION", show_default=False,
                 help="The ini section of the shared stream (as alembic -n)."),
]
VersionTableOpt = Annotated[
    str | None,
    typer.Option("--version-table", envvar="TENANTRY_VERSION_TABLE", show_default=False,
                 help="Version table of both streams [default: alembic_version]."),
]
TenantVersionTableOpt = Annotated[
    str | None,
    typer.Option("--tenant-version-table", envvar="TENANTRY_TENANT_VERSION_TABLE",
                 show_default=False, help="Version table of the tenant stream."),
]
SharedVersionTableOpt = Annotated[
    str | None,
    typer.Option("--shared-version-table", envvar="TENANTRY_SHARED_VERSION_TABLE",
                 show_default=False, help="Version table of the shared stream."),
]

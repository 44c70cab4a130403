"""migrate_all(per_server=K): never more than K tenants of one server migrating at once.

Database tenants on two real servers; a revision records, in each tenant's database, when its
upgrade started and ended around a ``pg_sleep``; the intervals give the most migrations that
overlapped on each server.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tenantry import MigrationError, Tenancy
from tenantry.aio import AsyncTenancy
from tenantry.cli import app
from tenantry.core.registry import Location, State, TenantInfo
from tenantry.migrations.perserver import ServerSlots, checked_cap, server_of
from tenantry.names import quote
from tests.support.databases import TENANT_DB

SLEEP = 1.0  # the probe's pg_sleep, in seconds
PROBE = '''
from alembic import op
revision = "t003"
down_revision = "t002"
def upgrade():
    op.execute("CREATE TABLE migration_probe (started timestamptz, ended timestamptz)")
    op.execute("INSERT INTO migration_probe VALUES (clock_timestamp(), NULL)")
    op.execute("SELECT pg_sleep(1.0)")
    op.execute("UPDATE migration_probe SET ended = clock_timestamp()")
def downgrade():
    op.execute("DROP TABLE migration_probe")
'''


def by_first_letter(tenant: str, load: Mapping[str, int]) -> str:
    """Tenants ``m*`` on the main server, ``s*`` on the second."""
    return "main" if tenant.startswith("m") else "second"


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    target = tmp_path / "tenant_db"
    shutil.copytree(TENANT_DB, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def fleet(
    make_tenancy: Callable[..., Tenancy], stream: Path, each: int, second: int | None = None
) -> Tenancy:
    """``each`` tenants on the main server (and ``second`` or ``each`` on the second), at t002;
    then the probing revision t003 is added (and a Tenancy that sees it returned)."""
    prefix = f"p{uuid.uuid4().hex[:6]}_"
    first = make_tenancy(tenant_migrations=stream, placement=by_first_letter, prefix=prefix)
    for i in range(each):  # registry order (by name): all of main's, then all of second's
        first.create_tenant(f"m{i}")
    for i in range(each if second is None else second):
        first.create_tenant(f"s{i}")
    (stream / "versions" / "t003_probe.py").write_text(PROBE)
    return make_tenancy(tenant_migrations=stream, prefix=prefix)


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals that overlap at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda edge: (edge[0], edge[1]))  # an end before a start at one instant
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def overlaps(t: Tenancy) -> dict[str, int]:
    """Per server (and ``"all"``), the most tenant upgrades (their pg_sleep) that ran at once."""
    intervals: dict[str, list[tuple[datetime, datetime]]] = {}
    for info in t.list_tenants():
        with t.connection(info.name) as conn:
            probe = f"SELECT started, ended FROM {quote(info.schema)}.migration_probe"  # noqa: S608
            started, ended = conn.execute(sa.text(probe)).one()
        intervals.setdefault(server_of(info), []).append((started, ended))
    seen = {server: most_at_once(spans) for server, spans in intervals.items()}
    return seen | {"all": most_at_once([span for spans in intervals.values() for span in spans])}


def test_slots_hand_out_one_servers_batches_up_to_the_cap() -> None:
    infos = [info(f"m{i}", "main") for i in range(3)] + [info("s0", "second"), info("x", None)]
    slots = ServerSlots(infos, cap=1, size=2)
    first, second = slots.take(), slots.take()
    assert first is not None and second is not None
    assert {first[0], second[0]} == {"main", "second"}  # None is the main server
    assert slots.take() is None  # both servers at their cap, batches left on main
    main_batch = first if first[0] == "main" else second
    assert len(main_batch[1]) == 2 and slots.left == 1
    slots.give_back("main")
    taken = slots.take()
    assert taken is not None and taken[0] == "main" and [i.name for i in taken[1]] == ["m2", "x"]
    assert slots.take() is None and slots.left == 0


def test_a_cap_of_two_lets_two_batches_of_one_server_out() -> None:
    slots = ServerSlots([info(f"m{i}", "main") for i in range(3)], cap=2, size=1)
    taken = [slots.take(), slots.take()]
    assert all(t is not None and t[0] == "main" for t in taken)
    assert slots.take() is None and slots.left == 1  # a third would exceed the cap
    slots.give_back("main")
    assert slots.take() is not None and slots.left == 0


def info(name: str, server: str | None) -> TenantInfo:
    now = datetime.now()
    location = Location(f"tenant_{name}", None if server is None else name, server)
    return TenantInfo(name, "database", location, State.READY, "t002", None, now, now)


def test_the_cap_is_checked() -> None:
    assert checked_cap(None) is None and checked_cap(3) == 3
    for bad in (0, -2, True, 1.5, "2"):
        with pytest.raises(MigrationError, match="per_server must be"):
            checked_cap(bad)  # type: ignore[arg-type]


def test_a_bad_cap_fails_before_anything_runs_and_the_cli_passes_it_on(
    make_tenancy: Callable[..., Tenancy], stream: Path, database_url: str, second_url: str
) -> None:
    t = fleet(make_tenancy, stream, each=1)
    with pytest.raises(MigrationError, match="per_server must be"):
        t.migrate_all(per_server=0)
    assert {i.revision for i in t.list_tenants()} == {"t002"}
    base = ["--url", database_url, "--strategy", "database", "--prefix", t.core.prefix,
            "--server", f"second={second_url}", "--tenant-migrations", str(stream)]
    runner = CliRunner()
    for command in (["migrate"], ["downgrade", "t001", "--yes"]):
        result = runner.invoke(app, [*base, *command, "--per-server", "0"])
        assert result.exit_code == 1 and "per_server must be" in result.stderr

    async def through_the_async_facade() -> None:
        async with AsyncTenancy(t) as at:
            await at.migrate_all(per_server=-1)

    with pytest.raises(MigrationError, match="per_server must be"):
        asyncio.run(through_the_async_facade())
    assert {i.revision for i in t.list_tenants()} == {"t002"}
    result = runner.invoke(app, [*base, "migrate", "--per-server", "1", "--jobs", "2"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert {i.revision for i in t.list_tenants()} == {"t003"}


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_no_server_ever_runs_more_than_k_migrations(
    make_tenancy: Callable[..., Tenancy], stream: Path, jobs: int
) -> None:
    each = 5
    t = fleet(make_tenancy, stream, each=each)
    started = time.perf_counter()
    report = t.migrate_all(jobs=jobs, per_server=1)
    elapsed = time.perf_counter() - started
    assert report.ok and len(report.by_result("upgraded")) == 2 * each
    seen = overlaps(t)
    assert seen["main"] == 1 and seen["second"] == 1
    serial = 2 * each * SLEEP  # the upgrades' sleeps alone, one after another
    if jobs == 2:  # the two servers migrated side by side: faster than one after another
        assert seen["all"] == 2 and elapsed < serial, (elapsed, serial)
    print(f"jobs={jobs} per_server=1: {elapsed:.2f} s (sleeps alone, serial: {serial:.1f} s)")


@pytest.mark.slow
def test_without_a_cap_one_server_gets_both_processes(
    make_tenancy: Callable[..., Tenancy], stream: Path
) -> None:
    """The probe sees a violation when there is one: jobs=2 uncapped works through main's
    tenants (first in the registry) with both processes, once the helper has started."""
    t = fleet(make_tenancy, stream, each=8, second=1)
    assert t.migrate_all(jobs=2).ok
    assert overlaps(t)["main"] == 2

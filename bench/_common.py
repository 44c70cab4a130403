"""Shared helpers of the benchmarks: a server (embedded unless TENANTRY_BENCH_URL), databases,
and the smoke mode (``TENANTRY_BENCH_SMOKE=1``: tiny sizes, so CI runs every script quickly)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import embedded, make_engine
from tenantry.names import quote

#: ``TENANTRY_BENCH_SMOKE=1``: every script runs end to end at tiny sizes (its figures then
#: mean nothing; tests/test_bench_smoke.py checks that each still runs and prints them).
SMOKE = os.environ.get("TENANTRY_BENCH_SMOKE") == "1"

#: Databases made by new_database, dropped when server() ends on a server it did not start.
_made: list[str] = []


def sized(full: int, smoke: int) -> int:
    """``full``, or ``smoke`` in smoke mode: the default of a size, count or number of rounds."""
    return smoke if SMOKE else full


@contextmanager
def server(url: str | None = None) -> Iterator[str]:
    """``url``, else ``TENANTRY_BENCH_URL``, else an embedded server started for the block."""
    url = url or os.environ.get("TENANTRY_BENCH_URL")
    if url:
        try:
            yield url
        finally:
            drop_made(url)
        return
    srv = embedded.start()
    try:
        yield srv.url
    finally:
        srv.stop()


def new_database(url: str) -> str:
    admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"tenantry_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
    admin.dispose()
    _made.append(name)
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_made(url: str) -> None:
    """Drop the databases new_database made on the server of ``url``."""
    admin = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        while _made:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(_made.pop())} WITH (FORCE)")
    admin.dispose()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_chain(directory: Path, revisions: int, tables: int = 30, plain: bool = False) -> Path:
    """A tenant stream of ``revisions`` revisions ending in ``tables`` tables (seed rows too).

    The first ``tables`` revisions each create a table (with a foreign key, an index and a seed
    row; ``plain``: a primary key and defaults only); the rest add then drop a column, so every
    chain length ends with the same schema.
    """
    versions = directory / "versions"
    versions.mkdir(parents=True)
    previous = "None"
    for i in range(revisions):
        k = i % tables
        if i < tables:
            body = (
                f"    op.execute('CREATE TABLE t{k} (id serial PRIMARY KEY, name text NOT NULL, "
                f"kind text DEFAULT \\'x\\', created timestamptz DEFAULT now(), "
                f"ref integer REFERENCES t0(id))')\n"
                if k else
                "    op.execute('CREATE TABLE t0 (id serial PRIMARY KEY, name text NOT NULL)')\n"
            )
            if plain:
                body = body.replace(" ref integer REFERENCES t0(id)", " ref integer")
            else:
                body += f"    op.execute('CREATE INDEX t{k}_name ON t{k} (name)')\n"
                body += f"    op.execute(\"INSERT INTO t{k} (name) VALUES ('seed')\")\n"  # noqa: S608
        elif (i - tables) % 2 == 0:
            body = f"    op.execute('ALTER TABLE t{k} ADD COLUMN tmp{i} text')\n"
        else:
            body = f"    op.execute('ALTER TABLE t{(i - 1) % tables} DROP COLUMN tmp{i - 1}')\n"
        rev = f"r{i:04d}"
        (versions / f"{rev}.py").write_text(
            f"from alembic import op\nrevision = {rev!r}\n"
            f"down_revision = {previous}\n"
            f"def upgrade():\n{body}def downgrade():\n    pass\n"
        )
        previous = repr(rev)
    return directory

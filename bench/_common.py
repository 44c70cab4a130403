"""Shared helpers of the benchmarks: a server (embedded unless TENANTRY_BENCH_URL), databases."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import make_engine
from tenantry.names import quote


@contextmanager
def server() -> Iterator[str]:
    url = os.environ.get("TENANTRY_BENCH_URL")
    if url:
        yield url
        return
    from tenantry import embedded

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
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


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

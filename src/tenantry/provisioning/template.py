"""Template provisioning: new schema tenants are copied from a template kept at the head.

The template is the schema ``tenantry_template``, migrated to the head of the tenant stream.
``pg_dump`` captures it once per head revision (DDL, seed rows, sequence values, comments,
grants and the stamped ``alembic_version`` row); the dump is stored, split at every mention of
the template's name, in ``public.tenantry_templates``. A new tenant gets the chunks joined with
its own schema name, executed in one round trip inside the tenant's create transaction.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..core.registry import lock_tenants
from ..errors import ClientProgramNotFound, TemplateError
from ..migrations.stream import MigrationStream
from ..models import SHARED_SCHEMA
from ..names import quote
from ..pgtools import find_program, libpq_env
from ..strategies.base import schema_exists, set_search_path

log = logging.getLogger("tenantry.template")

TEMPLATE_SCHEMA = "tenantry_template"
_TEMPLATE_LOCK = "__tenantry_template__"

# Templates already built by this process, by (server, script directory, head): other databases
# on the same server with the same migrations (tests, many Tenancy objects) reuse them.
_PROCESS_CACHE: dict[tuple[str, str, str], list[str]] = {}

metadata = sa.MetaData()
templates = sa.Table(
    "tenantry_templates",
    metadata,
    sa.Column("head", sa.Text, primary_key=True),
    sa.Column("chunks", sa.ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    schema=SHARED_SCHEMA,
)

# A mention of the template schema as a whole word (identifier, qualified name, string).
_MENTION = re.compile(rf"(?<![\w$]){TEMPLATE_SCHEMA}(?![\w$])")
# In data blocks only the statement heads name the schema; row values are left untouched.
_DATA_HEAD = re.compile(rf"(?m)^(INSERT INTO ){TEMPLATE_SCHEMA}(?=\.)")
_SEQ_SET = re.compile(rf"(setval\('){TEMPLATE_SCHEMA}(?=\.)")
_BLOCK = re.compile(r"(?m)^--\n-- (?:Data for )?Name: [^\n]*; Type: ([A-Z ]+);[^\n]*\n--\n")
_DROP_LINE = re.compile(
    rf"(?m)^(?:\\[a-z]+.*|SET [a-z_]+ = .*;|SELECT pg_catalog\.set_config\('search_path'.*;"
    rf"|CREATE SCHEMA {TEMPLATE_SCHEMA};)$"
)
_PREAMBLE = (
    "SELECT pg_catalog.set_config('search_path', '', true);\n"
    "SET LOCAL check_function_bodies = false;\n"
)


def split_dump(dump: str) -> list[str]:
    """Cut a plain-format dump of the template schema at every mention of its name.

    DDL mentions (qualified names, ``nextval('tenantry_template.seq')`` defaults, function
    bodies, view definitions, comments) are all cut; in row data only ``INSERT INTO`` heads
    and ``setval`` calls are, so row values that happen to contain the name stay as they are.
    """
    text = _DROP_LINE.sub("", dump)
    marker = "\x00"  # cannot occur in a dump: PostgreSQL text never contains NUL
    parts: list[str] = []
    pos, kind = 0, ""
    for match in _BLOCK.finditer(text):
        parts.append(_mark(text[pos:match.start()], kind, marker))
        pos, kind = match.start(), match.group(1)
    parts.append(_mark(text[pos:], kind, marker))
    body = "".join(parts)
    return (_PREAMBLE + body).split(marker)


def _mark(block: str, kind: str, marker: str) -> str:
    if kind == "TABLE DATA":
        return _DATA_HEAD.sub(rf"\g<1>{marker}", block)
    if kind == "SEQUENCE SET":
        return _SEQ_SET.sub(rf"\g<1>{marker}", block)
    return _MENTION.sub(marker, block)


def render(chunks: list[str], schema: str, preparer: sa.sql.compiler.IdentifierPreparer) -> str:
    """The template SQL for ``schema``; ends with ``schema`` alone on the search path."""
    name = preparer.quote(schema)  # quoted only when needed, like pg_dump itself
    return name.join(chunks) + f"\nSET LOCAL search_path TO {quote(schema)};\n"


def dump_schema(engine: Engine, schema: str, pg_dump: str) -> str:
    """``pg_dump`` of one schema of ``engine``'s database (plain SQL, data as INSERTs)."""
    command = [
        pg_dump, "--schema", schema, "--no-owner", "--no-tablespaces", "--no-password",
        "--inserts", "--rows-per-insert=1000", "--no-security-labels", "--no-publications",
        "--no-subscriptions", "--format=plain",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=libpq_env(engine.url),
                          check=False)
    if done.returncode != 0:
        raise TemplateError(f"pg_dump of schema {schema!r} failed: {done.stderr.strip()}")
    return done.stdout


class Templates:
    """Builds, stores and renders the template of one tenant stream (thread-safe)."""

    def __init__(self, engine: Engine, stream: MigrationStream, pg_dump: str | Path | None):
        self.engine = engine
        self.stream = stream
        self._explicit = pg_dump
        self._pg_dump: str | None = None
        self._cache: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._server = engine.url.set(database=None, password=None).render_as_string()

    def sql(self, schema: str) -> str:
        """The SQL that makes ``schema`` (already created) a copy of the template at head."""
        head = self.stream.head
        if head is None:
            raise TemplateError("the tenant stream is empty: nothing to template")
        chunks = self._cache.get(head)
        if chunks is None:
            key = (self._server, str(Path(self.stream.config.get_main_option("script_location")
                                          or "").resolve()), head)
            with self._lock:
                chunks = self._cache.get(head) or _PROCESS_CACHE.get(key)
                if chunks is None:
                    chunks = self._load_or_build(head)
                    _PROCESS_CACHE[key] = chunks
                self._cache = {head: chunks}
        return render(chunks, schema, self.engine.dialect.identifier_preparer)

    def rebuild(self) -> None:
        """Forget the stored template of the current head and build it again."""
        head = self.stream.head
        with self._lock, self._locked() as conn:
            conn.execute(templates.delete().where(templates.c.head == head))
            self._cache.clear()
            for key in [k for k in _PROCESS_CACHE if k[0] == self._server]:
                del _PROCESS_CACHE[key]

    def _load_or_build(self, head: str) -> list[str]:
        with self._locked() as conn:
            chunks = conn.execute(
                sa.select(templates.c.chunks).where(templates.c.head == head)
            ).scalar()
        if chunks is not None:
            return list(chunks)
        log.info("building the tenant template for revision %s", head)
        with self._locked() as conn:
            self._migrate_template(conn, head)
            program = self.dump_program(conn)
        # No connection is held while pg_dump runs (a pool of one server connection, as behind
        # PgBouncer, must not deadlock); the dump proves which revision it captured.
        dump = dump_schema(self.engine, TEMPLATE_SCHEMA, program)
        table = re.escape(f"{TEMPLATE_SCHEMA}.{self.stream.version_table}")
        stamp = rf"INSERT INTO {table} VALUES\s*\(\s*'{re.escape(head)}'\s*\);"
        if re.search(stamp, dump) is None:
            raise TemplateError(f"template schema moved away from {head} while being dumped")
        built = split_dump(dump)
        with self._locked() as conn:
            conn.execute(
                sa.dialects.postgresql.insert(templates)
                .values(head=head, chunks=built)
                .on_conflict_do_nothing()
            )
        return built

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            lock_tenants(conn, [_TEMPLATE_LOCK])
            metadata.create_all(conn, checkfirst=True)
            yield conn

    def _migrate_template(self, conn: Connection, head: str) -> None:
        """Bring the template schema to ``head``: upgrade it, or rebuild it from scratch."""
        if schema_exists(conn, TEMPLATE_SCHEMA):
            try:
                with conn.begin_nested():
                    set_search_path(conn, TEMPLATE_SCHEMA)
                    if self.stream.upgrade(conn, TEMPLATE_SCHEMA).after == head:
                        return
            except Exception as exc:  # a template off the current history: start over
                log.info("rebuilding the tenant template from scratch: %s", exc)
            conn.execute(sa.schema.DropSchema(TEMPLATE_SCHEMA, cascade=True))
        conn.execute(sa.schema.CreateSchema(TEMPLATE_SCHEMA))
        set_search_path(conn, TEMPLATE_SCHEMA)
        self.stream.upgrade(conn, TEMPLATE_SCHEMA)

    def dump_program(self, conn: Connection) -> str:
        """The ``pg_dump`` for this server (found once; see :mod:`tenantry.pgtools`)."""
        if self._pg_dump is None:
            version = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
            try:
                self._pg_dump = find_program("pg_dump", version // 10000,
                                             explicit=self._explicit)
            except ClientProgramNotFound as exc:
                raise ClientProgramNotFound(
                    f"template provisioning: {exc}; or pass pg_dump=..., or use "
                    "provisioning='migrations'"
                ) from exc
        return self._pg_dump

    @property
    def checked(self) -> bool:
        """Whether a usable ``pg_dump`` has been found already."""
        return self._pg_dump is not None

    def warm(self) -> None:
        """Load (or build) the template of the head now, before a transaction is open."""
        self.sql(TEMPLATE_SCHEMA)

    def available(self) -> bool:
        """Whether a suitable ``pg_dump`` exists (checked once)."""
        try:
            with self.engine.connect() as conn:
                self.dump_program(conn)
        except ClientProgramNotFound:
            return False
        return True

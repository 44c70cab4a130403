"""Logical replication of one tenant schema, so a move blocks writes only for the switch.

:class:`Replication` keeps a target schema (already created, empty) in step with the source:

* on the source: the schema's tables without a replica identity get ``REPLICA IDENTITY FULL``
  (else their ``UPDATE``/``DELETE`` would fail while published); a marker table; a publication
  of the schema's tables; a logical replication slot;
* on the target: the same marker table; a subscription that copies every table, then streams
  every change committed on the source.

The slot is made before the subscription (``create_slot = false``): a subscription that creates
its slot in its own cluster hangs, which promotions and demotions (same server) would do.
:meth:`catch_up` commits a token into the source's marker and waits for it on the target:
changes are applied in commit order, so everything committed before the token is there.
:meth:`stop` undoes everything, on success and on failure alike (on success the source is
about to be dropped, so its replica identities are left as they are).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from ..errors import MoveError
from ..names import quote
from . import sequences

log = logging.getLogger("tenantry")

#: Seconds between two looks at the subscription's progress.
POLL = 0.02
#: Subscriptions, slots, publications and marker tables of moves are named ``PREFIX + hash``.
PREFIX = "tenantry_move_"


def move_name(schema: str) -> str:
    """Name of the replication objects of a move of the tenant whose schema is ``schema``.

    One move per tenant at a time: objects with this name found while holding the tenant's
    lock are a killed move's.
    """
    return PREFIX + hashlib.sha256(schema.encode()).hexdigest()[:16]


def logical_wal(conn: Connection) -> bool:
    """Whether the server of ``conn`` can publish changes (``wal_level = logical``)."""
    return bool(conn.exec_driver_sql("SHOW wal_level").scalar_one() == "logical")


def obstacle(conn: Connection, schema: str) -> str | None:
    """Why ``schema`` of ``conn``'s database cannot be replicated; ``None`` if it can."""
    if not logical_wal(conn):
        return "the source server has wal_level != logical (set it and restart)"
    unlogged = conn.execute(sa.text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind IN ('r', 'p') AND c.relpersistence = 'u' "
        "ORDER BY 1"
    ), {"s": schema}).scalars().all()
    if unlogged:
        return f"unlogged tables cannot be replicated: {', '.join(unlogged)}"
    return None


def conninfo(url: URL) -> str:
    """libpq connection string of ``url`` (for ``CREATE SUBSCRIPTION``; holds the password)."""
    from psycopg.conninfo import make_conninfo  # the driver loads only when used

    query = {k: (v[0] if isinstance(v, tuple) else v) for k, v in url.query.items()}
    parts = {
        "host": url.host or query.get("host"),
        "port": str(url.port or query.get("port") or ""),
        "user": url.username,
        "password": url.password if isinstance(url.password, str) else None,
        "dbname": url.database,
        "sslmode": query.get("sslmode"),
    }
    return make_conninfo(**{k: v for k, v in parts.items() if v})


def copy_sequences(source: Connection, target: Connection, schema: str) -> None:
    """Set every sequence of ``schema`` on ``target`` to its state on ``source``.

    Logical replication carries rows, not sequence positions.
    """
    for name, last_value, is_called in sequences.positions(source, schema):
        sequences.set_position(target, schema, name, last_value, is_called)


class Replication:
    """Publication, slot and subscription carrying schema ``schema`` from ``source`` to
    ``target`` (both URLs name the databases)."""

    def __init__(
        self, tenant: str, schema: str, source: URL, target: URL, *, timeout: float = 3600.0
    ) -> None:
        self.tenant, self.schema, self.timeout = tenant, schema, timeout
        self.name = move_name(schema)
        self.marker = f"{quote(schema)}.{quote(self.name)}"
        self._source_url = source
        self._source = self._engine(source)
        self._target = self._engine(target)
        self._identity_full: list[str] = []
        self._subscribed = False

    @staticmethod
    def _engine(url: URL) -> Engine:
        return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def start(self) -> None:
        """Publish the source schema and subscribe the target to it (returns at once)."""
        with self._source.connect() as source:  # the caller checked ``obstacle`` already
            tables = self._tables(source)
            self._identity_full = self._without_identity(source)
            for table in self._identity_full:
                source.exec_driver_sql(
                    f"ALTER TABLE {quote(self.schema)}.{quote(table)} REPLICA IDENTITY FULL"
                )
            source.exec_driver_sql(f"CREATE TABLE {self.marker} (token text PRIMARY KEY)")
            published = [f"{quote(self.schema)}.{quote(t)}" for t in [*tables, self.name]]
            source.exec_driver_sql(
                f"CREATE PUBLICATION {quote(self.name)} FOR TABLE {', '.join(published)}"
            )
            source.execute(
                sa.text("SELECT pg_create_logical_replication_slot(:n, 'pgoutput')"),
                {"n": self.name},
            )
        with self._target.connect() as target:
            target.exec_driver_sql(f"CREATE TABLE {self.marker} (token text PRIMARY KEY)")
            literal = sa.String().literal_processor(target.dialect)  # type: ignore[no-untyped-call]
            assert literal is not None
            statement = (
                f"CREATE SUBSCRIPTION {quote(self.name)} "
                f"CONNECTION {literal(conninfo(self._source_url))} "
                f"PUBLICATION {quote(self.name)} "
                f"WITH (create_slot = false, slot_name = {quote(self.name)}, copy_data = true)"
            )
            try:
                target.exec_driver_sql(statement)
            except sa.exc.DBAPIError as exc:  # the statement holds the password: not shown
                detail = getattr(exc.orig, "diag", None)
                message = getattr(detail, "message_primary", None) or type(exc.orig).__name__
                raise MoveError(
                    f"moving tenant {self.tenant!r}: cannot subscribe to the source: {message}"
                ) from None
            self._subscribed = True

    def _tables(self, conn: Connection) -> list[str]:
        query = sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY 1"
        )
        return list(conn.execute(query, {"s": self.schema}).scalars())

    def _without_identity(self, conn: Connection) -> list[str]:
        """Tables whose rows logical replication cannot identify (no primary key, default
        identity)."""
        query = sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relkind = 'r' AND c.relreplident = 'd' "
            "AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
            "AND i.indisprimary) ORDER BY 1"
        )
        return list(conn.execute(query, {"s": self.schema}).scalars())

    def wait_synced(self) -> None:
        """Wait until the subscription has copied every table and streams changes."""
        query = sa.text(
            "SELECT count(*) FILTER (WHERE r.srsubstate <> 'r'), count(*) "
            "FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid "
            "WHERE s.subname = :n"
        )
        with self._source.connect() as source:
            expected = len(self._tables(source))  # the marker included

        def synced(target: Connection) -> bool:
            pending, total = target.execute(query, {"n": self.name}).one()
            return bool(total >= expected and pending == 0)

        self._wait(synced, "the first copy")

    def catch_up(self) -> None:
        """Commit a token on the source, wait until the target has applied it."""
        token = {"t": uuid.uuid4().hex}
        with self._source.connect() as source:
            source.execute(sa.text(f"INSERT INTO {self.marker} VALUES (:t)"), token)  # noqa: S608
        seen = sa.text(f"SELECT count(*) FROM {self.marker} WHERE token = :t")  # noqa: S608
        self._wait(lambda target: bool(target.execute(seen, token).scalar_one()), "the catch-up")

    def _wait(self, done: Callable[[Connection], bool], what: str) -> None:
        errors = sa.text(
            "SELECT apply_error_count + sync_error_count "
            "FROM pg_stat_subscription_stats WHERE subname = :n"
        )
        deadline = time.monotonic() + self.timeout
        with self._target.connect() as target:
            while not done(target):
                if target.execute(errors, {"n": self.name}).scalar():
                    raise MoveError(
                        f"moving tenant {self.tenant!r}: logical replication failed during "
                        f"{what} (the target server's log says why)"
                    )
                if time.monotonic() > deadline:
                    raise MoveError(
                        f"moving tenant {self.tenant!r}: {what} took over {self.timeout:g} s"
                    )
                time.sleep(POLL)

    def stop(self, *, restore_identities: bool = True) -> None:
        """Drop the subscription, slot, publication and markers; restore replica identities
        (which waits for locks on the source's tables: not while writes are blocked).

        Safe to call at any point after construction, and more than once.
        """
        try:
            with self._target.connect() as target:
                if self._subscribed:
                    target.exec_driver_sql(f"DROP SUBSCRIPTION IF EXISTS {quote(self.name)}")
                    self._subscribed = False
                target.exec_driver_sql(f"DROP TABLE IF EXISTS {self.marker}")
            with self._source.connect() as source:
                drop_slot(source, self.name)  # if DROP SUBSCRIPTION did not (none was made)
                source.exec_driver_sql(f"DROP PUBLICATION IF EXISTS {quote(self.name)}")
                source.exec_driver_sql(f"DROP TABLE IF EXISTS {self.marker}")
                for table in self._identity_full if restore_identities else []:
                    source.exec_driver_sql(
                        f"ALTER TABLE IF EXISTS {quote(self.schema)}.{quote(table)} "
                        "REPLICA IDENTITY DEFAULT"
                    )
                self._identity_full = []
        finally:
            self._source.dispose()
            self._target.dispose()


def drop_slot(conn: Connection, name: str) -> None:
    """Drop replication slot ``name`` of ``conn``'s server if it exists, once it is idle."""
    query = sa.text("SELECT active FROM pg_replication_slots WHERE slot_name = :n")
    deadline = time.monotonic() + 30
    while (active := conn.execute(query, {"n": name}).scalar()) is not None:
        if not active or time.monotonic() > deadline:
            conn.execute(sa.text("SELECT pg_drop_replication_slot(:n)"), {"n": name})
            return
        time.sleep(POLL)


def leftovers(conn: Connection) -> dict[str, list[str]]:
    """Moves' subscriptions and slots on ``conn``'s server: name -> what (``subscription in
    DB``, ``slot``)."""
    found: dict[str, list[str]] = {}
    like = {"p": PREFIX.replace("_", "\\_") + "%"}
    subscriptions = conn.execute(sa.text(
        "SELECT s.subname, d.datname FROM pg_subscription s "
        "JOIN pg_database d ON d.oid = s.subdbid WHERE s.subname LIKE :p ORDER BY 1"
    ), like)
    for name, database in subscriptions:
        found.setdefault(name, []).append(f"subscription in database {database}")
    slots = conn.execute(sa.text(
        "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE :p ORDER BY 1"
    ), like).scalars()
    for name in slots:
        found.setdefault(name, []).append("slot")
    return found


def local_leftovers(conn: Connection) -> dict[str, list[str]]:
    """Moves' publications and marker tables in ``conn``'s database: name -> what
    (``publication``, ``marker table SCHEMA.NAME``)."""
    found: dict[str, list[str]] = {}
    like = {"p": PREFIX.replace("_", "\\_") + "%"}
    rows = conn.execute(sa.text(  # one round trip: doctor runs this in every tenant database
        "SELECT pubname, NULL FROM pg_publication WHERE pubname LIKE :p UNION ALL "
        "SELECT c.relname, n.nspname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND c.relname LIKE :p ORDER BY 1, 2 NULLS FIRST"
    ), like)
    for name, schema in rows:
        what = "publication" if schema is None else f"marker table {schema}.{name}"
        found.setdefault(name, []).append(what)
    return found


def drop_local(conn: Connection, name: str) -> None:
    """Drop the publication and the marker tables called ``name`` in ``conn``'s database."""
    conn.exec_driver_sql(f"DROP PUBLICATION IF EXISTS {quote(name)}")
    schemas = conn.execute(sa.text(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND c.relname = :n"
    ), {"n": name}).scalars().all()
    for schema in schemas:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(name)}")


def drop_leftovers(servers: list[Engine], name: str) -> None:
    """Drop subscriptions called ``name`` on every server, then the slots called ``name``."""
    for server in servers:
        drop_subscriptions(server, name)
    for server in servers:
        with server.connect() as conn:
            drop_slot(conn, name)


def drop_subscriptions(server: Engine, name: str) -> None:
    """Drop subscriptions called ``name`` on ``server``'s cluster, detached from their
    publisher first (it may be gone; its slot is dropped separately)."""
    with server.connect() as conn:
        databases = conn.execute(sa.text(
            "SELECT d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
            "WHERE s.subname = :n"
        ), {"n": name}).scalars().all()
    for database in databases:
        engine = sa.create_engine(
            server.url.set(database=database), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        try:
            with engine.connect() as conn:
                sub = quote(name)
                conn.exec_driver_sql(f"ALTER SUBSCRIPTION {sub} DISABLE")
                conn.exec_driver_sql(f"ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)")
                conn.exec_driver_sql(f"DROP SUBSCRIPTION {sub}")
        finally:
            engine.dispose()

"""One connection per database for the questions error translation asks, outside every pool.

When a statement fails, tenantry may need one catalog lookup to name the error: does the
tenant's schema still exist (a vanished tenant), which tenant owns a schema (an isolation
error). The failing connection is still checked out, in an aborted transaction, and the pool
or the connection budget may be exhausted: asking through the pool would wait ``pool_timeout``
(or ``budget_timeout``) and replace the error with a timeout.

:func:`ask` runs such a lookup on a *probe*: one connection of its own per database (outside
the pool and the budget), opened on first use, used by one caller at a time behind a lock
taken with a short timeout (:data:`LOCK_TIMEOUT`). A busy, unreachable or failing probe
answers ``None`` and the caller keeps the driver's error: error translation never waits
(a probe that could not connect does not try again for :data:`RETRY_AFTER` seconds).
At most :data:`MAX_PROBES` probes stay open (least recently used closed first);
:meth:`~tenantry.Tenancy.dispose` closes the main database's. A probe connects with the
engine's URL (psycopg 3, sync, also for async engines) and runs as the URL's user.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import URL, Engine
from sqlalchemy.sql import ClauseElement

from ..urls import sync_url

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("tenantry.probe")

Rows = list[tuple[Any, ...]]

#: Seconds a caller waits for a probe another caller is using before giving up.
LOCK_TIMEOUT = 0.1
#: Probes kept open at once (one per database asked about).
MAX_PROBES = 4
#: Seconds during which a probe that failed to connect does not try again (an unreachable
#: server would cost every error ``CONNECT_TIMEOUT``).
RETRY_AFTER = 5.0
#: ``application_name`` of a probe's connection (unless its URL sets one).
APPLICATION_NAME = "tenantry probe"
#: libpq ``connect_timeout`` of a probe, in seconds (libpq's smallest useful value).
CONNECT_TIMEOUT = 2
# The probe's statements are catalog and registry lookups: never worth a long wait.
_SESSION = "SELECT set_config('statement_timeout', '1s', false), " \
    "set_config('lock_timeout', '100ms', false)"
# Questions are compiled for psycopg and run on a plain psycopg connection: no SQLAlchemy
# engine, so no dialect initialisation (several round trips) on a probe's first use.
_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


class Probe:
    """One connection to one database, used by one caller at a time."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._pid = os.getpid()
        self._failed = float("-inf")  # when connecting last failed (monotonic)

    def rows(self, statement: ClauseElement) -> Rows | None:
        """The rows of ``statement``, or ``None`` if the probe is busy beyond
        :data:`LOCK_TIMEOUT` or the lookup fails."""
        compiled = statement.compile(dialect=_DIALECT)
        sql, params = str(compiled), compiled.params
        if not self._lock.acquire(timeout=LOCK_TIMEOUT):
            log.debug("probe of %s busy: error left untranslated", self._name())
            return None
        try:
            reused = self._conn is not None and self._pid == os.getpid()
            try:
                return self._run(sql, params)
            except Exception as error:  # the user's error matters more than the probe's
                log.debug("probe of %s failed: %s", self._name(), error)
                if self._conn is not None and not (self._conn.closed or self._conn.broken):
                    return None  # the lookup itself failed; the connection is fine
                self._drop()
                if not reused:
                    return None
            try:  # the kept connection was closed by the server meanwhile: one fresh try
                return self._run(sql, params)
            except Exception as error:
                log.debug("probe of %s failed: %s", self._name(), error)
                self._drop()
                return None
        finally:
            self._lock.release()

    def _run(self, sql: str, params: dict[str, Any]) -> Rows:
        with self._connection().cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._pid != os.getpid():  # a forked child: never touch the parent's socket
            self._conn, self._pid = None, os.getpid()
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            if time.monotonic() - self._failed < RETRY_AFTER:
                raise ConnectionError("the probe could not connect a moment ago")
            cargs, cparams = _DIALECT.create_connect_args(self.url)  # type: ignore[no-untyped-call]
            cparams.setdefault("connect_timeout", CONNECT_TIMEOUT)
            cparams.setdefault("application_name", APPLICATION_NAME)
            try:
                # the driver is loaded on first need: importing tenantry loads none
                driver = PGDialect_psycopg.import_dbapi()  # type: ignore[no-untyped-call]
                conn = driver.connect(*cargs, **cparams, autocommit=True)
                conn.execute(_SESSION)
            except Exception:
                self._failed = time.monotonic()
                raise
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as error:  # pragma: no cover - a dead socket
                log.debug("closing the probe of %s: %s", self._name(), error)

    def close(self, *, wait: bool = True) -> bool:
        """Close the connection; ``wait=False``: only if no one is using it (returns whether
        it was closed)."""
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            self._drop()
        finally:
            self._lock.release()
        return True

    def _name(self) -> str:
        return self.url.render_as_string(hide_password=True)


_probes: OrderedDict[URL, Probe] = OrderedDict()
_registry_lock = threading.Lock()  # guards ``_probes``; never held while talking to a server


def probe_for(engine: Engine | URL) -> Probe:
    """The probe of the database of ``engine`` (or of a URL): made on first use, marked
    recently used."""
    url = sync_url(engine if isinstance(engine, URL) else engine.url)
    with _registry_lock:
        probe = _probes.get(url)
        if probe is not None:
            _probes.move_to_end(url)
            return probe
        probe = _probes[url] = Probe(url)
        extra = list(_probes.values())[: max(0, len(_probes) - MAX_PROBES)]
    for old in extra:  # least recently used first; one in use stays open for now
        if old.close(wait=False):
            with _registry_lock:
                if _probes.get(old.url) is old:
                    del _probes[old.url]
    return probe


def rows(engine: Engine | URL, statement: ClauseElement) -> Rows | None:
    """The rows of ``statement`` on the probe of ``engine``'s database (or a URL's); ``None``
    when the probe is busy or the lookup fails. Never takes a connection of a pool."""
    return probe_for(engine).rows(statement)


def close_for(engine: Engine | URL) -> None:
    """Close the probe of ``engine``'s database, if open (:meth:`Tenancy.dispose` calls it)."""
    url = sync_url(engine if isinstance(engine, URL) else engine.url)
    with _registry_lock:
        probe = _probes.pop(url, None)
    if probe is not None:
        probe.close()


def close_all() -> None:
    """Close every probe (e.g. before forking, or at the end of a test session)."""
    with _registry_lock:
        probes = list(_probes.values())
        _probes.clear()
    for probe in probes:
        probe.close()

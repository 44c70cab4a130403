"""Tenant engines of one server share what SQLAlchemy learns when it initialises a dialect.

SQLAlchemy initialises a new engine's dialect on its first connection: with psycopg five round
trips (server version, current schema, default isolation level, ``standard_conforming_strings``,
the hstore type), which cost more than the connection itself. With more tenant databases than
engines kept, every engine the LRU rebuilds pays them again on its first request.

:class:`DialectReuse` lets the first engine of a ``(server, login, options)`` initialise as
usual, records the plain values its initialisation set on the dialect (numbers, strings,
flags, version tuples), and makes the next engines of the same server, login and options with
``create_engine(..., _initialize=False)``, their dialect given those values and the driver's
per-connection setup (``on_connect``) hooked as ``create_engine`` would. Tenant databases of a
server are made from one template, so what the first one answered holds for the others.

Not reused (every engine initialises itself): a first engine whose initialisation registered
more than plain values (psycopg's hstore adapters, when the extension is installed). Until a
first engine has connected, every new engine initialises itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

#: Types of the dialect attributes that are copied (anything else set by initialisation, e.g.
#: memoized driver objects, is recomputed by each dialect on demand).
PLAIN = (type(None), bool, int, float, str, tuple)
#: Set by the event system (tenantry's hooks), not by initialisation.
NOT_COPIED = ("_has_events",)
#: A dialect attribute whose true value means initialisation set up more than plain values.
UNSHAREABLE = ("_has_native_hstore",)

MakeEngine = Callable[..., Engine]


class DialectReuse:
    """Makes engines, reusing the dialect initialisation of the first one per server and login.

    ``reused`` counts engines made without their own initialisation.
    """

    def __init__(self) -> None:
        #: learned values by (server URL without database, options); ``None``: not shareable
        self._learned: dict[tuple[URL, str], dict[str, Any] | None] = {}
        self._lock = threading.Lock()
        self.reused = 0

    def make(self, create: MakeEngine, url: URL, **options: Any) -> Engine:
        """``create(url, **options)``, initialised from an earlier engine if possible."""
        key = (url.set(database=""), repr(sorted(options.items(), key=lambda kv: kv[0])))
        with self._lock:
            known = key in self._learned
            state = self._learned.get(key)
        if state is None:
            engine = create(url, **options)
            if not known:  # until one engine connected, each may teach us
                self._learn(key, engine)
            return engine
        engine = create(url, _initialize=False, **options)
        dialect = engine.dialect
        vars(dialect).update(state)
        on_connect = dialect.on_connect_url(engine.url)
        if on_connect is not None:

            def setup(dbapi_connection: Any, record: Any) -> None:
                on_connect(dbapi_connection)

            event.listen(engine.pool, "connect", setup)
        builtin = dialect._builtin_onconnect()  # the isolation_level= of create_engine
        if builtin is not None:
            event.listen(engine.pool, "connect", builtin)
        with self._lock:
            self.reused += 1
        return engine

    def _learn(self, key: tuple[URL, str], engine: Engine) -> None:
        """Record what initialising ``engine``'s dialect sets, after its first connection
        (our listener runs after SQLAlchemy's own, which initialises)."""
        before = dict(vars(engine.dialect))

        def learn(dbapi_connection: Any, record: Any) -> None:
            after = vars(engine.dialect)
            state: dict[str, Any] | None = {
                name: value
                for name, value in after.items()
                if isinstance(value, PLAIN)
                and name not in NOT_COPIED
                and (name not in before or before[name] != value)
            }
            if any(after.get(name) for name in UNSHAREABLE):
                state = None  # every engine initialises itself
            with self._lock:
                self._learned.setdefault(key, state)

        event.listen(engine.pool, "connect", learn, once=True)

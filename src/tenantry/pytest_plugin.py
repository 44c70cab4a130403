"""pytest fixtures for applications built on tenantry (entry point ``pytest11``: ``tenantry``).

Inert until a test asks for a ``tenantry_*`` fixture: loading the plugin imports nothing but
pytest and starts no server. Fixtures (see docs/testing.md):

* ``tenantry_server_url`` (session): a PostgreSQL server: ``$TENANTRY_TEST_URL`` or an embedded
  one started for the session (per pytest-xdist worker);
* ``tenantry_database_url`` (session): a fresh database on it for this session / xdist worker;
* ``tenantry_config`` (session): ``url -> Tenancy``; from the ini option ``tenantry_app``
  (``module:attribute`` naming your Tenancy, cloned onto the test database, or a callable
  taking the URL), or override the fixture;
* ``tenantry_tenancy`` (session): that Tenancy, shared schema migrated;
* ``tenantry_tenant`` (session): the name of a tenant created once per session;
* ``tenantry_connection`` / ``tenantry_session`` (function): a connection / ORM session on the
  test tenant inside a transaction rolled back after the test; commits become SAVEPOINT
  releases, so code under test may commit. While ``tenantry_session`` is active the test
  tenant is selected and ``tenantry_tenancy.session()`` for it joins the same transaction;
* ``tenantry_make_tenant`` (function): ``make(name=None) -> name``, tenants dropped after the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from .tenancy import Tenancy

TenancyFactory = Callable[[str], "Tenancy"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "tenantry_app",
        "module:attribute of the application's Tenancy (cloned onto the test database) or of "
        "a callable taking a database URL and returning a Tenancy",
        default="",
    )
    parser.addini("tenantry_tenant", "name of the tenant created once per test session",
                  default="test")


def _worker() -> str:
    """The pytest-xdist worker id (``gw0``...), or ``main`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def tenantry_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database (``$TENANTRY_TEST_URL`` or embedded).

    The role needs CREATEDB: each session (each xdist worker) gets its own database on it.
    """
    from .embedded import server_url

    with server_url("TENANTRY_TEST_URL") as url:
        yield url


@pytest.fixture(scope="session")
def tenantry_database_url(tenantry_server_url: str) -> Iterator[str]:
    """A database created for this test session (one per xdist worker), dropped at the end."""
    from sqlalchemy.pool import NullPool

    from .names import quote
    from .tenancy import make_engine

    admin = make_engine(tenantry_server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"tenantry_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
        admin.dispose()


@pytest.fixture(scope="session")
def tenantry_config(pytestconfig: pytest.Config) -> TenancyFactory:
    """How to build the application's Tenancy on a database URL (override to customise)."""
    spec = str(pytestconfig.getini("tenantry_app") or "").strip()
    return _factory(spec)


def _factory(spec: str) -> TenancyFactory:
    from .errors import ConfigurationError
    from .loading import import_spec
    from .tenancy import Tenancy

    if not spec:
        return Tenancy
    target = import_spec(spec, "ini option tenantry_app")
    if isinstance(target, Tenancy):
        return lambda url: clone(target, url)
    if callable(target):
        return target  # type: ignore[no-any-return]
    raise ConfigurationError(f"tenantry_app {spec!r} is neither a Tenancy nor a callable")


def clone(tenancy: Tenancy, url: str) -> Tenancy:
    """A Tenancy configured like ``tenancy`` (strategy, prefix, models, migrations) on ``url``."""
    from .tenancy import Tenancy

    def spec(stream: Any) -> Any:  # each stream as plain paths, with its own version table
        return None if stream is None else stream.spec

    return Tenancy(
        url,
        strategy=tenancy.strategy.kind,
        prefix=tenancy.prefix,
        metadata=tenancy.metadata,
        tenant_migrations=spec(tenancy.tenant_stream),
        shared_migrations=spec(tenancy.shared_stream),
    )


@pytest.fixture(scope="session")
def tenantry_tenancy(
    tenantry_config: TenancyFactory, tenantry_database_url: str
) -> Iterator[Tenancy]:
    """The application's Tenancy on the session's test database, shared schema migrated."""
    tenancy = tenantry_config(tenantry_database_url)
    database_tenants = _own_database_names(tenancy)
    tenancy.migrate_shared()
    try:
        yield tenancy
    finally:
        if database_tenants:
            _drop_tenant_databases(tenancy)
        tenancy.dispose()


def _own_database_names(tenancy: Tenancy) -> bool:
    """For the database strategy, make this session's tenant database names its own.

    Tenant databases are server-wide (unlike the per-session main database): two sessions or
    xdist workers on one server would both create ``tenant_test``. A session-unique prefix
    (``tenant_gw0_1a2b3c_``) keeps them apart. Returns whether the Tenancy is a database one.
    """
    from .strategies import DatabaseStrategy

    if not isinstance(tenancy.strategy, DatabaseStrategy):
        return False
    worker = "".join(ch for ch in _worker().lower() if ch.isalnum())
    prefix = f"{tenancy.prefix}{worker}_{uuid.uuid4().hex[:6]}_"
    tenancy.prefix = tenancy.strategy.prefix = prefix
    return True


def _drop_tenant_databases(tenancy: Tenancy) -> None:
    """Drop every tenant database (and template) the session made, on every server."""
    from .strategies import DatabaseStrategy

    for info in tenancy.list_tenants():
        tenancy.drop_tenant(info.name, confirm=True)
    if isinstance(tenancy.strategy, DatabaseStrategy):
        tenancy.strategy.drop_templates()


@pytest.fixture(scope="session")
def tenantry_tenant(pytestconfig: pytest.Config, tenantry_tenancy: Tenancy) -> str:
    """Name of the test tenant, created once per session (ini ``tenantry_tenant``)."""
    name = str(pytestconfig.getini("tenantry_tenant") or "test")
    tenantry_tenancy.create_tenant(name)
    return name


@pytest.fixture
def tenantry_connection(tenantry_tenancy: Tenancy, tenantry_tenant: str) -> Iterator[Connection]:
    """A connection routed to the test tenant, in a transaction rolled back after the test."""
    with tenantry_tenancy.connection(tenantry_tenant) as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


@pytest.fixture
def tenantry_session(
    tenantry_tenancy: Tenancy,
    tenantry_tenant: str,
    tenantry_connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Session]:
    """An ORM session on the test tenant whose work is rolled back after the test.

    ``commit()`` releases a SAVEPOINT instead of committing. For the test's duration the test
    tenant is the current one, and ``tenantry_tenancy.session()`` for it returns sessions
    joined to the same transaction (so code under test that opens its own sessions is
    rolled back too).
    """
    from .context import current_tenant, use
    from .hooks.orm import TenantSession

    def joined(**kwargs: Any) -> Session:
        info = dict(kwargs.pop("info", None) or {}, tenantry_tenant=tenantry_tenant)
        return TenantSession(
            bind=tenantry_connection,
            join_transaction_mode="create_savepoint",
            info=info,
            **kwargs,
        )

    original = tenantry_tenancy.session

    def session(tenant: str | None = None, **kwargs: Any) -> Session:
        name = tenant if tenant is not None else current_tenant()
        if name == tenantry_tenant:
            return joined(**kwargs)
        return original(tenant, **kwargs)

    monkeypatch.setattr(tenantry_tenancy, "session", session)
    with use(tenantry_tenant), joined() as s:
        yield s


@pytest.fixture
def tenantry_make_tenant(tenantry_tenancy: Tenancy) -> Iterator[Callable[..., str]]:
    """``make(name=None) -> name``: create a tenant (unique name by default) for this test;
    every tenant made is dropped after the test. Creating tenants commits: prefer
    ``tenantry_tenant`` when one tenant is enough."""
    made: list[str] = []

    def make(name: str | None = None) -> str:
        name = name or f"t{uuid.uuid4().hex[:10]}"
        tenantry_tenancy.create_tenant(name)
        made.append(name)
        return name

    yield make
    for name in reversed(made):
        tenantry_tenancy.drop_tenant(name, confirm=True)

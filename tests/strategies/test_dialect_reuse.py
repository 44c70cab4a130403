"""Tenant engines after the first of a server reuse its dialect initialisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from tenantry import Tenancy
from tenantry.strategies.database import DatabaseStrategy
from tenantry.strategies.dialectreuse import DialectReuse
from tests.app.models import Customer


def count_initialisations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Databases whose engine ran SQLAlchemy's dialect initialisation, in order."""
    seen: list[str] = []
    original = PGDialect_psycopg.initialize

    def initialize(self: PGDialect_psycopg, connection: sa.Connection) -> None:
        seen.append(connection.engine.url.database or "")
        original(self, connection)

    monkeypatch.setattr(PGDialect_psycopg, "initialize", initialize)
    return seen


def test_later_tenant_engines_skip_dialect_initialisation(
    make_tenancy: Callable[..., Tenancy], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenancy = make_tenancy(placement=lambda tenant, load: "main")
    for name in ("acme", "globex", "initech"):
        tenancy.create_tenant(name)
    tenancy.strategy.dispose()
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    strategy.dialects = DialectReuse()  # as in a new process
    seen = count_initialisations(monkeypatch)
    for name in ("acme", "globex", "initech"):
        with tenancy.session(name) as session:
            session.add(Customer(name=f"{name} customer"))
            session.commit()
        with tenancy.session(name) as session:
            assert session.scalars(sa.select(Customer.name)).all() == [f"{name} customer"]
    assert seen == [tenancy.prefix + "acme"]
    assert strategy.dialects.reused == 2
    first = strategy.engine(tenancy.get_tenant("acme").location).dialect
    later = strategy.engine(tenancy.get_tenant("initech").location).dialect
    assert later is not first
    for name in ("server_version_info", "default_schema_name", "default_isolation_level"):
        assert getattr(later, name) == getattr(first, name) is not None


def test_reused_engines_keep_the_isolation_level_option(
    make_tenancy: Callable[..., Tenancy], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenancy = make_tenancy(placement=lambda tenant, load: "main")
    for name in ("acme", "globex"):
        tenancy.create_tenant(name)
    strategy = tenancy.strategy
    assert isinstance(strategy, DatabaseStrategy)
    strategy.dispose()
    strategy.engines.engine_options = {"isolation_level": "REPEATABLE READ"}
    strategy.dialects = DialectReuse()
    seen = count_initialisations(monkeypatch)
    for name in ("acme", "globex"):
        with tenancy.connection(name) as conn:
            level = conn.exec_driver_sql("SHOW transaction_isolation").scalar_one()
            assert level == "repeatable read"
    assert len(seen) == 1 and strategy.dialects.reused == 1


def test_engines_whose_initialisation_is_not_plain_values_initialise_each(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(database_url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS hstore")
    except sa.exc.DBAPIError:
        pytest.skip("the hstore extension is not available on this server")
    finally:
        admin.dispose()
    seen = count_initialisations(monkeypatch)
    reuse = DialectReuse()
    engines: list[Any] = []
    for _ in range(2):
        engine = reuse.make(sa.create_engine, url)
        engines.append(engine)
        with engine.connect() as conn:
            value = conn.execute(sa.text("SELECT 'a=>1'::hstore")).scalar_one()
            assert value == {"a": "1"}  # psycopg's hstore adapter, registered by initialise
    for engine in engines:
        engine.dispose()
    assert len(seen) == 2 and reuse.reused == 0

"""Intent records: a database tenant's rename, create or drop stopped part-way is reported by
doctor, finished by ``doctor --fix`` or by running the operation again; doctor drops storage
only on proof (an identical registered copy, or no rows)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tenantry import DatabaseStrategy, Problem, Tenancy, UnfinishedOperation
from tenantry.core.intents import Intent, Operation, all_intents, begin
from tenantry.names import quote
from tests.support.databases import database_names


def admin(t: Tenancy) -> DatabaseStrategy:
    assert isinstance(t.strategy, DatabaseStrategy)
    return t.strategy


def write_rows(t: Tenancy, name: str, n: int = 5) -> None:
    schema = quote(t.get_tenant(name).schema)
    with t.connection(name) as conn:
        for i in range(n):
            insert = f"INSERT INTO {schema}.customers (name) VALUES (:n)"  # noqa: S608
            conn.execute(sa.text(insert), {"n": f"c{i}"})
        conn.commit()


def count_rows(t: Tenancy, name: str) -> int:
    schema = quote(t.get_tenant(name).schema)
    with t.connection(name) as conn:
        query = f"SELECT count(*) FROM {schema}.customers"  # noqa: S608
        return int(conn.execute(sa.text(query)).scalar_one())


def killed_rename(t: Tenancy, old: str, new: str) -> None:
    """The state a rename leaves when killed after ``ALTER DATABASE ... RENAME``, before
    connections are allowed again and before the schema inside is renamed."""
    info = t.get_tenant(old)
    strategy = admin(t)
    target = strategy.renamed(info.location, new)
    begin(t.engine, Intent(Operation.RENAME, old, info.location, target, target=new,
                           step="connections refused"))
    strategy.engines.discard(info.location.server or "main", info.location.database or "")
    with strategy.admin(info.location.server or "main").connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE {quote(info.schema)} ALLOW_CONNECTIONS false")
        conn.exec_driver_sql(
            f"ALTER DATABASE {quote(info.schema)} RENAME TO {quote(target.database or '')}"
        )


def test_a_killed_rename_is_reported_where_its_data_is_and_rerun_finishes_it(dbt: Tenancy) -> None:
    dbt.create_tenant("acme", strategy=None)
    write_rows(dbt, "acme")
    killed_rename(dbt, "acme", "acme2")
    findings = dbt.doctor().findings
    assert [f.problem for f in findings] == [Problem.UNFINISHED]
    (finding,) = findings
    assert finding.tenant == "acme" and not finding.destructive
    assert f"{dbt.prefix}acme2" in finding.subject and "refusing connections" in finding.subject
    assert "rename of 'acme' to 'acme2'" in finding.detail
    with pytest.raises(UnfinishedOperation, match="tenantry rename acme acme2"):
        dbt.drop_tenant("acme", confirm=True)
    info = dbt.rename_tenant("acme", "acme2")  # resumes: no TenantExists, no UnknownTenant
    assert info.schema == f"{dbt.prefix}acme2" and info.location.database == info.schema
    assert count_rows(dbt, "acme2") == 5  # connections allowed again, schema renamed
    assert dbt.doctor().ok
    with dbt.engine.connect() as conn:
        assert all_intents(conn) == []


def test_doctor_fix_finishes_a_killed_rename(dbt: Tenancy) -> None:
    dbt.create_tenant("acme")
    write_rows(dbt, "acme")
    killed_rename(dbt, "acme", "acme2")
    report = dbt.doctor(fix=True)  # safe: no --yes needed
    assert report.ok, report.findings
    assert [f.problem for f in report.fixed] == [Problem.UNFINISHED]
    assert [i.name for i in dbt.list_tenants()] == ["acme2"]
    assert count_rows(dbt, "acme2") == 5


def test_a_killed_create_resumes(dbt: Tenancy, pg_url: str) -> None:
    strategy = admin(dbt)
    with dbt.engine.begin() as conn:
        location = strategy.locate("newco", conn)
    dbt.setup()
    begin(dbt.engine, Intent(Operation.CREATE, "newco", None, location))
    with strategy.admin(location.server or "main").connect() as conn:  # CREATE DATABASE done
        conn.exec_driver_sql(f"CREATE DATABASE {quote(location.database or '')}")
    (finding,) = dbt.doctor().findings
    assert finding.problem == Problem.UNFINISHED and "create of 'newco'" in finding.detail
    info = dbt.create_tenant("newco")  # not TenantExists: the half-made database is redone
    assert dbt.tenant_stream is not None and info.revision == dbt.tenant_stream.head
    assert dbt.doctor().ok


def test_orphan_storage_is_dropped_only_on_proof(dbt: Tenancy, pg_url: str) -> None:
    dbt.create_tenant("acme")
    write_rows(dbt, "acme")
    info = dbt.get_tenant("acme")
    strategy = admin(dbt)
    # an unregistered database with rows, not at a known revision: needs you
    with strategy.admin("main").connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(dbt.prefix + 'stray')}")
    stray = sa.make_url(pg_url).set(database=dbt.prefix + "stray")
    engine = sa.create_engine(stray.set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {quote(dbt.prefix + 'stray')}")
        conn.exec_driver_sql(f"CREATE TABLE {quote(dbt.prefix + 'stray')}.notes (t text)")
        conn.exec_driver_sql(f"INSERT INTO {quote(dbt.prefix + 'stray')}.notes VALUES ('x')")  # noqa: S608
    engine.dispose()
    (finding,) = dbt.doctor().findings
    assert finding.problem == Problem.ORPHAN_STORAGE and finding.fix == ""
    assert "needs you" in finding.detail and "DROP DATABASE" in finding.detail
    report = dbt.doctor(fix=True, destructive=True)
    assert dbt.prefix + "stray" in database_names(pg_url)  # kept
    assert [f.subject for f in report.findings] == [dbt.prefix + "stray"]
    # once empty, it may go
    engine = sa.create_engine(stray.set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {quote(dbt.prefix + 'stray')}.notes")  # noqa: S608
    engine.dispose()
    (finding,) = dbt.doctor().findings
    assert finding.destructive and "holds no rows" in finding.detail
    assert dbt.doctor(fix=True, destructive=True).ok
    assert dbt.prefix + "stray" not in database_names(pg_url)
    assert count_rows(dbt, "acme") == 5
    assert info == dbt.get_tenant("acme")


def test_a_copy_left_by_a_move_is_dropped_only_while_it_equals_the_registered_one(
    dbt: Tenancy, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbt.create_tenant("acme")
    write_rows(dbt, "acme")
    source = dbt.get_tenant("acme").location
    assert source.server == "main"
    # killed after the switch, before the source was dropped
    monkeypatch.setattr(admin(dbt), "drop_database", lambda server, database: None)
    dbt.move_tenant("acme", to="second", online=False)
    monkeypatch.undo()
    copy = admin(dbt).engine(source)
    with copy.begin() as conn:  # the copy differs: doctor may not drop it
        conn.exec_driver_sql(f"DELETE FROM {quote(source.schema)}.customers WHERE id = 1")  # noqa: S608
    (finding,) = dbt.doctor().findings
    assert finding.problem == Problem.UNREGISTERED_COPY and finding.fix == ""
    assert "rows differ from the registered tenant's in" in finding.detail
    assert "needs you" in finding.detail
    dbt.doctor(fix=True, destructive=True)
    assert source.database in database_names(pg_url)
    with copy.begin() as conn:  # now the same rows as the registered copy
        table = f"{quote(source.schema)}.customers"
        conn.exec_driver_sql(f"INSERT INTO {table} (id, name) VALUES (1, 'c0')")  # noqa: S608
    (finding,) = dbt.doctor().findings
    assert finding.problem == Problem.UNREGISTERED_COPY and finding.fix, finding
    assert "the same rows as the registered tenant" in finding.detail, finding
    assert dbt.doctor(fix=True).ok
    assert source.database not in database_names(pg_url)
    assert count_rows(dbt, "acme") == 5

"""Online moves, promotions and demotions: logical replication, writes wait only for the switch."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tenantry import ConfigurationError, MoveError, Tenancy, TenantryError, make_engine
from tenantry.core import registry
from tenantry.doctor import Problem
from tenantry.embedded import start
from tenantry.relocation.moving import Move
from tenantry.relocation.replication import Replication, move_name
from tests.app.models import Customer, Setting
from tests.support.databases import database_names
from tests.support.moves import (
    assert_no_replication,
    count_while_writes_wait,
    leave_an_interrupted_move,
    notes_of,
    notes_table,
    prepare,
    schema_of,
    sequences,
    snapshot,
)

KINDS = ["move", "promote", "demote"]


@pytest.fixture(autouse=True, scope="module")
def _logical_wal(pg_url: str, second_url: str) -> None:
    """Online moves need ``wal_level = logical`` (embedded servers have it; a
    ``TENANTRY_TEST_URL`` server may not)."""
    for url in (pg_url, second_url):
        engine = make_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            level = conn.exec_driver_sql("SHOW wal_level").scalar()
        engine.dispose()
        if level != "logical":
            pytest.skip(f"the test server has wal_level={level}, not logical")


def write(tenancy: Tenancy, step: str) -> None:
    """Writes of every kind, each of which must not wait for any lock."""
    with tenancy.connection("acme") as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        conn.execute(sa.insert(Customer).values(name=f"during {step}", email="d@x"))
        conn.execute(sa.update(Customer).where(Customer.name == "c1").values(email=step))
        conn.execute(sa.delete(Customer).where(Customer.name == f"c{len(step)}"))
        table = notes_table(tenancy)
        conn.execute(table.update().where(table.c.body.startswith("one"))
                     .values(body=table.c.body + f" {step}"))
        conn.execute(table.delete().where(table.c.body == "two"))
        conn.commit()


def notes(tenancy: Tenancy) -> list[str]:
    with tenancy.connection("acme") as conn:
        return sorted(conn.scalars(sa.select(notes_table(tenancy).c.body)))


def identity(tenancy: Tenancy) -> str:
    """Replica identity of the table without a primary key (``d``: default)."""
    with tenancy.connection("acme") as conn:
        query = sa.text("SELECT relreplident FROM pg_class WHERE oid = CAST(:t AS regclass)")
        return str(conn.execute(query, {"t": notes_of(tenancy)}).scalar_one())


@pytest.mark.parametrize("kind", KINDS)
def test_writes_go_on_during_the_copy_and_arrive(
    make_tenancy: Callable[..., Tenancy], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenancy, op = prepare(make_tenancy, kind)
    done: list[str] = []
    synced, block = Replication.wait_synced, Move._block_writes

    def copying(self: Replication) -> None:  # the subscription copies the tables now
        write(tenancy, "copying")
        done.append("copying")
        synced(self)

    def streaming(self: Move) -> None:  # copied; changes stream until the switch
        write(tenancy, "streaming")
        done.append("streaming")
        block(self)

    monkeypatch.setattr(Replication, "wait_synced", copying)
    monkeypatch.setattr(Move, "_block_writes", streaming)
    info = op()
    monkeypatch.undo()
    assert done == ["copying", "streaming"]  # the online path ran, writes did not wait
    assert notes(tenancy) == ["one copying streaming", "three"]
    expected_location = {"move": "second", "promote": "main", "demote": None}[kind]
    assert info.location.server == expected_location
    with tenancy.session("acme") as s:  # sequences carried over: the next id follows on
        names = {c.name: c.email for c in s.scalars(sa.select(Customer))}
        assert names["c1"] == "streaming" and "c7" not in names and "c9" not in names
        assert {"during copying", "during streaming"} <= names.keys()
        c = Customer(name="after", email="a@x")
        s.add(c)
        s.commit()
        assert c.id == 503  # 501 and 502 were taken during the copy
    assert sequences(tenancy, "acme")["customers_id_seq"] == 503
    assert identity(tenancy) == "d"
    with tenancy.connection("acme") as conn:  # the replication's traces are gone
        assert not conn.exec_driver_sql(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tenantry_move%%'").scalar()
    assert_no_replication(tenancy)


@pytest.mark.parametrize("kind", KINDS)
def test_writes_wait_during_the_switch_only(
    make_tenancy: Callable[..., Tenancy], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenancy, op = prepare(make_tenancy, kind)
    seen: dict[str, Any] = {}
    catch_up = Replication.catch_up

    def switching(self: Replication) -> None:
        with tenancy.connection("acme") as conn:
            seen["reads"] = count_while_writes_wait(conn, "100ms")
        catch_up(self)

    monkeypatch.setattr(Replication, "catch_up", switching)
    op()
    assert seen["reads"] == 20
    with tenancy.session("acme") as s:
        assert s.get(Setting, "k") is None and s.get(Setting, "plan") is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_online_copy_leaves_the_tenant_in_place_and_nothing_behind(
    make_tenancy: Callable[..., Tenancy], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenancy, op = prepare(make_tenancy, kind)
    info = tenancy.get_tenant("acme")
    before = snapshot(tenancy, "acme")

    def broken(self: Replication) -> None:
        raise MoveError("replication broke")

    monkeypatch.setattr(Replication, "catch_up", broken)
    with pytest.raises(MoveError, match="replication broke"):
        op()
    assert tenancy.get_tenant("acme") == info
    assert snapshot(tenancy, "acme") == before
    assert_no_replication(tenancy)
    assert identity(tenancy) == "d"
    with tenancy.connection("acme") as conn:  # writable in place
        conn.execute(notes_table(tenancy).update().values(body="x"))
        conn.commit()
    main = tenancy.engine.url.render_as_string(hide_password=False)
    if kind == "move":
        second = tenancy.strategy.servers["second"]  # type: ignore[attr-defined]
        assert info.schema not in database_names(second.render_as_string(hide_password=False))
    elif kind == "promote":
        assert info.schema not in database_names(main)
    else:
        with tenancy.engine.connect() as conn:
            assert not conn.execute(sa.text(
                "SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": info.schema}
            ).scalar()


def test_the_password_never_shows_when_subscribing_fails(
    make_tenancy: Callable[..., Tenancy], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenancy, op = prepare(make_tenancy, "move")
    monkeypatch.setattr(
        "tenantry.relocation.replication.conninfo",
        lambda url: f"host={url.query['host']} dbname=no_such_db password=sekrit-42",
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(MoveError) as caught:
        op()
    assert "cannot subscribe" in str(caught.value)
    assert "sekrit" not in f"{caught.value!r} {caught.value.__cause__!r} {caplog.text}"
    assert caught.value.__suppress_context__
    assert_no_replication(tenancy)


@pytest.fixture(scope="module")
def plain_server() -> Iterator[str]:
    """A server with ``wal_level = replica``: it cannot publish changes."""
    server = start(logical_replication=False)
    yield server.url
    server.stop()


def test_without_logical_wal_online_refuses_and_auto_copies_offline(
    make_tenancy: Callable[..., Tenancy], plain_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    tenancy = make_tenancy(servers={"plain": plain_server},
                           placement=lambda tenant, load: "plain")
    tenancy.create_tenant("acme")
    with tenancy.session("acme") as s:
        s.add(Customer(name="kept", email="k@x"))
        s.commit()
    with pytest.raises(ConfigurationError, match="wal_level"):
        tenancy.move_tenant("acme", to="main", online=True)
    assert tenancy.get_tenant("acme").location.server == "plain"
    with caplog.at_level(logging.WARNING, logger="tenantry"):
        moved = tenancy.move_tenant("acme", to="main")  # online=None: offline copy
    assert moved.location.server == "main"
    assert "offline" in caplog.text and "wal_level" in caplog.text
    with tenancy.session("acme") as s:
        assert s.scalars(sa.select(Customer.name)).all() == ["kept"]


def test_doctor_finds_and_drops_what_an_interrupted_online_move_left(
    make_tenancy: Callable[..., Tenancy],
) -> None:
    tenancy, _ = prepare(make_tenancy, "move")
    before = snapshot(tenancy, "acme")
    leave_an_interrupted_move(tenancy, "second")
    with pytest.raises(MoveError, match=r"already exists.*doctor"):
        tenancy.move_tenant("acme", to="second")
    with tenancy.engine.begin() as conn:  # a move holding the tenant's lock: not a leftover
        registry.lock_tenants(conn, ["acme"])
        assert not [f for f in tenancy.doctor().findings
                    if f.problem == Problem.REPLICATION_LEFTOVER]
    found = [f for f in tenancy.doctor().findings if f.problem == Problem.REPLICATION_LEFTOVER]
    assert [(f.tenant, f.subject) for f in found] == [("acme", move_name(schema_of(tenancy)))]
    assert "slot on server main" in found[0].detail
    assert "subscription in database" in found[0].detail
    report = tenancy.doctor(fix=True, destructive=True)  # and the orphan target database
    assert report.ok, report.findings
    assert_no_replication(tenancy)
    with tenancy.connection("acme") as conn:
        assert not conn.exec_driver_sql(
            "SELECT count(*) FROM pg_publication").scalar()
        assert not conn.exec_driver_sql(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tenantry_move%%'").scalar()
    assert tenancy.move_tenant("acme", to="second").location.server == "second"
    assert snapshot(tenancy, "acme") == before


@pytest.mark.parametrize("kind", KINDS)
def test_no_committed_write_is_lost_under_constant_writes(
    make_tenancy: Callable[..., Tenancy], kind: str
) -> None:
    tenancy, op = prepare(make_tenancy, kind)
    committed: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            name = f"w{i}"
            try:
                with tenancy.session("acme") as s:
                    s.add(Customer(name=name, email="w@x"))
                    s.commit()
                committed.append(name)
            except (TenantryError, sa.exc.DBAPIError) as exc:  # the switch: retried
                failures.append(exc)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 20:  # writing before the move
            time.sleep(0.01)
        op()
        seen = len(committed)
        while len(committed) < seen + 20:  # and after it, at the new place
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    with tenancy.session("acme") as s:
        stored = set(s.scalars(sa.select(Customer.name).where(Customer.name.like("w%"))))
    assert set(committed) <= stored  # every committed write is at the new place
    assert len(failures) <= 3, failures  # writes failed only around the switch


@pytest.mark.parametrize("kind", KINDS)
def test_the_switch_waits_for_the_last_committed_write(
    make_tenancy: Callable[..., Tenancy], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenancy, op = prepare(make_tenancy, kind)
    block = Move._block_writes

    def lagging(self: Move) -> None:
        """The subscription is paused while a last write commits, resumed under the locks."""
        assert self._replication is not None
        subscription = self._replication.name
        target = make_engine(self._url(self.target), isolation_level="AUTOCOMMIT",
                             poolclass=NullPool)
        with target.connect() as conn:
            conn.exec_driver_sql(f"ALTER SUBSCRIPTION {subscription} DISABLE")
            with tenancy.session("acme") as s:
                s.add(Customer(name="last", email="l@x"))
                s.commit()
            block(self)
            conn.exec_driver_sql(f"ALTER SUBSCRIPTION {subscription} ENABLE")
        target.dispose()

    monkeypatch.setattr(Move, "_block_writes", lagging)
    op()
    with tenancy.session("acme") as s:
        assert s.scalars(sa.select(Customer.email).where(Customer.name == "last")).one() == "l@x"


def test_unlogged_tables_move_offline_and_large_objects_refuse(
    make_tenancy: Callable[..., Tenancy], caplog: pytest.LogCaptureFixture
) -> None:
    tenancy, _ = prepare(make_tenancy, "move")
    info = tenancy.get_tenant("acme")
    with tenancy.connection("acme") as conn:
        conn.exec_driver_sql(f"CREATE UNLOGGED TABLE {info.schema}.scratch (v int)")
        conn.execute(sa.table("scratch", sa.column("v"), schema=info.schema).insert(), {"v": 7})
        conn.commit()
    with pytest.raises(ConfigurationError, match="unlogged tables cannot be replicated: scratch"):
        tenancy.move_tenant("acme", to="second", online=True)
    second = tenancy.strategy.servers["second"]  # type: ignore[attr-defined]
    assert info.schema not in database_names(second.render_as_string(hide_password=False))
    with caplog.at_level(logging.WARNING, logger="tenantry"):
        assert tenancy.move_tenant("acme", to="second").location.server == "second"
    assert "offline" in caplog.text and "unlogged" in caplog.text
    with tenancy.connection("acme") as conn:
        assert conn.exec_driver_sql(f"SELECT v FROM {info.schema}.scratch").scalar() == 7  # noqa: S608
        conn.exec_driver_sql("SELECT lo_from_bytea(0, 'blob')")
        conn.commit()
    for online in (True, False):
        with pytest.raises(MoveError, match="large objects"):
            tenancy.move_tenant("acme", to="main", online=online)
    assert tenancy.get_tenant("acme").location.server == "second"

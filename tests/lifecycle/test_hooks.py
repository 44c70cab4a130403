"""Lifecycle hooks: inside hooks share the operation's transaction (and can veto it), after
hooks run once it committed (a failure is logged and kept, the change stays), for schema and
database tenants, sync and async."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry import Location, Tenancy, TenantEvent, UnknownTenant
from tenantry.aio import AsyncTenancy
from tenantry.errors import ConfigurationError
from tests.app.models import Setting
from tests.support.databases import database_names


class Veto(Exception):
    pass


def recorder(seen: list[tuple[str, str | None, dict[str, Any]]]) -> Callable[[TenantEvent], None]:
    def hook(event: TenantEvent) -> None:
        seen.append((event.event, event.tenant, dict(event.details)))
    return hook


def seed(event: TenantEvent) -> None:
    assert event.connection is not None
    event.connection.execute(sa.insert(Setting).values(key="plan", value="free"))


def settings(tenancy: Tenancy, name: str) -> dict[str, str]:
    with tenancy.session(name) as s:
        return {row.key: row.value for row in s.scalars(sa.select(Setting))}


@pytest.fixture(params=["schema", "database"])
def any_tenancy(request: pytest.FixtureRequest, tenancy: Tenancy,
                make_tenancy: Callable[..., Tenancy]) -> Tenancy:
    return tenancy if request.param == "schema" else make_tenancy()


def test_created_hooks_seed_inside_and_hear_after(any_tenancy: Tenancy) -> None:
    t = any_tenancy
    seen: list[Any] = []
    t.on("created", seed, when="inside")

    @t.on("created")
    def welcome(event: TenantEvent) -> None:  # after commit: the tenant is there
        seen.append((event.event, event.tenant, t.get_tenant(event.tenant or "").state.value))

    t.create_tenant("acme")
    assert settings(t, "acme")["plan"] == "free"
    assert seen == [("created", "acme", "ready")]
    t.create_tenant("acme")  # idempotent: nothing created, nothing heard
    assert len(seen) == 1


def test_a_failing_inside_hook_leaves_no_half_tenant(any_tenancy: Tenancy, second_url: str
                                                     ) -> None:
    t = any_tenancy
    main_url = t.engine.url.render_as_string(hide_password=False)

    def databases() -> set[str]:  # the template database is built once, and kept
        found = database_names(main_url) | database_names(second_url)
        return {name for name in found if not name.startswith("tenantry_template")}

    databases_before = databases()

    def refuse(event: TenantEvent) -> None:
        seed(event)
        raise Veto("no seats left")

    after: list[Any] = []
    t.on("created", refuse, when="inside")
    t.on("created", recorder(after))
    with pytest.raises(Veto):
        t.create_tenant("acme")
    assert not t.tenant_exists("acme") and after == []
    with t.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT to_regnamespace('tenant_acme')")) is None
    assert databases() == databases_before
    t.core.events.off("created", refuse)
    t.create_tenant("acme")  # nothing was left in the way
    assert settings(t, "acme") and after[0][:2] == ("created", "acme")


def test_a_failing_after_hook_is_logged_and_kept_and_the_tenant_stays(
    tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    def mail_server_down(event: TenantEvent) -> None:
        raise ConnectionError("smtp down")

    heard: list[Any] = []
    tenancy.on("created", mail_server_down)
    tenancy.on("created", recorder(heard))  # later hooks still run
    with caplog.at_level(logging.ERROR, logger="tenantry.events"):
        info = tenancy.create_tenant("acme")
    assert info.name == "acme" and tenancy.tenant_exists("acme")
    assert heard == [("created", "acme", {"revision": "t002"})]
    failure = tenancy.core.events.failures[-1]
    assert (failure.event.tenant, type(failure.error)) == ("acme", ConnectionError)
    assert "mail_server_down" in caplog.text and "smtp down" in caplog.text


def test_drop_can_be_vetoed_inside_and_is_heard_after(any_tenancy: Tenancy) -> None:
    t = any_tenancy
    t.create_tenant("acme")
    heard: list[Any] = []
    t.on("dropped", recorder(heard))

    def keep_paying_customers(event: TenantEvent) -> None:
        raise Veto(f"{event.tenant} has an open invoice")

    t.on("dropped", keep_paying_customers, when="inside")
    with pytest.raises(Veto):
        t.drop_tenant("acme", confirm=True)
    assert t.tenant_exists("acme") and heard == []
    assert settings(t, "acme") is not None  # its data is all there
    assert t.doctor().findings == []  # no intent or storage left half-dropped
    t.core.events.off("dropped", keep_paying_customers)
    assert t.drop_tenant("acme", confirm=True)
    assert heard[0][:2] == ("dropped", "acme")
    assert isinstance(heard[0][2]["location"], Location)


def test_rename_hooks_see_the_new_name_and_can_veto(any_tenancy: Tenancy) -> None:
    t = any_tenancy
    t.create_tenant("acme")
    inside: list[Any] = []

    def check(event: TenantEvent) -> None:
        inside.append((event.tenant, event.details["old"]))
        if event.tenant == "forbidden":
            raise Veto("reserved name")
        if t.core.strategy.kind == "schema":  # one transaction: the renamed tables are seen
            assert event.connection is not None
            event.connection.execute(sa.insert(Setting).values(key="renamed", value="yes"))

    heard: list[Any] = []
    t.on("renamed", check, when="inside")
    t.on("renamed", recorder(heard))
    with pytest.raises(Veto):
        t.rename_tenant("acme", "forbidden")
    assert t.tenant_exists("acme") and not t.tenant_exists("forbidden")
    assert t.doctor().findings == []  # a vetoed rename leaves no unfinished intent
    t.rename_tenant("acme", "initech")
    assert heard == [("renamed", "initech", {"old": "acme"})]
    if t.core.strategy.kind == "schema":
        assert settings(t, "initech")["renamed"] == "yes"


def test_migrated_hooks_per_tenant_and_per_fleet_run(tenancy: Tenancy) -> None:
    for name in ("acme", "globex"):
        tenancy.create_tenant(name)
    heard: list[Any] = []
    tenancy.on("migrated", recorder(heard))
    tenancy.on("fleet_migrated", lambda e: heard.append(
        ("fleet", e.tenant, sorted(o.tenant for o in e.details["report"].tenants))))
    tenancy.migrate_tenant("acme", "t001")
    assert heard == [("migrated", "acme", {"before": "t002", "after": "t001"})]
    heard.clear()
    tenancy.migrate_all("t001", confirm=True)
    assert heard == [("migrated", "globex", {"before": "t002", "after": "t001"}),
                     ("fleet", None, ["acme", "globex"])]

    def stamp(event: TenantEvent) -> None:
        assert event.connection is not None
        if event.tenant == "globex":
            raise Veto("globex is frozen")
        event.connection.execute(sa.insert(Setting).values(key="migrated_to",
                                                           value=event.details["after"]))

    tenancy.on("migrated", stamp, when="inside")
    heard.clear()
    report = tenancy.migrate_all()
    assert {o.tenant: o.result for o in report.tenants} == {"acme": "upgraded",
                                                            "globex": "failed"}
    assert settings(tenancy, "acme")["migrated_to"] == "t002"
    assert tenancy.get_tenant("globex").revision == "t001"  # the veto rolled it back
    assert [h[1] for h in heard if h[0] == "migrated"] == ["acme"]
    with pytest.raises(ConfigurationError, match="jobs=1"):
        tenancy.migrate_all(jobs=2)


def test_suspend_and_resume_are_heard(tenancy: Tenancy) -> None:
    tenancy.create_tenant("acme")
    heard: list[Any] = []
    for event in ("suspended", "resumed"):
        tenancy.on(event, recorder(heard))
    tenancy.on("suspended", lambda e: heard.append(("inside", e.connection is not None)),
               when="inside")
    tenancy.suspend_tenant("acme", reason="unpaid")
    tenancy.resume_tenant("acme")
    tenancy.resume_tenant("acme")  # not suspended: nothing happens, nothing heard
    assert heard == [("inside", True), ("suspended", "acme", {"reason": "unpaid"}),
                     ("resumed", "acme", {"reason": None})]

    def refuse(event: TenantEvent) -> None:
        raise Veto("not today")

    tenancy.on("suspended", refuse, when="inside")
    with pytest.raises(Veto):
        tenancy.suspend_tenant("acme")
    assert tenancy.get_tenant("acme").state.value == "ready"


def test_import_hooks(tenancy: Tenancy, tmp_path: Path) -> None:
    tenancy.create_tenant("acme")
    tenancy.export_tenant("acme", tmp_path / "acme")
    heard: list[Any] = []
    tenancy.on("imported", recorder(heard))
    tenancy.on("imported", seed, when="inside")
    tenancy.import_tenant(tmp_path / "acme", "globex")
    assert heard == [("imported", "globex", {"source": "acme", "revision": "t002"})]
    assert settings(tenancy, "globex")["plan"] == "free"

    def refuse(event: TenantEvent) -> None:
        raise Veto("quota")

    tenancy.on("imported", refuse, when="inside")
    with pytest.raises(Veto):
        tenancy.import_tenant(tmp_path / "acme", "initech")
    assert not tenancy.tenant_exists("initech")


def test_moves_promotions_and_demotions_are_heard(make_tenancy: Callable[..., Tenancy]) -> None:
    dbt = make_tenancy()
    heard: list[Any] = []
    dbt.on("moved", recorder(heard))
    dbt.create_tenant("acme")
    dbt.move_tenant("acme", "second")
    dbt.move_tenant("acme", "second")  # already there: nothing heard
    assert [(e, t, d["source"].server, d["target"].server) for e, t, d in heard] == [
        ("moved", "acme", "main", "second")]

    hybrid = make_tenancy(strategy="hybrid")
    heard.clear()
    hybrid.on("promoted", recorder(heard))
    hybrid.on("demoted", recorder(heard))
    hybrid.create_tenant("globex")
    hybrid.promote_tenant("globex")
    hybrid.demote_tenant("globex")
    assert [(e, t, d["target"].database is not None) for e, t, d in heard] == [
        ("promoted", "globex", True), ("demoted", "globex", False)]


def test_bad_registrations_are_refused(tenancy: Tenancy) -> None:
    with pytest.raises(ConfigurationError, match="unknown event"):
        tenancy.on("deleted", print)
    with pytest.raises(ConfigurationError, match="when must be"):
        tenancy.on("created", print, when="before")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no transaction"):
        tenancy.on("fleet_migrated", print, when="inside")

    async def coroutine(event: TenantEvent) -> None:
        pass

    with pytest.raises(ConfigurationError, match="plain function"):
        tenancy.on("created", coroutine, when="inside")


def test_coroutine_after_hooks_run_on_the_async_tenancys_loop(tenancy: Tenancy) -> None:
    heard: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with AsyncTenancy(tenancy) as at:
            @at.on("created")
            async def welcome(event: TenantEvent) -> None:
                await asyncio.sleep(0)
                heard.append((event.tenant, asyncio.get_running_loop() is loop,
                              threading.current_thread() is threading.main_thread()))

            await at.create_tenant("acme")
            assert heard == [("acme", True, True)]  # done before create_tenant returned
            await at.suspend_tenant("acme")
            with pytest.raises(UnknownTenant):
                await at.resume_tenant("nope")

    asyncio.run(main())


def test_coroutine_after_hooks_of_a_sync_tenancy_get_a_loop_of_their_own(
    tenancy: Tenancy,
) -> None:
    heard: list[str | None] = []

    async def welcome(event: TenantEvent) -> None:
        await asyncio.sleep(0)
        heard.append(event.tenant)

    tenancy.on("created", welcome)
    tenancy.create_tenant("acme")
    assert heard == ["acme"]

"""The console over HTTP (Starlette's TestClient) against a real PostgreSQL: the token gate,
read-only mode, CSRF, typed confirmation, actions changing the registry, escaping, paging."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tenantry import Tenancy
from tenantry.console import console_app, fleet
from tenantry.console.security import COOKIE, csrf_token, is_loopback
from tenantry.console.sizes import human, sizes
from tenantry.core.registry import State
from tenantry.errors import ConfigurationError
from tenantry.names import quote
from tests.console.support import HOSTILE, TOKEN, set_row, small_fleet
from tests.support.databases import MIGRATIONS
from tests.support.records import record_tenancy


def client_of(tenancy: Tenancy, *, writable: bool) -> TestClient:
    """A client that has opened the token URL (it holds the cookie)."""
    client = TestClient(console_app(tenancy, token=TOKEN, writable=writable))
    assert client.get(f"/?token={TOKEN}").status_code == 200
    return client


@pytest.fixture
def fleet_tenancy(tenancy: Tenancy) -> Tenancy:
    small_fleet(tenancy)
    return tenancy


@pytest.fixture
def writable(fleet_tenancy: Tenancy) -> Iterator[TestClient]:
    with client_of(fleet_tenancy, writable=True) as client:
        yield client


@pytest.fixture
def read_only(fleet_tenancy: Tenancy) -> Iterator[TestClient]:
    with client_of(fleet_tenancy, writable=False) as client:
        yield client


def post(client: TestClient, path: str, **fields: str) -> object:
    return client.post(path, data=fields, follow_redirects=False)


# -- the token gate --


def test_every_page_needs_the_token(fleet_tenancy: Tenancy) -> None:
    client = TestClient(console_app(fleet_tenancy, token=TOKEN))
    for path in ("/", "/tenants", "/tenants/acme", "/nothing-here"):
        assert client.get(path).status_code == 401
    assert client.post("/tenants/acme/suspend").status_code == 401
    assert client.get("/?token=wrong").status_code == 403
    client.cookies.set(COOKIE, "wrong")
    assert client.get("/").status_code == 403


def test_the_token_url_sets_a_strict_http_only_cookie_and_drops_the_token(
    fleet_tenancy: Tenancy,
) -> None:
    client = TestClient(console_app(fleet_tenancy, token=TOKEN))
    first = client.get(f"/tenants?state=failed&token={TOKEN}", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/tenants?state=failed"  # the token leaves the URL
    cookie = first.headers["set-cookie"]
    assert f"{COOKIE}={TOKEN}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/tenants?state=failed")
    assert page.status_code == 200 and "initech" in page.text and "acme" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all
    assert page.headers["x-frame-options"] == "DENY"


def test_a_console_needs_a_token(tenancy: Tenancy) -> None:
    with pytest.raises(ConfigurationError):
        console_app(tenancy, token="")


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.com"]))


# -- the pages --


def test_overview_counts_the_fleet(read_only: TestClient, fleet_tenancy: Tenancy) -> None:
    head = fleet_tenancy.tenant_stream.head  # type: ignore[union-attr]
    set_row(fleet_tenancy, "globex", revision=None)  # one tenant behind
    view = fleet.overview(fleet_tenancy)
    assert view.total == 4 and view.behind == 1 and view.head == head
    assert view.by_state == {"ready": 2, "failed": 1, "suspended": 1}
    assert view.by_strategy == {"schema": 4} and view.by_server == {"main": 4}
    assert dict(view.by_revision) == {head: 3, None: 1}
    assert [t.name for t in view.attention] and {t.name for t in view.attention} == {
        "initech", "umbrella"}
    assert view.metrics is None and view.main_size and view.main_size > 0
    page = read_only.get("/").text
    assert "Fleet overview" in page and "unpaid invoice" in page and "already exists" in page
    assert "n/a" in page  # engine metrics: the schema strategy has no tenant engines


def test_tenants_list_filters_searches_and_pages(
    read_only: TestClient, fleet_tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet, "PAGE_SIZE", 3)
    first = fleet.page(fleet_tenancy)
    assert [t.name for t in first.rows] == ["acme", "globex", "initech"]
    assert (first.total, first.pages) == (4, 2)
    assert [t.name for t in fleet.page(fleet_tenancy, number=2).rows] == ["umbrella"]
    assert [t.name for t in fleet.page(fleet_tenancy, search="LOB").rows] == ["globex"]
    assert fleet.page(fleet_tenancy, search="%").total == 0  # wildcards taken literally
    assert [t.name for t in fleet.page(fleet_tenancy, state="suspended").rows] == ["umbrella"]
    html = read_only.get("/tenants?page=2").text
    assert "umbrella" in html and "acme" not in html and "page 2 of 2" in html
    assert "← previous" in html and "next →" not in html
    html = read_only.get("/tenants?q=glo&state=ready").text
    assert "globex" in html and "1 tenant(s)" in html
    assert read_only.get("/tenants?state=bogus&page=x").status_code == 200  # ignored
    assert "No tenant matches" in read_only.get(f"/tenants?page={10**30}").text


def test_tenant_page_shows_record_size_and_history(
    read_only: TestClient, fleet_tenancy: Tenancy
) -> None:
    page = read_only.get("/tenants/initech")
    assert page.status_code == 200
    html = page.text
    info = fleet_tenancy.get_tenant("initech")
    for shown in ("Registry", "Storage", "History", info.schema, "already exists",
                  info.created_at.strftime("%Y-%m-%d %H:%M:%S")):
        assert shown in html
    assert "n/a" not in html  # the size was measured
    assert read_only.get("/tenants/nobody").status_code == 404
    assert read_only.get("/tenants/Not%20A%20Name%21").status_code == 404


def test_sizes_come_from_the_catalogs(fleet_tenancy: Tenancy) -> None:
    acme = fleet_tenancy.get_tenant("acme")
    before = sizes(fleet_tenancy, [acme])["acme"]
    assert before is not None and before > 0
    with fleet_tenancy.engine.begin() as conn:  # grow one of acme's tables
        conn.exec_driver_sql(f"SET LOCAL search_path TO {quote(acme.schema)}")
        conn.exec_driver_sql("CREATE TABLE filler AS "
                             "SELECT repeat('x', 1000) AS t FROM generate_series(1, 2000)")
    after = sizes(fleet_tenancy, [acme])["acme"]
    assert after is not None and after > before + 1_000_000
    set_row(fleet_tenancy, "globex", schema="tenant_missing")
    assert sizes(fleet_tenancy, [fleet_tenancy.get_tenant("globex")]) == {"globex": None}
    assert [human(n) for n in (None, 0, 2048, 5 * 1024**3)] == ["n/a", "0 B", "2.0 kB",
                                                                "5.0 GB"]


def test_database_tenants_show_their_database_size_and_engine_metrics(dbt: Tenancy) -> None:
    dbt.create_tenant("acme")
    info = dbt.get_tenant("acme")
    assert (sizes(dbt, [info])["acme"] or 0) > 1_000_000  # a database is megabytes
    with client_of(dbt, writable=False) as client:
        overview = client.get("/").text
        assert "open engines" in overview and "hit rate" in overview
        assert "MB" in client.get("/tenants").text


def test_passwords_never_appear(database_url: str) -> None:
    url = sa.make_url(database_url).set(password="s3cret-Pa55")
    with Tenancy(url, tenant_migrations=MIGRATIONS / "tenant",
                 shared_migrations=MIGRATIONS / "shared") as tenancy:
        if tenancy.engine.url.password is None:
            pytest.skip("the test server's URL keeps no password")
        tenancy.migrate_shared()
        tenancy.create_tenant("acme")
        with client_of(tenancy, writable=True) as client:
            for path in ("/", "/tenants", "/tenants/acme"):
                html = client.get(path).text
                assert "s3cret-Pa55" not in html, path
                assert "***" in html or path == "/tenants", path  # the server URL is shown


def test_hostile_registry_text_is_escaped(read_only: TestClient,
                                          fleet_tenancy: Tenancy) -> None:
    set_row(fleet_tenancy, "initech", error=HOSTILE, reason=HOSTILE)
    for path in ("/", "/tenants", "/tenants/initech"):
        html = read_only.get(path).text
        assert "<script>" not in html and "<img" not in html, path
        assert "&lt;script&gt;" in html, path


# -- read-only, CSRF, actions --


def forms(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)"', html)


def test_read_only_offers_no_action_and_refuses_posts(
    read_only: TestClient, fleet_tenancy: Tenancy
) -> None:
    html = read_only.get("/tenants/acme").text
    assert forms(html) == [] and "read-only" in html
    csrf = csrf_token(TOKEN)
    assert post(read_only, "/tenants/acme/suspend", csrf=csrf).status_code == 403  # type: ignore[attr-defined]
    assert post(read_only, "/tenants/acme/drop", csrf=csrf,  # type: ignore[attr-defined]
                confirm_name="acme").status_code == 403
    assert fleet_tenancy.get_tenant("acme").state is State.READY


def test_writable_pages_offer_the_actions(writable: TestClient) -> None:
    assert forms(writable.get("/tenants/acme").text) == [
        "/tenants/acme/suspend", "/tenants/acme/drop"]
    assert forms(writable.get("/tenants/umbrella").text) == [
        "/tenants/umbrella/resume", "/tenants/umbrella/drop"]


def test_posts_without_the_csrf_token_are_refused(
    writable: TestClient, fleet_tenancy: Tenancy
) -> None:
    for fields in ({}, {"csrf": "forged"}, {"csrf": TOKEN}):
        response = post(writable, "/tenants/acme/suspend", **fields)
        assert response.status_code == 403, fields  # type: ignore[attr-defined]
    other_site = writable.post("/tenants/acme/suspend", data={"csrf": csrf_token(TOKEN)},
                               headers={"origin": "http://evil.example"},
                               follow_redirects=False)
    assert other_site.status_code == 403
    as_json = writable.post("/tenants/acme/suspend", json={"csrf": csrf_token(TOKEN)})
    assert as_json.status_code == 403
    assert fleet_tenancy.get_tenant("acme").state is State.READY


def test_suspend_and_resume_change_the_registry(
    writable: TestClient, fleet_tenancy: Tenancy
) -> None:
    csrf = csrf_token(TOKEN)
    done = post(writable, "/tenants/acme/suspend", csrf=csrf, reason="fraud check")
    assert done.status_code == 303  # type: ignore[attr-defined]
    info = fleet_tenancy.get_tenant("acme")
    assert info.state is State.SUSPENDED and info.reason == "fraud check"
    html = writable.get("/tenants/acme?notice=suspended").text
    assert "Tenant suspended." in html and "fraud check" in html
    post(writable, "/tenants/acme/resume", csrf=csrf)
    assert fleet_tenancy.get_tenant("acme").state is State.READY
    post(writable, "/tenants/globex/suspend", csrf=csrf, reason="")
    assert fleet_tenancy.get_tenant("globex").reason is None  # an empty reason is none
    assert post(writable, "/tenants/acme/explode", csrf=csrf).status_code == 404  # type: ignore[attr-defined]
    assert post(writable, "/tenants/nobody/suspend", csrf=csrf).status_code == 404  # type: ignore[attr-defined]


def test_drop_needs_the_tenant_name_typed(writable: TestClient, fleet_tenancy: Tenancy) -> None:
    csrf = csrf_token(TOKEN)
    for typed in ("", "ACME", "acme ", "globex"):
        refused = post(writable, "/tenants/acme/drop", csrf=csrf, confirm_name=typed)
        assert refused.status_code == 400, typed  # type: ignore[attr-defined]
        assert "type its name" in refused.text  # type: ignore[attr-defined]
    assert fleet_tenancy.tenant_exists("acme")
    dropped = post(writable, "/tenants/acme/drop", csrf=csrf, confirm_name="acme")
    assert dropped.status_code == 303  # type: ignore[attr-defined]
    assert not fleet_tenancy.tenant_exists("acme")
    assert "Tenant dropped." in writable.get("/tenants?notice=dropped").text


def test_a_large_fleet_is_counted_not_loaded(tenancy: Tenancy) -> None:
    """100,000 registry rows: the overview counts them, the list shows one page of 50."""
    tenancy.setup()
    with tenancy.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO public.tenantry_tenants (name, strategy, schema, state, revision, error) "
            "SELECT 't' || lpad(i::text, 6, '0'), 'schema', 'tenant_t' || lpad(i::text, 6, '0'), "
            "CASE WHEN mod(i, 1000) = 0 THEN 'failed' ELSE 'ready' END, "
            "CASE WHEN mod(i, 10) = 0 THEN 't001' ELSE 't002' END, "
            "CASE WHEN mod(i, 1000) = 0 THEN 'boom' END FROM generate_series(1, 100000) i")
    with client_of(tenancy, writable=False) as client:
        started = time.perf_counter()
        overview = client.get("/").text
        overview_took = time.perf_counter() - started
        started = time.perf_counter()
        listing = client.get("/tenants?page=1000").text
        listing_took = time.perf_counter() - started
    assert "100000" in overview and "10000 not at the head revision" in overview
    assert "Needing attention (100)" in overview
    assert listing.count('<a href="/tenants/t') == 50 and "page 1000 of 2000" in listing
    assert "t049951" in listing and "t050000" in listing
    print(f"100k tenants: overview {overview_took:.3f}s, a list page {listing_took:.3f}s")


def test_tenant_page_shows_domains_and_lifecycle_history(
    read_only: TestClient, fleet_tenancy: Tenancy
) -> None:
    fleet_tenancy.add_domain("initech", "initech.example")
    fleet_tenancy.add_domain("initech", "Bücher.example", primary=True)
    fleet_tenancy.suspend_tenant("initech", reason="audit <b>now</b>")
    html = read_only.get("/tenants/initech").text
    assert "Domains" in html and "initech.example" in html
    assert "xn--bcher-kva.example" in html and "bücher.example" in html
    primary_row = html[html.index("xn--bcher-kva.example"):].split("</tr>")[0]
    assert "yes" in primary_row
    assert "suspended" in html and "reason=audit &lt;b&gt;now&lt;/b&gt;" in html
    assert "created" in html  # the history's first event
    bare = read_only.get("/tenants/acme").text
    assert "no domains" in bare


def test_tenant_page_shows_the_application_record(database_url: str) -> None:
    rt = record_tenancy(database_url)
    try:
        rt.create_tenant("acme", record={"plan": "pro", "owner_email": "<ceo@acme.example>",
                                         "seats": 12})
        rt.create_tenant("globex")
        client = client_of(rt, writable=False)
        html = client.get("/tenants/acme").text
        section = html[html.index("Record"):html.index("Storage")]
        for shown in ("plan", "pro", "owner_email", "&lt;ceo@acme.example&gt;", "seats", "12",
                      "paid_until"):
            assert shown in section, shown
        assert "free" in client.get("/tenants/globex").text  # the column's default
    finally:
        rt.dispose()
    with Tenancy(database_url) as plain:
        page = client_of(plain, writable=False).get("/tenants/acme").text
    assert "no application fields" in page

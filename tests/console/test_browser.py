"""The console in a real browser: Debian's chromium, headless, driven by Selenium through
chromium-driver. The main pages are kept as screenshots (test artifacts) and suspend/resume is
done by filling in and clicking the tenant page's forms.

Screenshots go to ``$TENANTRY_ARTIFACTS/console`` (default: ``test-artifacts/console`` at the
repository root). CI (.ci/run) installs chromium; without it locally the test is skipped.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn

from tenantry import Tenancy
from tenantry.console import console_app
from tenantry.core.registry import State
from tests.console.support import TOKEN, free_port, small_fleet

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1280,1000"]

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium "
                "chromium-driver; CI installs them)", allow_module_level=True)
from selenium import webdriver  # noqa: E402  (the dev extra; not skipped: CI must run this)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


def artifacts() -> Path:
    base = Path(os.environ.get("TENANTRY_ARTIFACTS") or ROOT / "test-artifacts")
    folder = base / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def serving(tenancy: Tenancy) -> Iterator[str]:
    """A writable console of ``tenancy`` served by uvicorn in a thread: its base URL."""
    port = free_port()
    config = uvicorn.Config(console_app(tenancy, token=TOKEN, writable=True),
                            host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def console_url(tenancy: Tenancy) -> Iterator[str]:
    """A writable console of a small fleet."""
    small_fleet(tenancy)
    with serving(tenancy) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def fits(driver: webdriver.Chrome) -> bool:
    """Whether the page fits the window's width (no horizontal scrolling)."""
    script = "return document.documentElement.scrollWidth <= window.innerWidth"
    return bool(driver.execute_script(script))


def test_the_console_in_a_browser(console_url: str, browser: webdriver.Chrome,
                                  tenancy: Tenancy) -> None:
    driver = browser
    shots = artifacts()
    wait = WebDriverWait(driver, 15)

    driver.get(f"{console_url}/?token={TOKEN}")
    assert driver.current_url == f"{console_url}/"  # token gone
    heading = driver.find_element(By.TAG_NAME, "h1").text
    assert heading == "Fleet overview"
    assert "unpaid invoice" in driver.page_source
    assert driver.save_screenshot(str(shots / "overview.png"))
    assert fits(driver), "overview"

    driver.find_element(By.LINK_TEXT, "Tenants").click()
    wait.until(expected_conditions.url_to_be(f"{console_url}/tenants"))
    rows = driver.find_elements(By.CSS_SELECTOR, "table tr")
    assert len(rows) == 1 + 4
    assert driver.save_screenshot(str(shots / "tenants.png"))
    assert fits(driver), "tenants"

    driver.find_element(By.LINK_TEXT, "acme").click()
    wait.until(expected_conditions.url_to_be(f"{console_url}/tenants/acme"))
    assert driver.save_screenshot(str(shots / "tenant.png"))
    assert fits(driver), "tenant"

    driver.find_element(By.ID, "reason").send_keys("chargeback <b>review</b>")
    driver.find_element(By.ID, "suspend").click()
    wait.until(expected_conditions.text_to_be_present_in_element(
        (By.CSS_SELECTOR, ".notice"), "Tenant suspended."))
    assert "suspended" in driver.find_element(By.TAG_NAME, "h1").text
    assert "chargeback <b>review</b>" in driver.find_element(
        By.ID, "history").text  # shown as typed, not as markup
    info = tenancy.get_tenant("acme")
    assert info.state is State.SUSPENDED and info.reason == "chargeback <b>review</b>"
    assert driver.save_screenshot(str(shots / "tenant-suspended.png"))
    assert fits(driver), "tenant-suspended"

    driver.find_element(By.ID, "resume").click()
    wait.until(expected_conditions.text_to_be_present_in_element(
        (By.CSS_SELECTOR, ".notice"), "Tenant resumed."))
    assert tenancy.get_tenant("acme").state is State.READY
    assert driver.find_elements(By.ID, "suspend")  # offered again


def test_database_tenants_overview_in_a_browser(dbt: Tenancy,
                                                browser: webdriver.Chrome) -> None:
    """Database tenants on two servers: engine metrics and per-server counts are shown."""
    for name in ("acme", "globex", "initech"):
        dbt.create_tenant(name)
    with dbt.session("acme") as session:  # an engine opened: the metrics move
        session.execute(sa.text("SELECT 1"))
    with serving(dbt) as url:
        browser.get(f"{url}/?token={TOKEN}")
        metrics = browser.find_element(By.XPATH, "//h2[text()='Engine metrics']/..").text
        assert "open engines" in metrics and "n/a" not in metrics
        servers = browser.find_element(By.XPATH, "//h2[text()='By server']/..").text
        assert "main" in servers and "second" in servers
        assert browser.save_screenshot(str(artifacts() / "overview-database.png"))
        assert fits(browser), "overview-database"
        browser.get(f"{url}/tenants")
        assert browser.page_source.count(" MB<") == 3  # each tenant's database size
        browser.get(f"{url}/tenants/globex")
        assert browser.save_screenshot(str(artifacts() / "tenant-database.png"))
        assert fits(browser), "tenant-database"

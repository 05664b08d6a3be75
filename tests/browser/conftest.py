"""Headless Chromium against the live app and a devshop pointed at it.

    live_server (the app, on the test database) ◀── iframe ── devshop admin frame ◀── Chromium
         └── Admin API, token exchange ──▶ browser_devshop (its own process and SQLite file)

Debian's ``chromium`` through Playwright's sync API: no ``playwright install`` (the machine has
no internet), and every request off this machine (cdn.shopify.com's App Bridge) is aborted.
Outside CI a missing /usr/bin/chromium skips; in CI it fails (tests.conftest.need).
"""

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Devshop, need, start_devshop

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Any URL not on this machine: App Bridge's CDN, fonts, anything a page might pull in.
OFF_MACHINE = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)(:\d+)?/)")
# Long enough for a cold page load on a slow CI machine; short enough to fail fast.
DEFAULT_TIMEOUT_MS = 10_000

# The app and the devshop share 127.0.0.1 (the devshop's frame names it in frame-ancestors).
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module; each test gets its own context (``browser_page``)."""
    if not CHROMIUM.exists():
        need(f"{CHROMIUM} not found (scripts/setup-extras.sh installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("the playwright package is not installed (requirements-dev.txt)")
    # Playwright's sync API keeps an asyncio loop running on this thread while it is started,
    # and Django then refuses ORM calls from the test as "async context". The test code is
    # plain synchronous code, so the check does not apply; lift it for this module only.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except Exception:
            playwright.stop()
            raise
        yield chromium
        chromium.close()
        playwright.stop()


@pytest.fixture
def browser_page(browser, request):
    """A fresh browser context and page; a failing test leaves a screenshot in artifacts/."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item, so fixtures can tell whether the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser_devshop(live_server, tmp_path_factory):
    """A devshop whose app is the live server (the session devshop points at settings.APP_URL,
    which no server answers in tests)."""
    server = start_devshop(
        tmp_path_factory.mktemp("browser-devshop"),
        {"APP_URL": live_server.url, "DEVSHOP_AUTO_APPROVE": "1"},
    )
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@dataclass
class BrowserApp:
    app_url: str
    devshop: Devshop


@pytest.fixture
def browser_app(live_server, browser_devshop, settings, transactional_db) -> BrowserApp:
    """The live app pointed at the browser devshop, and framable by its admin."""
    settings.APP_URL = live_server.url
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = browser_devshop.admin_url_template
    settings.SHOPIFY_EXTRA_FRAME_ANCESTORS = [browser_devshop.base_url]
    browser_devshop.client.knobs_set(
        access_token_ttl=3600, refresh_token_ttl=90 * 86400, auto_approve=True
    )
    return BrowserApp(app_url=live_server.url, devshop=browser_devshop)

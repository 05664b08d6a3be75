"""Every page of the embedded admin in headless Chromium, opened as the admin opens it (session
token in the URL, App Bridge's CDN cut off): each is drawn with Polaris's design tokens served
by the app itself, asks nothing off this machine but App Bridge, has a skip link to its main
landmark, passes axe-core (no serious or critical violation), and paints with LCP ≤ 1 s and
CLS ≤ 0.05. A screenshot of each page is kept in tests/browser/artifacts/admin-<page>.png."""

from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS
from tests.browser.test_insights_page import VITALS
from tests.browser.test_tracking_page import _axe_violations
from tests.shopapp.test_embedded import HOST, token_for
from tests.shopapp.test_polaris_look import APP_BRIDGE, admin_pages_store

pytestmark = pytest.mark.browser

# Polaris's --p-color-bg (light theme), the admin's grey behind every page.
POLARIS_BG = "rgb(241, 241, 241)"


@pytest.fixture
def admin_store(transactional_db, live_server):
    return admin_pages_store()


def test_every_admin_page_looks_like_polaris_is_accessible_and_quick(
    browser, live_server, admin_store
):
    shop, pages = admin_store
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    off_machine: list[str] = []

    def route(request_route):
        off_machine.append(request_route.request.url)
        request_route.abort()

    context.route(lambda url: not url.startswith(live_server.url), route)
    page = context.new_page()
    # Each page once first, as a running server has served them: the live server's first
    # requests pay for Django's lazy set-up (URL resolver, template compilation, translation
    # catalogs, database connection), which production pays once per process, not per view.
    warm = urlencode({"shop": shop.myshopify_domain, "host": HOST, "id_token": token_for(shop)})
    for path in pages.values():
        with urlopen(f"{live_server.url}{path}?{warm}") as answer:
            assert answer.status == 200
    ARTIFACTS.mkdir(exist_ok=True)
    found: dict[str, dict[str, object]] = {}
    vitals_of: dict[str, dict] = {}
    try:
        for name, path in pages.items():
            off_machine.clear()
            query = urlencode(
                {"shop": shop.myshopify_domain, "host": HOST, "id_token": token_for(shop)}
            )
            response = page.goto(f"{live_server.url}{path}?{query}")
            assert response is not None, (name, path)
            assert response.status == 200, (name, path)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            vitals = page.evaluate(VITALS)
            look = page.evaluate(
                """() => ({
                    bg: getComputedStyle(document.body).backgroundColor,
                    token: getComputedStyle(document.documentElement)
                        .getPropertyValue('--p-color-bg').trim(),
                    sheets: [...document.styleSheets].map((s) => s.href || ''),
                    font: getComputedStyle(document.body).fontFamily,
                })"""
            )
            page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
            vitals_of[name] = vitals
            found[name] = {
                "status": response.status,
                "lcp_ok": 0 < vitals["lcp"] <= 1000,
                "cls_ok": vitals["cls"] <= 0.05,
                "polaris_bg": look["bg"] == POLARIS_BG,
                "tokens_loaded": look["token"] == "rgba(241, 241, 241, 1)"
                and any(s.endswith("/static/polaris/polaris-tokens.css") for s in look["sheets"]),
                "inter_first": look["font"].startswith("Inter"),
                "off_machine": sorted(set(off_machine)),
                "axe": _axe_violations(page),
            }
            # The skip link is the first stop of the keyboard and lands on <main>.
            page.locator("body").focus()
            page.keyboard.press("Tab")
            skip = page.locator(".skip-link")
            expect(skip).to_be_focused()
            expect(skip).to_be_visible()
            page.keyboard.press("Enter")
            found[name]["skip_to_main"] = page.evaluate("document.activeElement.id") == "main"
            print(f"{name}: LCP {vitals['lcp']:.0f} ms, CLS {vitals['cls']:.3f}")
    finally:
        context.close()

    expected = {
        "status": 200,
        "lcp_ok": True,
        "cls_ok": True,
        "polaris_bg": True,
        "tokens_loaded": True,
        "inter_first": True,
        "off_machine": [APP_BRIDGE],
        "axe": [],
        "skip_to_main": True,
    }
    wrong = {
        name: {key: value for key, value in facts.items() if value != expected[key]}
        for name, facts in found.items()
    }
    assert {name: (w, vitals_of[name]) for name, w in wrong.items() if w} == {}
    assert set(found) == set(pages)


TRANSLATED_PAGES = (
    "insights",
    "orders",
    "order",
    "returns",
    "return",
    "notification-settings",
    "policy",
    "blocklist",
    "sequences",
    "sequence",
    "templates",
    "template",
    "messages",
    "suppressions",
    "tracking-page",
)


def test_the_translated_admin_pages_pass_axe_too(browser, live_server, admin_store):
    """The pages that read in the staff member's language (French, German here), checked again:
    the document's language is set, and longer words break nothing axe can see."""
    shop, pages = admin_store
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(lambda url: not url.startswith(live_server.url), lambda route: route.abort())
    page = context.new_page()
    found = {}
    try:
        for locale in ("fr", "de"):
            for name in TRANSLATED_PAGES:
                query = urlencode(
                    {
                        "shop": shop.myshopify_domain,
                        "host": HOST,
                        "id_token": token_for(shop),
                        "locale": locale,
                    }
                )
                path = "/app/tracking-page" if name == "tracking-page" else pages[name]
                page.goto(f"{live_server.url}{path}?{query}")
                expect(page.get_by_role("heading", level=1)).to_be_visible()
                assert page.evaluate("document.documentElement.lang") == locale
                page.screenshot(path=str(ARTIFACTS / f"admin-{name}-{locale}.png"), full_page=True)
                found[f"{name} ({locale})"] = _axe_violations(page)
    finally:
        context.close()
    assert {name: v for name, v in found.items() if v} == {}

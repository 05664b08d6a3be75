"""The admin's home in Chromium: the known store of tests/insights, its rollup counted, the
page opened as the embedded admin opens it (session token in the URL, App Bridge's CDN cut
off), checked with axe-core (no serious or critical violation), for its charts' names, for
keyboard reach of the CSV links, and for LCP ≤ 1 s and CLS ≤ 0.05."""

from datetime import date
from urllib.parse import urlencode

from playwright.sync_api import expect

from insights.services import shop_days_rollup
from tests.browser.test_tracking_page import _axe_violations
from tests.insights.test_insights import MARCH, store  # noqa: F401
from tests.shopapp.test_embedded import HOST, token_for

VITALS = """() => new Promise((resolve) => {
    let lcp = 0, cls = 0;
    new PerformanceObserver((list) => {
        for (const e of list.getEntries()) lcp = Math.max(lcp, e.renderTime || e.loadTime);
    }).observe({type: "largest-contentful-paint", buffered: true});
    new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) cls += e.value;
    }).observe({type: "layout-shift", buffered: true});
    setTimeout(() => resolve({lcp, cls}), 500);
})"""


def test_the_home_is_accessible_quick_and_keyboard_friendly(
    transactional_db,
    live_server,
    browser_page,
    store,  # noqa: F811
):
    shop, _ = store
    shop_days_rollup(shop=shop, first=date(2026, 2, 1), last=date(2026, 4, 30))
    query = {"shop": shop.myshopify_domain, "host": HOST, "id_token": token_for(shop), **MARCH}
    page = browser_page

    page.goto(f"{live_server.url}/app/?{urlencode(query)}")

    expect(page.get_by_role("heading", name="Insights", level=1)).to_be_visible()
    expect(page.get_by_role("img", name="Delivery time by carrier")).to_be_visible()
    expect(page.get_by_role("img", name="Messages by channel and trigger")).to_be_visible()
    vitals = page.evaluate(VITALS)
    assert 0 < vitals["lcp"] <= 1000, vitals
    assert vitals["cls"] <= 0.05, vitals
    assert _axe_violations(page) == []
    # Tab reaches the period form first, and every CSV link after it.
    page.keyboard.press("Tab")
    seen = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        name = page.evaluate("document.activeElement.textContent.trim()")
        seen.add(name.split(" of ")[-1] if name.startswith("Download CSV") else name)
    assert {"Delivery time by carrier", "Repeat purchases", "Review requests"} <= seen

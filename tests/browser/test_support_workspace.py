"""The support workspace on an order's page, in headless Chromium: the timeline in plain words,
grouped by parcel, filtered; a staff note and a problem added through the page's own forms
(fetch with the session token in the Authorization header, then Post/Redirect/Get); the
tracking link copied; axe-core finds no serious or critical violation. Screenshots in
tests/browser/artifacts."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from devshop.session_tokens import session_token_mint
from shopapp.models import OrderEvent
from tests.browser.conftest import ARTIFACTS, OFF_MACHINE
from tests.browser.test_tracking_page import _axe_violations
from tests.shopapp.test_embedded import HOST, make_shop
from tests.tracking.tracking_support import fulfil, order_create, scan
from tracking.models import ProblemCase, Shipment
from tracking.services import delay_open

pytestmark = pytest.mark.browser


def order_page_url(app_url: str, shop, order) -> str:
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        user_id=4242,
        lifetime_seconds=600,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    query = urlencode({"shop": shop.myshopify_domain, "host": HOST, "id_token": token})
    return f"{app_url}/app/orders/{order.shopify_id}?{query}"


@pytest.fixture
def workspace(browser_app):
    shop = make_shop("support-browser.myshopify.com", name="Maple and Thread")
    order = order_create(shop)
    fulfil(shop, order, fulfillment_id=801, line_item_ids=[487817672276298554], name="#9999.1")
    fulfil(shop, order, fulfillment_id=802, line_item_ids=[315789986012684393], name="#9999.2")
    first = Shipment.objects.get(shop=shop, fulfillment_id=801)
    second = Shipment.objects.get(shop=shop, fulfillment_id=802)
    scan(shop, first, "in_transit", timezone.now() - timedelta(hours=3))
    delay_open(
        shop=shop,
        order=order,
        shipment=second,
        kind="no_movement",
        dedupe_key=f"shipment:{second.pk}:no_movement",
        detected_at=timezone.now(),
    )
    return browser_app.app_url, shop, order


def test_support_agent_reads_filters_notes_and_records_a_problem(browser, workspace):
    app_url, shop, order = workspace
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    try:
        page.goto(order_page_url(app_url, shop, order))
        # The timeline in plain words, one group per parcel
        expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
        expect(page.locator('[data-group^="shipment:"]')).to_have_count(2)
        expect(page.get_by_text("Parcel on its way")).to_be_visible()
        expect(page.get_by_text("The parcel has not moved for days")).to_be_visible()
        expect(page.locator("#timeline")).not_to_contain_text("shipment.")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "support-order-page.png"), full_page=True)
        violations = _axe_violations(page)
        assert violations == [], violations

        # Filter to problems
        page.locator('[data-filter="problems"]').click()
        expect(page.locator("#timeline .timeline__item")).to_have_count(1)
        expect(page.locator("#timeline")).to_contain_text("The parcel has not moved for days")

        # A note, through the page's form
        page.get_by_label("Add a note for your team").fill("Called the shopper, waiting a day.")
        page.get_by_role("button", name="Add note").click()
        expect(page.locator('[data-banner="notice"]')).to_have_text("Note added.")
        expect(page.locator("#timeline")).to_contain_text("Called the shopper, waiting a day.")
        expect(page.locator("#timeline")).to_contain_text("Note by staff member 4242")
        assert OrderEvent.objects.filter(order=order, kind="staff.note").count() == 1

        # A problem for one parcel
        page.get_by_text("Record a problem for the shopper").click()
        page.get_by_label("What went wrong").select_option("not_received")
        page.get_by_label("Parcel", exact=True).select_option(label="#9999.2")
        page.get_by_label("The shopper's words").fill("Nothing arrived")
        page.get_by_role("button", name="Record problem").click()
        expect(page.locator('[data-banner="notice"]')).to_have_text("Problem recorded.")
        case = ProblemCase.objects.get(order=order)
        assert (case.kind, case.shipment.fulfillment_id) == ("not_received", 802)
        expect(page.locator(f'[data-problem="{case.pk}"]')).to_contain_text("Not received")

        # The signed tracking link, copied
        page.get_by_role("button", name="Copy tracking link").click()
        expect(page.get_by_role("button", name="Link copied")).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("[data-tracking-link]").input_value()
        assert "/track/" in copied

        page.screenshot(path=str(ARTIFACTS / "support-order-page-after.png"), full_page=True)
        violations = _axe_violations(page)
        assert violations == [], violations
    finally:
        context.close()

"""The storefront tracking page in headless Chromium, through the devshop's storefront and its
app proxy to the live app: a shopper's lookup, reading the timeline, the page on a phone, and
axe-core's accessibility rules (no serious or critical violation)."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from shopapp.storefront.links import tracking_link_token
from tests.browser.conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS, OFF_MACHINE
from tests.conftest import REPO, need
from tests.tracking.test_page import (
    make_event,
    make_line_item,
    make_order,
    make_shipment,
    make_shop,
)
from tracking.models import Stage, TrackingSettings

pytestmark = pytest.mark.browser

AXE = REPO / "scripts" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 375, "height": 667}


@pytest.fixture
def store(browser_app, settings):
    """A store on both sides (devshop with the app installed, and its Shop row), with fresh
    rate-limit counters."""
    import redis

    connection = redis.Redis.from_url(settings.REDIS_URL)
    for key in connection.scan_iter("tracking:rl:*"):
        connection.delete(key)
    devshop = browser_app.devshop
    domain = f"track-{uuid.uuid4().hex[:8]}.myshopify.com"
    devshop.client.shop_create(domain, name="Maple and Thread")
    devshop.client.app_install(domain)
    shop = make_shop(domain, name="Maple and Thread", timezone="Europe/Paris")
    TrackingSettings.objects.create(
        shop=shop, accent_color="#1f5f8b", custom_message="We ship from Lyon every weekday."
    )
    return devshop, shop


def a_shipped_order(shop, number: int = 1001, events: int = 4):
    order = make_order(shop, number, fulfillment_status="fulfilled")
    shoes = make_line_item(order, "Trail running shoe", 1, variant_title="EU 42")
    socks = make_line_item(order, "Merino socks", 3)
    delivered = make_shipment(
        order,
        stage=Stage.DELIVERED,
        items=[(socks, 3)],
        tracking_company="La Poste",
        delivered_at=datetime(2026, 3, 5, 11, 0, tzinfo=UTC),
    )
    make_event(
        delivered,
        "delivered",
        stage="delivered",
        message="Delivered to mailbox",
        happened_at=datetime(2026, 3, 5, 11, 0, tzinfo=UTC),
        city="Lyon",
    )
    moving = make_shipment(
        order,
        stage=Stage.OUT_FOR_DELIVERY,
        items=[(shoes, 1)],
        tracking_company="UPS",
        estimated_delivery_at=datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
    )
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    for i in range(events):
        make_event(
            moving,
            "in_transit" if i < events - 1 else "out_for_delivery",
            stage="in_transit" if i < events - 1 else "out_for_delivery",
            message=f"Scan {i + 1}" if i < events - 1 else "Out with the courier",
            happened_at=start + timedelta(hours=6 * i),
            city=["Paris", "Mâcon", "Lyon", "Villeurbanne"][i % 4],
            country="France",
        )
    return order


def track_url(devshop, shop, path: str = "track") -> str:
    return devshop.client.app_proxy_url(shop.myshopify_domain, path)


def test_a_shopper_looks_up_an_order_and_reads_its_timeline(store, browser_page):
    devshop, shop = store
    a_shipped_order(shop)
    page = browser_page

    # Given the storefront's tracking page,
    page.goto(track_url(devshop, shop))
    expect(page.get_by_role("heading", name="Track your order", level=1)).to_be_visible()
    expect(page.get_by_text("We ship from Lyon every weekday.")).to_be_visible()

    # when the shopper types the order number and email, with the keyboard only,
    page.get_by_label("Order number").fill("#1001")
    page.get_by_label("Email or phone number").fill("ADA@example.com")
    page.get_by_label("Email or phone number").press("Enter")

    # then the order's page shows both shipments, their steps and the timeline, newest first.
    expect(page.get_by_role("heading", name="Order #1001", level=1)).to_be_visible()
    shipments = page.locator("section.pp-shipment")
    expect(shipments).to_have_count(2)
    second = shipments.nth(1)
    expect(second.get_by_role("heading", name="Shipment 2 of 2")).to_be_visible()
    expect(second.locator("[aria-current=step] .pp-step__label")).to_have_text("Out for delivery")
    expect(second.get_by_role("progressbar", name="Shipment progress")).to_have_attribute(
        "aria-valuenow", "4"
    )
    timeline = second.locator("ol.pp-timeline > li")
    expect(timeline).to_have_count(4)
    expect(timeline.first.locator(".pp-timeline__label")).to_have_text("Out for delivery")
    expect(timeline.first.locator(".pp-timeline__message")).to_have_text("Out with the courier")
    expect(timeline.last.locator(".pp-timeline__message")).to_have_text("Scan 1")
    # 08:00 UTC is 09:00 in Paris, the shop's timezone
    expect(timeline.last.locator("time")).to_have_attribute("datetime", "2026-03-03T09:00:00+01:00")
    expect(shipments.first.get_by_text("Delivered to mailbox")).to_be_visible()
    expect(page.get_by_role("link", name="Start a return")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tracking-order.png"), full_page=True)


def test_a_wrong_email_gets_the_generic_answer(store, browser_page):
    devshop, shop = store
    a_shipped_order(shop)
    page = browser_page

    page.goto(track_url(devshop, shop))
    page.get_by_label("Order number").fill("1001")
    page.get_by_label("Email or phone number").fill("eve@example.com")
    page.get_by_role("button", name="Track order").click()

    expect(page.get_by_role("alert")).to_contain_text("We couldn't find an order")
    expect(page.get_by_text("Trail running shoe")).to_have_count(0)


@pytest.fixture
def phone_page(browser, request):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True)
    context.close()


def test_the_page_fits_a_phone(store, phone_page):
    devshop, shop = store
    order = a_shipped_order(shop, events=12)
    page = phone_page

    for path in ("track", "track/" + tracking_link_token(order)):
        page.goto(track_url(devshop, shop, path))
        expect(page.locator(".pp-track")).to_be_visible()

        # no horizontal scroll, and the page's own box stays within the screen
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= PHONE["width"], f"{path}: scrolls sideways ({scroll_width}px)"
        box = page.locator(".pp-track").bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
    # the steps stack one per line on a phone
    steps = page.locator("section.pp-shipment").nth(1).locator(".pp-step")
    tops = [steps.nth(i).bounding_box()["y"] for i in range(5)]
    assert tops == sorted(tops)
    assert len(set(tops)) == 5
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tracking-phone.png"), full_page=True)


def _axe_violations(page, context: str | None = None) -> list[dict]:
    if not AXE.exists():
        need(f"{AXE} not found (scripts/setup-extras.sh installs axe-core)")
    page.add_script_tag(path=str(AXE))
    target = f"document.querySelector({context!r})" if context else "document"
    results = page.evaluate(f"async () => await axe.run({target}, {{resultTypes: ['violations']}})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["html"][:160] for n in v["nodes"][:3]],
        }
        for v in results["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_axe_finds_no_serious_accessibility_violation(store, browser, viewport):
    devshop, shop = store
    order = a_shipped_order(shop)
    TrackingSettings.objects.filter(shop=shop).update(accent_color="#ffd700")  # a light accent
    context = browser.new_context(viewport=PHONE if viewport == "phone" else None)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    try:
        pages = {
            "lookup": track_url(devshop, shop),
            "order": track_url(devshop, shop, "track/" + tracking_link_token(order)),
            "bad link": track_url(devshop, shop, "track/not-a-token"),
        }
        found = {}
        for name, url in pages.items():
            page.goto(url)
            # The whole storefront page (theme included), then the app's region on its own.
            found[name] = _axe_violations(page) + _axe_violations(page, ".pp-track")
        # the lookup page with its error state
        page.goto(pages["lookup"])
        page.get_by_role("button", name="Track order").click()
        found["lookup errors"] = _axe_violations(page, ".pp-track")
        # the standalone page, outside the theme
        TrackingSettings.objects.filter(shop=shop).update(is_standalone_page=True)
        page.goto(pages["order"])
        found["standalone"] = _axe_violations(page)
    finally:
        context.close()

    assert found == {name: [] for name in found}


def test_keyboard_reaches_every_control_in_order(store, browser_page):
    devshop, shop = store
    page = browser_page
    page.goto(track_url(devshop, shop))

    page.locator("#pp-order").focus()
    focused = []
    for _ in range(4):
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        )
        page.keyboard.press("Tab")

    assert focused == ["pp-order", "pp-contact", "Track order", "pp-tracking-number"]


def test_axe_core_is_pinned():
    lock = (REPO / "scripts" / "axe" / "package-lock.json").read_text()
    assert '"node_modules/axe-core"' in lock
    assert Path(REPO / "scripts" / "axe" / "package.json").read_text().count('"axe-core": "4.') == 1


def _lookup_budget_spent(settings) -> int:
    """The sum of every lookup rate-limit counter in Redis: what lookups have cost so far."""
    import redis

    connection = redis.Redis.from_url(settings.REDIS_URL)
    return sum(int(connection.get(key) or 0) for key in connection.scan_iter("tracking:rl:*"))


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_found_order_is_a_page_to_bookmark_copy_from_and_read_in_another_language(
    store, browser, settings, viewport
):
    from shopapp.branding.services import BrandingChange, branding_save
    from shopapp.storefront.links import order_id_from_link_token

    devshop, shop = store
    order = a_shipped_order(shop)
    branding_save(
        shop=shop,
        change=BrandingChange(
            accent_color="#1f5f8b",
            text_color="#1c1c1c",
            background_color="#ffffff",
            font="system",
            support_email="care@maple.example",
            support_phone="+33 4 72 00 00 00",
        ),
    )
    phone = viewport == "phone"
    context = browser.new_context(
        viewport=PHONE if phone else {"width": 1280, "height": 860},
        is_mobile=phone,
        has_touch=phone,
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        # Given a shopper who mistypes their email,
        page.goto(track_url(devshop, shop))
        page.get_by_label("Order number").fill("#1001")
        page.get_by_label("Email or phone number").fill("ada@exmaple.com")
        page.get_by_role("button", name="Track order").click()

        # the form comes back with a clear error and what they typed,
        expect(page.get_by_role("alert")).to_contain_text("We couldn't find an order")
        expect(page.get_by_label("Order number")).to_have_value("#1001")
        expect(page.get_by_label("Email or phone number")).to_have_value("ada@exmaple.com")
        expect(page.get_by_label("Email or phone number")).to_have_attribute("aria-invalid", "true")

        # and once corrected, the order opens on a URL of its own: the signed link.
        page.get_by_label("Email or phone number").fill("ada@example.com")
        page.get_by_label("Email or phone number").press("Enter")
        expect(page.get_by_role("heading", name="Order #1001", level=1)).to_be_visible()
        token = page.url.split("/track/", 1)[1].split("?")[0]
        assert order_id_from_link_token(token, shop=shop) == order.pk

        # Reloading it (or opening the bookmark) spends nothing of the lookup budget.
        spent = _lookup_budget_spent(settings)
        for _ in range(3):
            page.reload()
            expect(page.get_by_role("heading", name="Order #1001", level=1)).to_be_visible()
        assert _lookup_budget_spent(settings) == spent

        # The estimate is the headline; each item is listed once, under its parcel.
        expect(page.locator(".pp-headline")).to_have_text(
            "Estimated delivery Saturday, March 7, 2026"
        )
        expect(page.get_by_text("Merino socks")).to_have_count(1)
        expect(page.get_by_text("Trail running shoe – EU 42")).to_have_count(1)
        moving = page.locator("section.pp-shipment").nth(1)
        expect(moving.get_by_text("Trail running shoe – EU 42")).to_be_visible()

        # The tracking number copies with one tap, and the carrier's page is one link away.
        number = moving.locator(".pp-tracking-number").first.inner_text()
        copy = moving.get_by_role("button", name=f"Copy tracking number {number}")
        copy.click()
        # (its name changes as it says "Copied": found again by its target)
        expect(moving.locator(".pp-copy").first).to_contain_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == number
        expect(page.locator("#pp-copy-status")).to_have_text(f"Tracking number {number} copied")
        expect(moving.get_by_role("link", name="Track on UPS's website")).to_have_attribute(
            "href", f"https://www.ups.com/track?tracknum={number}"
        )
        # The shop's support is a tap away, the order named in the email.
        expect(page.get_by_role("link", name="Email us at care@maple.example")).to_have_attribute(
            "href", "mailto:care@maple.example?subject=Question%20about%20order%20%231001"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"tracking-result-{viewport}.png"), full_page=True)
        assert _axe_violations(page) + _axe_violations(page, ".pp-track") == []

        # The language switch keeps the page: the same order, in Spanish, carrier events
        # translated from Shopify's status with the carrier's own words kept.
        page.get_by_role("navigation", name="Language").get_by_role("link", name="Español").click()
        expect(page.get_by_role("heading", name="Pedido #1001", level=1)).to_be_visible()
        assert page.url.split("/track/", 1)[1].startswith(token + "?locale=es")
        events = moving.locator("ol.pp-timeline > li")
        expect(events.first.locator(".pp-timeline__label")).to_have_text("En reparto")
        expect(events.first.locator(".pp-timeline__message")).to_have_text("Out with the courier")
        expect(events.first.locator(".pp-timeline__source")).to_have_text("UPS indica:")
        expect(page.locator(".pp-headline")).to_contain_text("Entrega estimada")
        page.screenshot(path=str(ARTIFACTS / f"tracking-result-es-{viewport}.png"), full_page=True)
        assert _axe_violations(page, ".pp-track") == []
        # Every language loads fast and without layout shift (the copy buttons appear before
        # the first paint), measured with the browser's Performance API.
        from tests.browser.test_insights_page import VITALS

        for language, title in (
            ("en", "Order #1001"),
            ("es", "Pedido #1001"),
            ("fr", "Commande #1001"),
            ("de", "Bestellung #1001"),
        ):
            page.goto(track_url(devshop, shop, f"track/{token}?locale={language}"))
            expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
            vitals = page.evaluate(VITALS)
            assert 0 < vitals["lcp"] <= 1000, (language, vitals)
            assert vitals["cls"] <= 0.05, (language, vitals)
        if phone:
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


def test_without_javascript_the_tracking_number_is_plain_selectable_text(store, browser):
    devshop, shop = store
    order = a_shipped_order(shop)
    context = browser.new_context(java_script_enabled=False)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    try:
        page.goto(track_url(devshop, shop, "track/" + tracking_link_token(order)))

        numbers = page.locator(".pp-tracking-number")
        expect(numbers.first).to_be_visible()
        expect(page.locator(".pp-copy").first).to_be_hidden()
        assert numbers.first.evaluate("n => getComputedStyle(n).userSelect") in {"all", "auto"}
    finally:
        context.close()


LINE_IMAGES = """
query($id: ID!) { order(id: $id) { lineItems(first: 5) { nodes {
  title image { url(transform: {maxWidth: 128, maxHeight: 128}) } } } } }"""


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_each_item_shows_its_picture_without_shifting_the_page(store, browser, viewport):
    from shopapp.admin_api.client import AdminApiClient
    from tests.browser.test_insights_page import VITALS

    # given an order whose two products the store pictures (served by the devshop as Shopify's
    # CDN serves them), and a third line without a picture
    devshop, shop = store
    grant = devshop.client.app_install_with_token(shop.myshopify_domain)
    (store_order,) = devshop.client.orders_create(shop.myshopify_domain, count=1, line_items=2)
    api = AdminApiClient(shop.myshopify_domain, grant["access_token"])
    nodes = api.execute(LINE_IMAGES, {"id": f"gid://shopify/Order/{store_order}"})["order"][
        "lineItems"
    ]["nodes"]
    assert all(n["image"]["url"].startswith(devshop.base_url) for n in nodes)
    order = make_order(shop, 1002, fulfillment_status="partial")
    lines = [make_line_item(order, n["title"], 1, image_url=n["image"]["url"]) for n in nodes] + [
        make_line_item(order, "Gift wrap", 1)
    ]
    make_shipment(
        order,
        stage=Stage.IN_TRANSIT,
        items=[(lines[0], 1), (lines[2], 1)],
        estimated_delivery_at=datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
    )
    phone = viewport == "phone"
    context = browser.new_context(
        viewport=PHONE if phone else {"width": 1280, "height": 860}, is_mobile=phone
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    try:
        # when the shopper opens the order's page
        page.goto(track_url(devshop, shop, f"track/{tracking_link_token(order)}"))
        expect(page.get_by_role("heading", name="Order #1002", level=1)).to_be_visible()

        # then each pictured item shows its picture, loaded, in a fixed 56 px box
        images = page.locator("img.pp-items__image")
        expect(images).to_have_count(2)
        for i in range(2):
            image = images.nth(i)
            image.scroll_into_view_if_needed()
            expect(image).to_have_attribute("width", "56")
            page.wait_for_function(
                "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle()
            )
            assert image.evaluate("(img) => img.naturalWidth") == 128
            box = image.bounding_box()
            assert box is not None
            assert (round(box["width"]), round(box["height"])) == (56, 56)
        # the first parcel's picture loads at once, the one not shipped yet lazily
        expect(page.locator("section.pp-shipment img.pp-items__image")).to_have_attribute(
            "loading", "eager"
        )
        expect(page.locator("section.pp-items img.pp-items__image")).to_have_attribute(
            "loading", "lazy"
        )
        # and the line without a picture a neutral box of the same size
        none = page.locator(".pp-items__image--none")
        expect(none).to_have_count(1)
        box = none.bounding_box()
        assert box is not None
        assert (round(box["width"]), round(box["height"])) == (56, 56)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"tracking-images-{viewport}.png"), full_page=True)
        assert _axe_violations(page) + _axe_violations(page, ".pp-track") == []

        # and the page loads fast and without layout shift, pictures included
        page.goto(track_url(devshop, shop, f"track/{tracking_link_token(order)}"))
        expect(page.get_by_role("heading", name="Order #1002", level=1)).to_be_visible()
        vitals = page.evaluate(VITALS)
        assert 0 < vitals["lcp"] <= 1000, vitals
        assert vitals["cls"] <= 0.05, vitals
        if phone:
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


PROBLEM_WORDS = {
    "en": ("Report a problem with this shipment", "It arrived damaged", "Tell us more (optional)",
           "Send report", "Problem reported: Arrived damaged"),
    "es": ("Comunicar un problema con este envío", "Llegó dañado", "Cuéntanos más (opcional)",
           "Enviar aviso", "Problema comunicado: Llegó dañado"),
    "fr": ("Signaler un problème avec cet envoi", "Il est arrivé endommagé",
           "Dites-nous en plus (facultatif)", "Envoyer le signalement",
           "Problème signalé : Arrivé endommagé"),
    "de": ("Ein Problem mit dieser Sendung melden", "Es ist beschädigt angekommen",
           "Erzähl uns mehr (optional)", "Meldung senden",
           "Problem gemeldet: Beschädigt angekommen"),
}  # fmt: skip


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
def test_a_shopper_reports_a_damaged_parcel_on_a_phone(store, phone_page, language):
    from tests.tracking.test_suggestions import ShopifyAnswer, _node
    from tracking.models import ProblemCase
    from tracking.suggestions import product_suggestions_refresh

    devshop, shop = store
    order = a_shipped_order(shop)
    # "You may also like" kept for the shop (one product without a picture), so the checks
    # below cover that section too
    product_suggestions_refresh(
        shop=shop, client=ShopifyAnswer([_node(901), _node(902, featuredMedia=None)])
    )
    offer, damaged, more, send, reported = PROBLEM_WORDS[language]
    page = phone_page
    url = track_url(devshop, shop, "track/" + tracking_link_token(order)) + f"?locale={language}"

    # Given the order's page on a phone: the delivered parcel offers the report, folded away;
    # the one still out for delivery, days past its estimate, only "not received",
    page.goto(url)
    expect(page.locator(".pp-suggestion")).to_have_count(2)
    shipments = page.locator("section.pp-shipment")
    expect(shipments.nth(0).locator("summary", has_text=offer)).to_be_visible()
    expect(shipments.nth(0).locator("input[name=kind]")).to_have_count(3)
    expect(shipments.nth(1).locator("input[name=kind]")).to_have_count(1)
    expect(shipments.nth(1).locator("input[name=kind]")).to_have_value("not_received")

    # when the shopper opens it, picks "arrived damaged" and writes a line, by touch,
    first = shipments.nth(0)
    first.locator("summary", has_text=offer).tap()
    first.get_by_label(damaged).check()
    first.get_by_label(more).fill("The sole came off the left shoe.")
    assert _axe_violations(page, ".pp-track") == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(
        path=str(ARTIFACTS / f"tracking-problem-form-phone-{language}.png"), full_page=True
    )
    first.get_by_role("button", name=send).tap()

    # then the same page (its own link, at the parcel) confirms it in their language,
    expect(page.get_by_role("status").filter(has_text=reported)).to_be_visible()
    assert "#pp-problem-" in page.url
    assert tracking_link_token(order).split(":")[0] in page.url
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert _axe_violations(page) + _axe_violations(page, ".pp-track") == []
    page.screenshot(
        path=str(ARTIFACTS / f"tracking-problem-reported-phone-{language}.png"), full_page=True
    )
    # and one case is open for that parcel, in the shopper's words; a reload adds nothing
    page.reload()
    expect(page.get_by_role("status").filter(has_text=reported)).to_be_visible()
    case = ProblemCase.objects.get(order=order)
    assert (case.kind, case.reported_by, case.description) == (
        "damaged",
        "shopper",
        "The sole came off the left shoe.",
    )

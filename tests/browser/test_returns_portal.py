"""A shopper returns two items in headless Chromium on a phone-sized screen, through the
devshop's storefront (its theme, its app proxy signatures), the app being the live server:
lookup, items, reason, resolution, review, submit, status page. Every page is checked with
axe-core (no serious or critical violation) and for sideways scrolling."""

import pytest
from playwright.sync_api import expect

from returns.models import ReturnRequest
from tests.browser.conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS, OFF_MACHINE
from tests.browser.test_tracking_page import PHONE, _axe_violations
from tests.returns.test_portal import delivered_order, lines, portal_shop

pytestmark = pytest.mark.browser


@pytest.fixture
def store(browser_app, settings, tmp_path):
    import redis

    connection = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in ("tracking:rl:*", "returns:submit:*"):
        for key in connection.scan_iter(pattern):
            connection.delete(key)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    devshop = browser_app.devshop
    # Webhooks would reach the live app on its own thread while the test thread uses the same
    # in-memory SQLite connection: orders are mirrored by reconciliation, deliveries wait.
    devshop.client.knobs_set(webhook_delivery_paused=True)
    shop = portal_shop(devshop)
    return devshop, shop


@pytest.fixture
def phone(browser, request):
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


def _fits_the_phone(page, name: str) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"{name}: scrolls sideways ({scroll_width}px)"
    box = page.locator(".pp-returns").bounding_box()
    assert box["x"] >= 0, name
    assert box["x"] + box["width"] <= PHONE["width"], name


def test_a_shopper_returns_two_items_from_a_phone(store, phone):
    devshop, shop = store
    # (clothes: size reasons are offered for them)
    order = delivered_order(devshop, shop, line_items=2, line_item_product_type="Apparel")
    first, second = lines(order)
    page = phone
    violations = {}

    # given the portal, opened from the store
    page.goto(devshop.client.app_proxy_url(shop.myshopify_domain, "returns"))
    expect(page.get_by_role("heading", name="Start a return")).to_be_visible()
    _fits_the_phone(page, "lookup")
    violations["lookup"] = _axe_violations(page) + _axe_violations(page, ".pp-returns")

    # when the shopper looks up their order
    page.get_by_label("Order number").fill(order.name)
    page.get_by_label("Email address or shipping postal code").fill(order.email)
    page.get_by_role("button", name="Find my order").click()

    # then they choose both items, a reason each, and store credit
    expect(
        page.get_by_role("heading", name=f"Return items from order {order.name}")
    ).to_be_visible()
    _fits_the_phone(page, "items")
    violations["items"] = _axe_violations(page, ".pp-returns")
    for line, reason in ((first, "Size too small"), (second, "Changed my mind")):
        group = page.locator(f'fieldset[data-item="{line.pk}"]')
        group.get_by_label("Quantity to return").select_option("1")
        group.get_by_label("Reason").select_option(label=reason)
        group.get_by_label("Store credit").check()
    page.get_by_role("button", name="Continue to review").click()

    # and review the estimate
    expect(page.get_by_role("heading", name="Review your return")).to_be_visible()
    expect(page.get_by_text("Size too small")).to_be_visible()
    expect(page.get_by_text("Changed my mind")).to_be_visible()
    _fits_the_phone(page, "review")
    violations["review"] = _axe_violations(page, ".pp-returns")
    page.get_by_role("button", name="Submit return").click()

    # then they land on the return's status page, and the request is stored
    expect(page.get_by_role("status").first).to_contain_text("we've received your return request")
    expect(page.get_by_role("heading", name=f"Your return for order {order.name}")).to_be_visible()
    _fits_the_phone(page, "status")
    violations["status"] = _axe_violations(page, ".pp-returns")
    [rr] = ReturnRequest.objects.filter(shop=shop)
    assert sorted(rr.line_items.values_list("line_item_id", flat=True)) == sorted(
        [first.pk, second.pk]
    )
    assert rr.resolution == "store_credit"

    # and the saved link opens the same status page
    page.get_by_role("link", name="your return's status page").click()
    expect(page.get_by_role("heading", name=f"Your return for order {order.name}")).to_be_visible()
    violations["status link"] = _axe_violations(page) + _axe_violations(page, ".pp-returns")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "returns-phone.png"), full_page=True)

    assert violations == {name: [] for name in violations}


def test_errors_are_announced_and_tied_to_their_fields(store, browser_page):
    devshop, shop = store
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    page = browser_page
    page.goto(devshop.client.app_proxy_url(shop.myshopify_domain, "returns"))
    page.get_by_label("Order number").fill(order.name)
    page.get_by_label("Email address or shipping postal code").fill(order.email)
    page.get_by_role("button", name="Find my order").click()

    # when the shopper picks a quantity but no reason and no resolution
    page.get_by_label("Quantity to return").select_option("1")
    page.get_by_role("button", name="Continue to review").click()

    # then the error is announced, and the field says it is invalid
    expect(page.get_by_role("alert")).to_be_visible()
    reason = page.get_by_label("Reason")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#pp-reason-{line.pk}-error")).to_have_text(
        "Choose a reason for this item."
    )
    assert _axe_violations(page, ".pp-returns") == []
    assert ReturnRequest.objects.count() == 0


DESKTOP = {"width": 1280, "height": 800}
STATUS_TITLES = {
    "en": "Your return for order {name}",
    "es": "Tu devolución del pedido {name}",
    "fr": "Votre retour pour la commande {name}",
    "de": "Deine Rücksendung für Bestellung {name}",
}


def _vitals(page, where: str) -> None:
    from tests.browser.test_insights_page import VITALS

    vitals = page.evaluate(VITALS)
    assert 0 < vitals["lcp"] <= 1000, (where, vitals)
    assert vitals["cls"] <= 0.05, (where, vitals)


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_one_item_refunded_one_as_store_credit_with_fees_shown_before_submitting(
    store, browser, request, settings, viewport
):
    from decimal import Decimal

    from django.utils import timezone
    from django.utils.formats import localize
    from django.utils.translation import gettext, override

    from returns import services
    from returns.eligibility import return_quote

    devshop, shop = store
    # The status page asks every 5 s here (30 s in production) so the test sees it refresh.
    settings.RETURNS_STATUS_POLL_SECONDS = 5
    services.return_policy_update(
        shop=shop,
        restocking_fee_percent=Decimal("10"),
        return_shipping_fee=Decimal("4.00"),
        store_credit_bonus_percent=Decimal("10"),
    )
    order = delivered_order(
        devshop, shop, line_items=2, line_item_product_type="Apparel", line_item_quantity=1
    )
    first, second = lines(order)
    size = PHONE if viewport == "phone" else DESKTOP
    context = browser.new_context(
        viewport=size, is_mobile=viewport == "phone", has_touch=viewport == "phone"
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    violations = {}
    try:
        page.goto(devshop.client.app_proxy_url(shop.myshopify_domain, "returns"))
        page.get_by_label("Order number").fill(order.name)
        page.get_by_label("Email address or shipping postal code").fill(order.email)
        page.get_by_role("button", name="Find my order").click()

        # the items page: a price per item, a resolution per item, the bonus named
        expect(
            page.get_by_role("heading", name=f"Return items from order {order.name}")
        ).to_be_visible()
        _vitals(page, "items")
        violations["items"] = _axe_violations(page, ".pp-returns")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"returns-items-{viewport}.png"), full_page=True)
        for line, reason, resolution in (
            (first, "Size too small", "Refund to the original payment"),
            (second, "Changed my mind", "Store credit (+10% bonus)"),
        ):
            group = page.locator(f'fieldset[data-item="{line.pk}"]')
            expect(group.locator("[data-price]")).to_contain_text("USD each")
            group.get_by_label("Quantity to return").select_option("1")
            group.get_by_label("Reason").select_option(label=reason)
            group.get_by_label(resolution).check()
        page.get_by_role("button", name="Continue to review").click()

        # the review: each item's price, fee, bonus and total, before anything is sent
        expect(page.get_by_role("heading", name="Review your return")).to_be_visible()
        quote = return_quote(
            shop=shop, order=order, items=[(first, 1, "refund"), (second, 1, "store_credit")]
        )
        refund_item, credit_item = quote.items
        refunded = page.locator(f'[data-review-item="{first.pk}"]')
        expect(refunded.locator("[data-item-total] dd")).to_have_text(f"{refund_item.total} USD")
        expect(refunded.locator("[data-restocking-fee] dd")).to_have_text(
            f"−{refund_item.restocking_fee} USD"
        )
        credited = page.locator(f'[data-review-item="{second.pk}"]')
        expect(credited.locator("[data-bonus] dd")).to_have_text(f"+{credit_item.bonus} USD")
        expect(page.locator("[data-shipping-fee] dd")).to_have_text("−4.00 USD")
        expect(page.locator("[data-credit-total] dd")).to_have_text(
            f"{quote.store_credit_total} USD"
        )
        _vitals(page, "review")
        violations["review"] = _axe_violations(page, ".pp-returns")
        page.screenshot(path=str(ARTIFACTS / f"returns-review-{viewport}.png"), full_page=True)
        page.get_by_role("button", name="Submit return").click()

        # the status page, stored as reviewed
        expect(
            page.get_by_role("heading", name=f"Your return for order {order.name}")
        ).to_be_visible()
        [rr] = ReturnRequest.objects.filter(shop=shop)
        assert (rr.resolution, rr.store_credit_estimate) == ("mixed", quote.store_credit_total)
        violations["status"] = _axe_violations(page, ".pp-returns")
        page.get_by_role("link", name="your return's status page").click()
        expect(page.locator("[data-status]")).to_have_attribute("data-status", "pending")
        _vitals(page, "status")
        page.screenshot(path=str(ARTIFACTS / f"returns-status-{viewport}.png"), full_page=True)

        # when the store approves it and the items come back, the open page follows by itself
        ReturnRequest.objects.filter(pk=rr.pk).update(
            status="OPEN", sync_state="synced", received_at=timezone.now()
        )
        expect(page.locator("[data-status]")).to_have_attribute(
            "data-status", "received", timeout=20_000
        )
        expect(page.locator("#pp-status-title")).to_have_text("Received")
        expect(page.locator("#pp-status-live")).to_have_text("Received")
        violations["received"] = _axe_violations(page, ".pp-returns")
        page.screenshot(
            path=str(ARTIFACTS / f"returns-status-received-{viewport}.png"), full_page=True
        )

        # and in every language, the items' resolutions in the page's words
        status_url = page.url.split("?", 1)[0]
        for language, title in STATUS_TITLES.items():
            page.goto(f"{status_url}?locale={language}")
            expect(page.get_by_role("heading", name=title.format(name=order.name))).to_be_visible()
            _vitals(page, f"status {language}")
            with override(language):
                expect(page.locator(f'[data-status-item="{first.pk}"]')).to_contain_text(
                    gettext("Refund to the original payment")
                )
                expect(page.locator(f'[data-status-item="{second.pk}"]')).to_contain_text(
                    gettext("Store credit")
                )
                # (written as the language writes numbers: 58,40 in Spanish)
                expect(page.locator("[data-credit-estimate]")).to_contain_text(
                    localize(quote.store_credit_total)
                )
            violations[f"status {language}"] = _axe_violations(page, ".pp-returns")
            page.screenshot(
                path=str(ARTIFACTS / f"returns-status-{language}-{viewport}.png"), full_page=True
            )
        if viewport == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(
                path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True
            )
        context.close()

    assert violations == {name: [] for name in violations}


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_an_item_exchanged_for_a_different_product_shows_its_price_difference(
    store, browser, viewport
):
    from returns import services
    from returns.catalogue import exchange_catalogue_cached, exchange_catalogue_refresh
    from returns.eligibility import line_item_unit_value

    devshop, shop = store
    order = delivered_order(
        devshop, shop, line_items=1, line_item_product_type="Apparel", line_item_quantity=1
    )
    [line] = lines(order)
    # the merchant offers other products; the catalogue is read as its job reads it
    services.return_policy_update(shop=shop, allow_product_exchange=True)
    exchange_catalogue_refresh(shop=shop)
    product, variant = next(
        (p, v)
        for p in exchange_catalogue_cached(shop=shop)
        if p.product_id != line.product_id and p.image_url
        for v in p.variants
    )
    size = PHONE if viewport == "phone" else DESKTOP
    context = browser.new_context(
        viewport=size, is_mobile=viewport == "phone", has_touch=viewport == "phone"
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.route(OFF_MACHINE, lambda route: route.abort())
    page = context.new_page()
    violations = {}
    try:
        page.goto(devshop.client.app_proxy_url(shop.myshopify_domain, "returns"))
        page.get_by_label("Order number").fill(order.name)
        page.get_by_label("Email address or shipping postal code").fill(order.email)
        page.get_by_role("button", name="Find my order").click()
        expect(
            page.get_by_role("heading", name=f"Return items from order {order.name}")
        ).to_be_visible()
        _vitals(page, "items")

        # the shopper asks for a different product, picked by its picture, name and price
        group = page.locator(f'fieldset[data-item="{line.pk}"]')
        group.get_by_label("Quantity to return").select_option("1")
        group.get_by_label("Reason").select_option(label="Style")
        group.get_by_label("Exchange for something else").check()
        group.get_by_label("A different product", exact=True).check()
        group.get_by_text("Choose a different product").click()
        card = group.locator(f'[data-product="{product.product_id}"]')
        expect(card.locator("img")).to_be_visible()
        expect(card).to_contain_text(product.title)
        expect(card).to_contain_text(f"{variant.price} USD")
        card.locator(f'input[value="{variant.variant_id}"]').check()
        violations["items"] = _axe_violations(page, ".pp-returns")
        if viewport == "phone":
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= PHONE["width"], scroll_width
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(
            path=str(ARTIFACTS / f"returns-exchange-product-{viewport}.png"), full_page=True
        )
        page.get_by_role("button", name="Continue to review").click()

        # the review names the new item and the price difference, either way
        expect(page.get_by_role("heading", name="Review your return")).to_be_visible()
        reviewed = page.locator(f'[data-review-item="{line.pk}"]')
        expect(reviewed).to_contain_text(product.variant_label(variant))
        difference = line_item_unit_value(line) - variant.price
        if difference > 0:
            expect(reviewed.locator("[data-item-total] dd")).to_have_text(f"{difference} USD")
        elif difference < 0:
            expect(reviewed.locator("[data-item-due] dd")).to_have_text(f"{-difference} USD")
            expect(page.locator("[data-amount-due] dd")).to_have_text(f"{-difference} USD")
        _vitals(page, "review")
        violations["review"] = _axe_violations(page, ".pp-returns")
        page.get_by_role("button", name="Submit return").click()

        # and the request holds the other product's variant
        expect(
            page.get_by_role("heading", name=f"Your return for order {order.name}")
        ).to_be_visible()
        [rr] = ReturnRequest.objects.filter(shop=shop)
        assert rr.line_items.get().exchange_variant_id == variant.variant_id
    finally:
        context.close()
    assert violations == {name: [] for name in violations}

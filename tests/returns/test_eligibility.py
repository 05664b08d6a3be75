"""Eligibility per line item: every rule and its message, against a fake Admin API."""

from datetime import timedelta
from decimal import Decimal

import pytest

from returns.eligibility import ReasonCode, order_eligibility, return_estimate
from returns.models import ProductInfo, Resolution
from returns.policy import return_policy_get
from returns.services import return_request_submit
from tests.returns.domain_support import NOW, FakeShopify, make_order, make_shop, ship

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return make_shop()


@pytest.fixture
def order(shop):
    return make_order(shop)


@pytest.fixture
def fake(monkeypatch, order):
    return FakeShopify(monkeypatch, order)


def by_title(results):
    return {r.line_item.title: r for r in results}


def test_delivered_within_the_window_is_eligible_with_shopify_quantities(shop, order, fake):
    ship(order, shipped_at=NOW - timedelta(days=12), delivered_at=NOW - timedelta(days=10))

    results = by_title(order_eligibility(shop=shop, order=order, now=NOW))

    item = results["Item 0"]
    assert item.is_eligible is True
    assert item.returnable_quantity == 2
    assert item.reason_code == ""
    assert (
        item.fulfillment_line_item_gid
        == f"gid://shopify/FulfillmentLineItem/{item.line_item.shopify_id}"
    )
    assert item.window_ends_at == NOW - timedelta(days=10) + timedelta(days=30)


def test_window_counts_from_delivery_and_says_when_it_ended(shop, order, fake):
    ship(order, shipped_at=NOW - timedelta(days=40), delivered_at=NOW - timedelta(days=31))

    item = by_title(order_eligibility(shop=shop, order=order, now=NOW))["Item 0"]

    assert item.is_eligible is False
    assert item.returnable_quantity == 0
    assert item.reason_code == ReasonCode.WINDOW_ENDED
    assert item.reason_text == "The return window ended on 19 March 2026"


def test_without_delivery_the_window_counts_from_fulfillment_plus_allowance(shop, order, fake):
    # 30 days window + 7 days transit allowance from the fulfillment.
    ship(order, shipped_at=NOW - timedelta(days=36), delivered_at=None)
    inside = by_title(order_eligibility(shop=shop, order=order, now=NOW))["Item 0"]

    late = by_title(order_eligibility(shop=shop, order=order, now=NOW + timedelta(days=2)))

    assert inside.is_eligible is True
    assert late["Item 0"].reason_code == ReasonCode.WINDOW_ENDED
    assert late["Item 0"].reason_text == "The return window ended on 21 March 2026"


def test_final_sale_tag_is_not_returnable(shop, order, fake):
    ship(order, shipped_at=NOW - timedelta(days=5), delivered_at=NOW - timedelta(days=3))
    fake.products[1] = (["Summer", "Final-Sale"], "Shirts")

    results = by_title(order_eligibility(shop=shop, order=order, now=NOW))

    assert results["Item 0"].reason_code == ReasonCode.FINAL_SALE
    assert results["Item 0"].reason_text == "Final sale"
    assert results["Item 1"].is_eligible is True


def test_excluded_product_type_is_not_returnable(shop, order, fake):
    ship(order, shipped_at=NOW - timedelta(days=5), delivered_at=NOW - timedelta(days=3))
    policy = return_policy_get(shop=shop)
    policy.excluded_product_types = "Underwear, Gift boxes"
    policy.save()
    fake.products[2] = ([], "underwear")

    results = by_title(order_eligibility(shop=shop, order=order, now=NOW))

    assert results["Item 1"].reason_code == ReasonCode.EXCLUDED_TYPE
    assert results["Item 1"].reason_text == "This type of item can't be returned"
    assert results["Item 0"].is_eligible is True


def test_discounted_items_are_excluded_only_when_the_policy_says_so(shop, order, fake):
    ship(order, shipped_at=NOW - timedelta(days=5), delivered_at=NOW - timedelta(days=3))
    order.line_items.filter(title="Item 0").update(total_discount=Decimal("10.00"))
    allowed = by_title(order_eligibility(shop=shop, order=order, now=NOW))["Item 0"]
    policy = return_policy_get(shop=shop)
    policy.exclude_discounted_items = True
    policy.save()

    refused = by_title(order_eligibility(shop=shop, order=order, now=NOW))["Item 0"]

    assert allowed.is_eligible is True
    assert refused.reason_code == ReasonCode.DISCOUNTED
    assert refused.reason_text == "Discounted items can't be returned"


def test_already_returned_items_are_not_returnable(shop, order, fake):
    ship(order, shipped_at=NOW - timedelta(days=5), delivered_at=NOW - timedelta(days=3))
    first = order.line_items.get(title="Item 0")
    fake.returnable[first.shopify_id] = 0

    item = by_title(order_eligibility(shop=shop, order=order, now=NOW))["Item 0"]

    assert item.reason_code == ReasonCode.ALREADY_RETURNED
    assert item.reason_text == "Already returned"


def test_unshipped_items_are_not_returnable(shop, order, fake):
    fake.returnable = {}

    item = by_title(order_eligibility(shop=shop, order=order, now=NOW))["Item 0"]

    assert item.reason_code == ReasonCode.NOT_FULFILLED
    assert item.reason_text == "Not shipped yet"


def test_items_in_an_open_request_are_not_offered_again(
    shop, order, fake, django_capture_on_commit_callbacks
):
    ship(order, shipped_at=NOW - timedelta(days=5), delivered_at=NOW - timedelta(days=3))
    first = order.line_items.get(title="Item 0")
    return_request_submit(
        shop=shop,
        order=order,
        items=[(first.pk, 2, "SIZE_TOO_SMALL", "", None)],
        resolution=Resolution.REFUND,
        customer_email="ada@example.com",
        customer_id=42,
        now=NOW,
    )

    results = by_title(order_eligibility(shop=shop, order=order, now=NOW))

    assert results["Item 0"].reason_code == ReasonCode.OPEN_REQUEST
    assert results["Item 0"].reason_text == "A return for this item is already open"
    assert results["Item 1"].returnable_quantity == 2


def test_product_facts_are_read_once_then_cached(shop, order, fake):
    ship(order, shipped_at=NOW - timedelta(days=5), delivered_at=NOW - timedelta(days=3))

    order_eligibility(shop=shop, order=order, now=NOW)
    order_eligibility(shop=shop, order=order, now=NOW + timedelta(minutes=5))
    order_eligibility(shop=shop, order=order, now=NOW + timedelta(minutes=20))

    assert fake.product_fetches == 2
    assert ProductInfo.objects.filter(shop=shop).count() == 2


def test_another_shops_order_is_refused(order, fake):
    other = make_shop("bravo.myshopify.com")

    with pytest.raises(ValueError, match="does not belong"):
        order_eligibility(shop=other, order=order, now=NOW)


def test_estimate_deducts_restocking_and_shipping_fees(shop, order):
    policy = return_policy_get(shop=shop)
    policy.restocking_fee_percent = Decimal("10")
    policy.return_shipping_fee = Decimal("5.00")
    policy.save()
    first = order.line_items.get(title="Item 0")
    first.total_discount = Decimal("8.00")  # 4.00 off each of the two units
    first.save()

    refund = return_estimate(shop=shop, order=order, items=[(first.pk, 2)], resolution="refund")
    exchange = return_estimate(shop=shop, order=order, items=[(first, 1)], resolution="exchange")

    assert refund.subtotal == Decimal("72.00")
    assert refund.restocking_fee == Decimal("7.20")
    assert refund.shipping_fee == Decimal("5.00")
    assert refund.total == Decimal("59.80")
    assert refund.currency == "EUR"
    assert (exchange.restocking_fee, exchange.total) == (Decimal("0.00"), Decimal("0.00"))

"""Eligibility per line item: every rule and its message, against the devshop.

One store for the module, with four orders of home goods (one variant per product, so an
order's two items are two products): delivered, in transit, not shipped, and one whose first
item was already returned in Shopify. Dates come from what the devshop recorded; a test that
changes a product in Shopify puts it back.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils.dateparse import parse_datetime

from returns.eligibility import ReasonCode, order_eligibility, return_estimate
from returns.models import ProductInfo, Resolution
from returns.policy import return_policy_get
from returns.services import return_request_submit
from tests.returns.domain_support import make_order, make_shop
from tests.returns.store_support import DevshopStore, numeric

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo("America/New_York")  # the store's timezone (DevshopStore.open)


@pytest.fixture(scope="module")
def store(devshop_server, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        store = DevshopStore.open(devshop_server)
        home = {"line_item_product_type": "Home"}
        delivered, returned = store.orders_create(2, **home)
        (in_transit,) = store.orders_create(1, to="IN_TRANSIT", **home)
        (unshipped,) = store.orders_create(1, fulfil=False, **home)
        # Every unit of the first item of ``returned`` came back and was refunded in Shopify.
        first, _second = store.shipped_lines(returned)
        return_id = store.return_request_in_shopify([first], order_id=returned)
        store.merchant(return_id, "approve")
        store.merchant(return_id, "process")
        store.mirror()
    store.delivered, store.returned = delivered, returned
    store.in_transit, store.unshipped = in_transit, unshipped
    yield store
    with django_db_blocker.unblock():
        store.close()


@pytest.fixture(autouse=True)
def _app_calls_the_devshop(devshop):
    """Every test's Admin API calls go to the devshop (settings are per test)."""


@pytest.fixture
def products(store):
    """The delivered order's products in Shopify, by its line order; put back afterwards."""
    facts = store.order_facts(store.delivered)["lineItems"]["nodes"]
    found = [(numeric(n["product"]["id"]), n["product"]) for n in facts]
    yield [product_id for product_id, _ in found]
    for product_id, product in found:
        store.devshop.client.product_update(
            store.domain,
            product_id,
            tags=", ".join(product["tags"]),
            product_type=product["productType"],
        )


def items(results):
    """The results in the order's line order (Shopify's line item ids): (first, second)."""
    return sorted(results, key=lambda r: r.line_item.shopify_id)


def fulfillment(store, order_id) -> dict:
    (found,) = store.order_facts(order_id)["fulfillments"]
    return found


def day(moment: datetime) -> str:
    """A date as the shopper reads it: "19 March 2026", in the store's timezone."""
    local = moment.astimezone(ZONE)
    return f"{local.day} {local:%B %Y}"


def test_delivered_within_the_window_is_eligible_with_shopify_quantities(store):
    # given an order Shopify delivered ten days ago
    order = store.order(store.delivered)
    shipped = fulfillment(store, store.delivered)
    delivered_at = parse_datetime(shipped["deliveredAt"])
    lines = {
        numeric(n["lineItem"]["id"]): (n["id"], n["quantity"])
        for n in shipped["fulfillmentLineItems"]["nodes"]
    }

    # when
    results = order_eligibility(
        shop=store.shop(), order=order, now=delivered_at + timedelta(days=10)
    )

    # then every item may be returned, in the quantities Shopify says are returnable
    assert len(results) == 2
    for item in results:
        fulfillment_line_item_gid, quantity = lines[item.line_item.shopify_id]
        assert item.is_eligible is True
        assert item.returnable_quantity == quantity == item.line_item.quantity
        assert item.reason_code == ""
        assert item.fulfillment_line_item_gid == fulfillment_line_item_gid
        assert item.fulfillment_lines == [(fulfillment_line_item_gid, quantity)]
        assert item.window_ends_at == delivered_at + timedelta(days=30)


def test_window_counts_from_delivery_and_says_when_it_ended(store):
    order = store.order(store.delivered)
    delivered_at = parse_datetime(fulfillment(store, store.delivered)["deliveredAt"])

    results = order_eligibility(
        shop=store.shop(), order=order, now=delivered_at + timedelta(days=31)
    )

    for item in results:
        assert item.is_eligible is False
        assert item.returnable_quantity == 0
        assert item.reason_code == ReasonCode.WINDOW_ENDED
        ended = day(delivered_at + timedelta(days=30))
        assert item.reason_text == f"The return window ended on {ended}"


def test_without_delivery_the_window_counts_from_fulfillment_plus_allowance(store):
    # 30 days window + 7 days transit allowance from the fulfillment.
    order = store.order(store.in_transit)
    shipped = fulfillment(store, store.in_transit)
    assert shipped["deliveredAt"] is None
    shipped_at = parse_datetime(shipped["createdAt"])
    inside = items(
        order_eligibility(shop=store.shop(), order=order, now=shipped_at + timedelta(days=36))
    )

    late = items(
        order_eligibility(shop=store.shop(), order=order, now=shipped_at + timedelta(days=38))
    )

    assert [i.is_eligible for i in inside] == [True, True]
    assert late[0].reason_code == ReasonCode.WINDOW_ENDED
    ended = day(shipped_at + timedelta(days=37))
    assert late[0].reason_text == f"The return window ended on {ended}"


def test_final_sale_tag_is_not_returnable(store, products):
    # given the merchant tags the first item's product final sale in Shopify
    store.devshop.client.product_update(store.domain, products[0], tags="Summer, Final-Sale")

    first, second = items(order_eligibility(shop=store.shop(), order=store.order(store.delivered)))

    assert (first.is_eligible, first.returnable_quantity) == (False, 0)
    assert first.reason_code == ReasonCode.FINAL_SALE
    assert first.reason_text == "Final sale"
    assert second.is_eligible is True


def test_excluded_product_type_is_not_returnable(store, products):
    shop = store.shop()
    policy = return_policy_get(shop=shop)
    policy.excluded_product_types = "Underwear, Gift boxes"
    policy.save()
    store.devshop.client.product_update(store.domain, products[1], product_type="underwear")

    first, second = items(order_eligibility(shop=shop, order=store.order(store.delivered)))

    assert second.reason_code == ReasonCode.EXCLUDED_TYPE
    assert second.reason_text == "This type of item can't be returned"
    assert first.is_eligible is True


def test_discounted_items_are_excluded_only_when_the_policy_says_so(store):
    shop = store.shop()
    order = store.order(store.delivered)
    # The devshop discounts at random; the rule reads the discount the app mirrored.
    first_line = order.line_items.order_by("shopify_id").first()
    first_line.total_discount = Decimal("10.00")
    first_line.save()
    allowed = items(order_eligibility(shop=shop, order=order))[0]
    policy = return_policy_get(shop=shop)
    policy.exclude_discounted_items = True
    policy.save()

    refused = items(order_eligibility(shop=shop, order=order))[0]

    assert allowed.is_eligible is True
    assert refused.reason_code == ReasonCode.DISCOUNTED
    assert refused.reason_text == "Discounted items can't be returned"


def test_already_returned_items_are_not_returnable(store):
    # given Shopify returned and refunded every unit of the first item (module setup)
    order = store.order(store.returned)
    assert [r["status"] for r in store.order_returns(store.returned)] == ["CLOSED"]

    first, second = items(order_eligibility(shop=store.shop(), order=order))

    assert first.reason_code == ReasonCode.ALREADY_RETURNED
    assert first.reason_text == "Already returned"
    assert (second.is_eligible, second.returnable_quantity) == (True, second.line_item.quantity)


def test_unshipped_items_are_not_returnable(store):
    order = store.order(store.unshipped)

    results = order_eligibility(shop=store.shop(), order=order)

    for item in results:
        assert item.reason_code == ReasonCode.NOT_FULFILLED
        assert item.reason_text == "Not shipped yet"
        assert item.fulfillment_line_item_gid == ""


def test_items_in_an_open_request_are_not_offered_again(store):
    # given a stored request for every unit of the first item, not sent to Shopify yet
    shop = store.shop()
    order = store.order(store.delivered)
    first_line, second_line = order.line_items.order_by("shopify_id")
    return_request_submit(
        shop=shop,
        order=order,
        items=[(first_line.pk, first_line.quantity, "SIZE_TOO_SMALL", "", None)],
        resolution=Resolution.REFUND,
        customer_email=order.email,
        customer_id=order.customer_id,
    )

    first, second = items(order_eligibility(shop=shop, order=order))

    assert first.reason_code == ReasonCode.OPEN_REQUEST
    assert first.reason_text == "A return for this item is already open"
    assert second.returnable_quantity == second_line.quantity
    assert store.order_returns(store.delivered) == []


def test_product_facts_are_read_once_then_cached(store, products):
    # given the app read the products once
    shop = store.shop()
    order = store.order(store.delivered)
    now = parse_datetime(fulfillment(store, store.delivered)["deliveredAt"])
    before = items(order_eligibility(shop=shop, order=order, now=now))
    # and the merchant then marked the first product final sale in Shopify
    store.devshop.client.product_update(store.domain, products[0], tags="final-sale")

    # when the shopper looks again five, then twenty minutes later
    cached = items(order_eligibility(shop=shop, order=order, now=now + timedelta(minutes=5)))
    reread = items(order_eligibility(shop=shop, order=order, now=now + timedelta(minutes=20)))

    # then the product facts were read from the cache, then again from Shopify
    assert [i.is_eligible for i in before] == [True, True]
    assert [i.is_eligible for i in cached] == [True, True]
    assert [i.reason_code for i in reread] == [ReasonCode.FINAL_SALE, ReasonCode.ELIGIBLE]
    assert ProductInfo.objects.filter(shop=shop).count() == 2


def test_another_shops_order_is_refused(store):
    other = make_shop("bravo.myshopify.com")

    with pytest.raises(ValueError, match="does not belong"):
        order_eligibility(shop=other, order=store.order(store.delivered))


def test_estimate_deducts_restocking_and_shipping_fees():
    # Pure arithmetic on local rows: no Shopify call.
    shop = make_shop()
    order = make_order(shop)
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

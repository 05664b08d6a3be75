"""An exchange for something cheaper, against the devshop over HTTP: returnProcess books the
exchange and refunds the difference, less the policy's fees, to the order's payment in the
same call; the devshop's order (refund, financial status, total) and the app end alike."""

import json
from decimal import Decimal

import pytest

from returns import services
from returns.eligibility import line_item_unit_value
from returns.models import Resolution
from shopapp.models import OrderEvent
from tests.devshop.capture_server import CaptureServer
from tests.returns.flow_support import deliver, store_with_delivered_order

pytestmark = pytest.mark.django_db(transaction=True)

SHIPPING_FEE = Decimal("1.00")
RESTOCKING_PERCENT = Decimal("10")

ORDER_MONEY = """
query($id: ID!) { order(id: $id) {
  displayFinancialStatus
  totalPriceSet { shopMoney { amount } }
  totalOutstandingSet { shopMoney { amount } } } }"""


@pytest.fixture(scope="module")
def refunds():
    """A second endpoint that only receives refunds/create, to read what the devshop sent."""
    server = CaptureServer().start()
    yield server
    server.stop()


def store_with_a_cheaper_item(devshop, capture, rq_worker):
    """A store whose order's two items differ in price by more than the shipping fee, with
    orders/updated sent to the app too. The devshop draws items at random: draw again until
    they differ (one or two tries). Returns (store, dear line, cheap line's variant gid and
    price)."""
    for _attempt in range(20):
        store = store_with_delivered_order(devshop, capture, rq_worker)
        prices = store.variant_prices()
        first, second = store.order.line_items.order_by("pk")
        for dear, cheap in ((first, second), (second, first)):
            variant, price = prices[cheap.shopify_id]
            if line_item_unit_value(dear) - Decimal(price) > SHIPPING_FEE:
                devshop.client.webhook_subscription_create(
                    store.domain, "orders/updated", f"{capture.url}/webhooks/"
                )
                return store, dear, variant, Decimal(price)
    pytest.fail("the devshop drew twenty orders without a cheaper item to exchange for")


def test_exchange_for_a_cheaper_variant_refunds_the_difference_less_fees(
    devshop, capture, refunds, client, rq_worker
):
    # given a policy with fees, and one unit of the dear item to exchange for the cheap
    # item's variant
    store, dear, cheap_variant, cheap_price = store_with_a_cheaper_item(devshop, capture, rq_worker)
    devshop.client.webhook_subscription_create(
        store.domain, "refunds/create", f"{refunds.url}/webhooks/"
    )
    services.return_policy_update(
        shop=store.shop,
        return_shipping_fee=SHIPPING_FEE,
        restocking_fee_percent=RESTOCKING_PERCENT,
    )
    request = services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[
            {
                "line_item_id": dear.pk,
                "quantity": 1,
                "reason": "STYLE",
                "exchange_variant_id": int(cheap_variant.rsplit("/", 1)[-1]),
            }
        ],
        resolution=Resolution.EXCHANGE,
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )
    rq_worker()
    request.refresh_from_db()
    services.return_request_approve(shop=store.shop, request=request, instructions="")
    deliver(store, client, rq_worker, expect={"returns/approve"})
    total_before = store.api.execute(
        ORDER_MONEY, {"id": f"gid://shopify/Order/{store.order.shopify_id}"}
    )["order"]["totalPriceSet"]["shopMoney"]["amount"]

    # when the merchant processes the exchange
    services.return_request_process(shop=store.shop, request=request)

    # then the shopper gets back what the dear unit cost less the cheap one and the return
    # shipping fee (no restocking fee on an exchanged unit), recorded on the request
    expected = line_item_unit_value(dear) - cheap_price - SHIPPING_FEE
    request.refresh_from_db()
    assert request.refunded_amount == expected > 0
    assert request.amount_outstanding == 0
    shopify_return = store.return_state(request.shopify_return_id)
    assert (request.status, shopify_return["status"]) == ("CLOSED", "CLOSED")
    assert shopify_return["exchangeLineItems"]["nodes"][0]["processedQuantity"] == 1
    # and Shopify refunded exactly that to the order's payment, nothing left outstanding
    store.devshop.client.webhooks_flush()
    (refund,) = refunds.received(x_shopify_shop_domain=store.domain)
    (transaction,) = json.loads(refund.body)["transactions"]
    assert (transaction["kind"], Decimal(transaction["amount"])) == ("refund", expected)
    assert transaction["parent_id"] == store.order.shopify_id
    order = store.api.execute(ORDER_MONEY, {"id": f"gid://shopify/Order/{store.order.shopify_id}"})[
        "order"
    ]
    assert order["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert Decimal(order["totalOutstandingSet"]["shopMoney"]["amount"]) == 0
    # the exchanged variant is booked on the order
    assert Decimal(order["totalPriceSet"]["shopMoney"]["amount"]) == (
        Decimal(total_before) + cheap_price
    )

    # when Shopify's webhooks reach the app
    deliver(
        store,
        client,
        rq_worker,
        expect={"returns/process", "returns/close", "orders/updated"},
    )

    # then the app's order mirrors the devshop's, and the timeline has one processing with
    # the amount refunded
    store.order.refresh_from_db()
    assert store.order.financial_status == "partially_refunded"
    assert store.order.total_price == Decimal(order["totalPriceSet"]["shopMoney"]["amount"])
    (processed,) = OrderEvent.objects.filter(order=store.order, kind="return.processed")
    assert Decimal(processed.detail["amount"]) == expected
    request.refresh_from_db()
    assert request.refunded_amount == expected


def test_store_credit_on_an_authorized_order_owes_nothing_for_an_exchange(
    devshop, capture, rq_worker, client
):
    # given a delivered order whose payment was authorized, not captured (Shopify's
    # totalOutstandingSet is then the order's whole total)
    store = store_with_delivered_order(devshop, capture, rq_worker, financial_status="AUTHORIZED")
    request = services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[
            {"line_item_id": line.pk, "quantity": 1, "reason": "SIZE_TOO_SMALL"}
            for line in store.order.line_items.order_by("pk")[:1]
        ],
        resolution=Resolution.STORE_CREDIT,
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )
    services.return_request_send(request_id=request.pk)
    request.refresh_from_db()
    services.return_request_approve(shop=store.shop, request=request, instructions="")
    outstanding = store.api.execute(
        ORDER_MONEY, {"id": f"gid://shopify/Order/{store.order.shopify_id}"}
    )["order"]["totalOutstandingSet"]["shopMoney"]["amount"]
    assert Decimal(outstanding) > 0

    # when the merchant settles it as store credit
    request = services.return_request_process(shop=store.shop, request=request)

    # then the return owes nothing: no exchange was made, whatever the order still owes
    assert request.status == "CLOSED"
    assert request.amount_outstanding == 0
    assert request.refunded_amount > 0
    [step] = OrderEvent.objects.filter(order=store.order, kind="return.processed")
    assert "amount_outstanding" not in step.detail

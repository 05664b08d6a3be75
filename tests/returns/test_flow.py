"""The whole return against the devshop over HTTP, ending with Shopify (the devshop) and the
app in the same state: refund with a label and tracking through Shopify's reverse delivery,
receipt by disposition, store credit in two processings, and an exchange created with
returnCreate where the buyer owes the difference. Jobs run through Redis; Shopify's webhooks
come back signed from the devshop."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from returns import services
from returns.models import Resolution, ReturnRequest
from shopapp.admin_api import client as admin_api_client
from shopapp.models import OrderEvent
from tests.returns.flow_support import DISPOSE, deliver, store_with_delivered_order
from tests.returns.store_support import unit_value

pytestmark = pytest.mark.django_db(transaction=True)

LABEL = b"%PDF-1.4 return label for the carrier\n%%EOF\n"


@pytest.fixture
def store(devshop, capture, rq_worker):
    return store_with_delivered_order(devshop, capture, rq_worker)


@pytest.fixture
def calls_in_transaction(monkeypatch):
    """Whether a transaction (and so a lock) was open at each Admin API request a merchant
    action makes: ``seen.clear()`` before the action, read after."""
    seen: list[bool] = []
    real = admin_api_client.AdminApiClient._post

    def post(self, body):
        seen.append(connection.in_atomic_block)
        return real(self, body)

    monkeypatch.setattr(admin_api_client.AdminApiClient, "_post", post)
    return seen


def submit(store, resolution=Resolution.REFUND, lines=None, **item):
    """The shopper's request for every unit of ``lines`` (default: the first line item)."""
    lines = lines or [store.order.line_items.order_by("pk").first()]
    return services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[
            {"line_item_id": li.pk, "quantity": li.quantity, "reason": "SIZE_TOO_SMALL"} | item
            for li in lines
        ],
        resolution=resolution,
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )


def test_refund_end_to_end_with_label_receipt_and_webhooks(
    store, client, rq_worker, calls_in_transaction
):
    # given a shopper's request, sent by the job
    request = submit(store)
    rq_worker()
    request.refresh_from_db()
    assert (request.status, request.sync_state) == ("REQUESTED", "synced")
    assert store.order_returns() == [{"id": request.shopify_return_id, "status": "REQUESTED"}]
    # and Shopify's returns/request echo attaches to it, no second local copy
    deliver(store, client, rq_worker, expect={"returns/request"})
    assert ReturnRequest.objects.filter(shop=store.shop).count() == 1

    # when the merchant approves with a label and a tracking number
    calls_in_transaction.clear()
    label = SimpleUploadedFile("label.pdf", LABEL, content_type="application/pdf")
    services.return_request_approve(
        shop=store.shop,
        request=request,
        instructions="Drop it at any post office",
        label_file=label,
        tracking_number="1Z999AA10123456784",
        tracking_url="https://www.ups.com/track?tracknum=1Z999AA10123456784",
    )

    # then no Shopify call was made with a transaction (a row lock) open
    assert len(calls_in_transaction) == 3  # approve, stage the label, reverse delivery
    assert not any(calls_in_transaction)
    # and Shopify holds an OPEN return with a reverse delivery carrying our label
    request.refresh_from_db()
    shopify_return = store.return_state(request.shopify_return_id)
    assert (request.status, shopify_return["status"]) == ("OPEN", "OPEN")
    (rfo,) = shopify_return["reverseFulfillmentOrders"]["nodes"]
    assert request.reverse_fulfillment_order_gid == rfo["id"]
    (delivery,) = rfo["reverseDeliveries"]["nodes"]
    assert request.reverse_delivery_gid == delivery["id"]
    assert delivery["deliverable"]["tracking"]["number"] == "1Z999AA10123456784"
    public_url = delivery["deliverable"]["label"]["publicFileUrl"]
    assert store.devshop.client.http.get(public_url, timeout=10).content == LABEL
    # and the local copy stays for the shopper's status page
    assert request.label_file.read() == LABEL
    assert (request.return_tracking_number, request.label_url) == (
        "1Z999AA10123456784",
        public_url,
    )
    topics = deliver(
        store,
        client,
        rq_worker,
        expect={"returns/approve", "reverse_deliveries/attach_deliverable"},
    )
    assert "reverse_deliveries/attach_deliverable" in topics

    # when the warehouse disposes the items in Shopify (restock is not ours to decide here)
    line = request.line_items.get()
    assert line.reverse_fulfillment_order_line_item_gid == rfo["lineItems"]["nodes"][0]["id"]
    disposition = {
        "reverseFulfillmentOrderLineItemId": line.reverse_fulfillment_order_line_item_gid,
        "quantity": line.quantity,
        "dispositionType": "NOT_RESTOCKED",
    }
    answer = store.api.execute(DISPOSE, {"inputs": [disposition]})
    assert answer["reverseFulfillmentOrderDispose"]["userErrors"] == []
    deliver(store, client, rq_worker, expect={"reverse_fulfillment_orders/dispose"})

    # then the items are received here
    line.refresh_from_db()
    assert line.received_quantity == line.quantity
    assert OrderEvent.objects.filter(order=store.order, kind="return.received").count() == 1

    # when the merchant refunds
    calls_in_transaction.clear()
    services.return_request_process(shop=store.shop, request=request)
    assert calls_in_transaction
    assert not any(calls_in_transaction)

    # then Shopify and the app agree: closed, every unit processed, the money went back
    request.refresh_from_db()
    shopify_return = store.return_state(request.shopify_return_id)
    assert (request.status, shopify_return["status"]) == ("CLOSED", "CLOSED")
    line.refresh_from_db()
    assert line.processed_quantity == line.quantity
    assert [n["processedQuantity"] for n in shopify_return["returnLineItems"]["nodes"]] == [
        line.quantity
    ]
    deliver(store, client, rq_worker, expect={"returns/process", "returns/close", "refunds/create"})
    request.refresh_from_db()
    assert request.status == "CLOSED"
    assert ReturnRequest.objects.filter(shop=store.shop).count() == 1
    processed = OrderEvent.objects.get(order=store.order, kind="return.processed")
    assert Decimal(processed.detail["amount"]) == request.refund_estimate > 0
    assert shopify_return["order"]["displayFinancialStatus"] in {"PARTIALLY_REFUNDED", "REFUNDED"}


def test_store_credit_processed_in_two_parts(store, client, rq_worker):
    # given an approved return of both lines of the order
    request = submit(
        store, resolution=Resolution.STORE_CREDIT, lines=list(store.order.line_items.all())
    )
    rq_worker()
    request.refresh_from_db()
    services.return_request_approve(shop=store.shop, request=request, instructions="")
    first, second = request.line_items.order_by("pk")

    # when the merchant processes the first line, then the rest
    services.return_request_process(
        shop=store.shop, request=request, quantities={first.pk: first.quantity}
    )
    request.refresh_from_db()
    assert request.status == "OPEN"
    assert store.return_state(request.shopify_return_id)["status"] == "OPEN"
    services.return_request_process(shop=store.shop, request=request)

    # then both returnProcess calls went through and each line is processed once
    request.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.processed_quantity, second.processed_quantity) == (
        first.quantity,
        second.quantity,
    )
    shopify_return = store.return_state(request.shopify_return_id)
    assert (request.status, shopify_return["status"]) == ("CLOSED", "CLOSED")
    assert sorted(
        n["processedQuantity"] for n in shopify_return["returnLineItems"]["nodes"]
    ) == sorted([first.quantity, second.quantity])
    amounts = [
        Decimal(e.detail["amount"])
        for e in OrderEvent.objects.filter(order=store.order, kind="return.processed").order_by(
            "pk"
        )
    ]
    assert len(amounts) == 2
    assert sum(amounts) == request.refund_estimate
    # and nothing more is left to process
    with pytest.raises(services.ReturnActionError):
        services.return_request_process(shop=store.shop, request=request)


def test_exchange_is_created_at_approval_and_the_buyer_owes_the_difference(
    devshop, capture, client, rq_worker
):
    # given an order whose second item costs more than the first (the devshop draws its
    # items at random: draw again until two prices differ, which takes one or two tries)
    for _attempt in range(10):
        store = store_with_delivered_order(devshop, capture, rq_worker)
        prices = store.variant_prices()
        cheap, dear = sorted(
            store.order.line_items.all(), key=lambda li: Decimal(prices[li.shopify_id][1])
        )
        if Decimal(prices[cheap.shopify_id][1]) != Decimal(prices[dear.shopify_id][1]):
            break
    else:
        pytest.fail("the devshop drew ten orders whose two items share a price")
    dear_variant = int(prices[dear.shopify_id][0].rsplit("/", 1)[-1])

    # when the shopper asks to exchange one unit of the cheap item for the dear one
    request = services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[
            {
                "line_item_id": cheap.pk,
                "quantity": 1,
                "reason": "SIZE_TOO_SMALL",
                "exchange_variant_id": dear_variant,
            }
        ],
        resolution=Resolution.EXCHANGE,
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )
    rq_worker()

    # then it waits here for the merchant: Shopify has no return yet
    request.refresh_from_db()
    assert (request.status, request.sync_state, request.shopify_return_id) == (
        "REQUESTED",
        "held",
        None,
    )
    assert store.order_returns() == []

    # when the merchant approves: returnCreate with the exchange line, directly OPEN
    services.return_request_approve(shop=store.shop, request=request, instructions="")
    request.refresh_from_db()
    shopify_return = store.return_state(request.shopify_return_id)
    assert (request.status, request.sync_state, shopify_return["status"]) == (
        "OPEN",
        "synced",
        "OPEN",
    )
    (exchange,) = shopify_return["exchangeLineItems"]["nodes"]
    assert (exchange["variantId"], exchange["quantity"]) == (prices[dear.shopify_id][0], 1)
    (line,) = request.line_items.all()
    assert line.shopify_exchange_line_item_gid == exchange["id"]
    # and Shopify's returns/approve attaches to it, no second local copy
    deliver(store, client, rq_worker, expect={"returns/approve"})
    assert ReturnRequest.objects.filter(shop=store.shop).count() == 1

    # when the merchant processes the exchange
    services.return_request_process(shop=store.shop, request=request)

    # then the exchange is booked, the return closed, and what the buyer owes is shown
    request.refresh_from_db()
    shopify_return = store.return_state(request.shopify_return_id)
    assert (request.status, shopify_return["status"]) == ("CLOSED", "CLOSED")
    assert shopify_return["exchangeLineItems"]["nodes"][0]["processedQuantity"] == 1
    # (the returned unit is worth what it cost, its share of a line discount deducted)
    owed = Decimal(prices[dear.shopify_id][1]) - unit_value(cheap)
    assert request.amount_outstanding == owed
    assert shopify_return["order"]["displayFinancialStatus"] == "PARTIALLY_PAID"
    assert Decimal(shopify_return["order"]["totalOutstandingSet"]["shopMoney"]["amount"]) == owed
    line.refresh_from_db()
    assert (line.processed_quantity, line.exchange_processed_quantity) == (1, 1)

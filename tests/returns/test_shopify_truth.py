"""Shopify is the source of truth for returns. Only Shopify's clock orders returns webhooks:
the app's own calls move a return forward without stamping it with the app's time, so a
merchant acting in Shopify's admin moments later, on a clock a little behind ours (and
Shopify's timestamps have whole seconds), is still applied; when webhooks leave doubt, or name
what the app cannot place (a return made and handled in Shopify's admin), the app reads the
return from Shopify. Against the devshop over HTTP."""

import pytest

from returns.models import ReturnRequest
from shopapp.models import OrderEvent
from tests.returns.flow_support import DISPOSE, deliver, store_with_delivered_order
from tests.returns.test_flow import submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def store(devshop, capture, rq_worker):
    return store_with_delivered_order(devshop, capture, rq_worker)


@pytest.fixture
def shopify_clock_behind(devshop):
    """Shopify's clock 20 s behind the app's (clocks differ; whole seconds make it worse)."""
    devshop.client.clock_set(speed=1, offset_seconds=-20)
    yield
    devshop.client.clock_set(speed=1, offset_seconds=0)


def _steps(request: ReturnRequest) -> list[str]:
    return list(
        OrderEvent.objects.filter(order=request.order, kind__startswith="return.")
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def test_an_approval_in_shopify_right_after_our_request_is_applied(
    store, client, rq_worker, shopify_clock_behind
):
    # given a request the app sent to Shopify (REQUESTED here, at the app's time)
    request = submit(store)
    rq_worker()
    request.refresh_from_db()
    assert (request.status, request.sync_state) == ("REQUESTED", "synced")

    # when the merchant approves it in Shopify's admin at once, on Shopify's clock
    store.devshop.client.return_action(store.domain, request.shopify_return_id, "approve")
    deliver(store, client, rq_worker, expect={"returns/request", "returns/approve"})

    # then the app follows Shopify: approved, and the step is on the order's timeline
    request.refresh_from_db()
    assert store.return_state(request.shopify_return_id)["status"] == "OPEN"
    assert request.status == "OPEN"
    assert request.approved_at is not None
    assert "return.approved" in _steps(request)


def test_a_close_after_our_approval_and_a_reopen_in_shopify_end_as_shopify_does(
    store, client, rq_worker, shopify_clock_behind
):
    from returns import services

    request = submit(store)
    rq_worker()
    request.refresh_from_db()
    # given the app approved it (a local move, no stamp of the app's time)
    services.return_request_approve(shop=store.shop, request=request, instructions="")
    deliver(store, client, rq_worker, expect={"returns/request", "returns/approve"})
    # when the merchant closes then reopens it in Shopify's admin, and the webhooks come
    # back in reverse order
    store.devshop.client.return_action(store.domain, request.shopify_return_id, "close")
    store.devshop.client.return_action(store.domain, request.shopify_return_id, "reopen")
    topics = deliver(
        store, client, rq_worker, expect={"returns/close", "returns/reopen"}, reverse=True
    )
    assert topics == ["returns/reopen", "returns/close"]

    # then the return is open, as in Shopify: the reopen found nothing to reopen and the close
    # (same second) closed it, so the app asked Shopify, and says so on the timeline
    request.refresh_from_db()
    assert store.return_state(request.shopify_return_id)["status"] == "OPEN"
    assert request.status == "OPEN"
    assert request.closed_at is None
    assert _steps(request)[-2:] == ["return.closed", "return.reopened"]

    # and a stale delivery of the close again changes nothing after one more read
    rq_worker()
    request.refresh_from_db()
    assert request.status == "OPEN"


RETURN_CREATE = """
mutation($input: ReturnInput!) { returnCreate(returnInput: $input) {
  return { id } userErrors { field message code } } }"""

RETURNABLE = """
query($id: ID!) { returnableFulfillments(orderId: $id, first: 5) { nodes {
  returnableFulfillmentLineItems(first: 20) {
    nodes { quantity fulfillmentLineItem { id } } } } } }"""


def test_a_return_made_and_handled_in_shopifys_admin_ends_here_as_it_does_there(
    store, client, rq_worker
):
    # given a return the merchant makes in Shopify's admin for every returnable unit
    order_gid = f"gid://shopify/Order/{store.order.shopify_id}"
    returnable = [
        (node["fulfillmentLineItem"]["id"], node["quantity"])
        for fulfillment in store.api.execute(RETURNABLE, {"id": order_gid})[
            "returnableFulfillments"
        ]["nodes"]
        for node in fulfillment["returnableFulfillmentLineItems"]["nodes"]
    ]
    created = store.api.execute(
        RETURN_CREATE,
        {
            "input": {
                "orderId": order_gid,
                "returnLineItems": [
                    {"fulfillmentLineItemId": fli, "quantity": q, "returnReason": "UNWANTED"}
                    for fli, q in returnable
                ],
            }
        },
    )["returnCreate"]
    assert created["userErrors"] == []
    return_gid = created["return"]["id"]
    return_id = int(return_gid.rsplit("/", 1)[-1])

    # when its webhook arrives, the app records it and reads what it needs from Shopify
    deliver(store, client, rq_worker, expect={"returns/approve"})
    request = ReturnRequest.objects.get(shop=store.shop, shopify_return_id=return_id)
    assert request.status == "OPEN"
    rfo = store.return_state(return_id)["reverseFulfillmentOrders"]["nodes"][0]
    assert request.reverse_fulfillment_order_gid == rfo["id"]

    # and when the merchant receives everything and processes it there
    store.api.execute(
        DISPOSE,
        {
            "inputs": [
                {
                    "reverseFulfillmentOrderLineItemId": line["id"],
                    "quantity": line["totalQuantity"],
                    "dispositionType": "NOT_RESTOCKED",
                }
                for line in rfo["lineItems"]["nodes"]
            ]
        },
    )
    deliver(store, client, rq_worker, expect={"reverse_fulfillment_orders/dispose"})
    store.devshop.client.return_action(store.domain, return_id, "process")
    deliver(store, client, rq_worker, expect={"returns/process"})

    # then the app holds what Shopify holds: closed, every unit received and processed
    request.refresh_from_db()
    shopify_return = store.return_state(return_id)
    assert request.status == shopify_return["status"] == "CLOSED"
    lines = sorted(
        (line.quantity, line.received_quantity, line.processed_quantity)
        for line in request.line_items.all()
    )
    assert lines == sorted(
        (node["quantity"], node["quantity"], node["processedQuantity"])
        for node in shopify_return["returnLineItems"]["nodes"]
    )
    assert all(received == quantity for quantity, received, _p in lines)
    steps = _steps(request)
    assert "return.received" in steps
    assert "return.processed" in steps

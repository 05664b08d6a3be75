"""Sending a request to the devshop when Shopify misbehaves: userErrors, 5xx and throttling
during the send job, a timeout after Shopify accepted (the retry adopts, never a second
return), and the returns/request webhook of a request whose answer was lost."""

import pytest

from returns import services
from returns import shopify as returns_shopify
from returns.jobs import SEND_FAILED_MESSAGE
from returns.models import Resolution, ReturnRequest
from shopapp.admin_api import client as admin_api_client
from shopapp.admin_api.client import AdminApiUnavailable
from tests.returns.flow_support import deliver, store_with_delivered_order

pytestmark = pytest.mark.django_db(transaction=True)

COMPETING_REQUEST = """
mutation($input: ReturnRequestInput!) {
  returnRequest(input: $input) { return { id } userErrors { message } } }"""


@pytest.fixture
def store(devshop, capture, rq_worker):
    yield store_with_delivered_order(devshop, capture, rq_worker)
    devshop.client.graphql_throttle_set()
    devshop.client.admin_api_fail_next(0)


@pytest.fixture
def quick_retries(monkeypatch):
    """RQ retries at once and the client's backoff in milliseconds, so a burst worker runs
    every attempt in the test."""
    monkeypatch.setattr("returns.jobs.SEND_RETRY_INTERVALS_S", (0,))
    monkeypatch.setattr(admin_api_client, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr(admin_api_client, "BACKOFF_MAX_SECONDS", 0.05)


def submit(store):
    line = store.order.line_items.order_by("pk").first()
    return services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[{"line_item_id": line.pk, "quantity": line.quantity, "reason": "UNWANTED"}],
        resolution=Resolution.REFUND,
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )


def test_a_quantity_shopify_refuses_marks_the_request_failed_in_plain_words(store, rq_worker):
    # given a stored request, and the same units requested in Shopify meanwhile
    request = submit(store)
    line = request.line_items.get()
    answer = store.api.execute(
        COMPETING_REQUEST,
        {
            "input": {
                "orderId": f"gid://shopify/Order/{store.order.shopify_id}",
                "returnLineItems": [
                    {
                        "fulfillmentLineItemId": line.fulfillment_line_item_gid,
                        "quantity": line.quantity,
                        "returnReason": "OTHER",
                    }
                ],
            }
        },
    )
    assert answer["returnRequest"]["userErrors"] == []

    # when the job sends ours
    rq_worker()

    # then it is failed with Shopify's words, and Shopify holds only the competing return
    request.refresh_from_db()
    assert request.sync_state == "failed"
    assert request.shopify_return_id is None
    assert "quantity" in request.sync_error.lower()
    assert "Traceback" not in request.sync_error
    assert len(store.order_returns()) == 1


def test_5xx_and_throttling_during_send_end_synced_after_retries(store, rq_worker, quick_retries):
    # given Shopify answering 503 three times, then a bucket so small that calls wait
    request = submit(store)
    store.devshop.client.admin_api_fail_next(3, status=503)
    store.devshop.client.graphql_throttle_set(bucket_size=300, restore_rate=200)

    # when the job runs
    rq_worker()

    # then the request is in Shopify once
    request.refresh_from_db()
    assert (request.status, request.sync_state) == ("REQUESTED", "synced")
    assert store.order_returns() == [{"id": request.shopify_return_id, "status": "REQUESTED"}]


def test_shopify_down_for_every_retry_fails_with_a_readable_message(
    store, rq_worker, quick_retries
):
    request = submit(store)
    store.devshop.client.admin_api_fail_next(50, status=503)

    rq_worker()

    request.refresh_from_db()
    assert (request.sync_state, request.sync_error) == ("failed", SEND_FAILED_MESSAGE)
    store.devshop.client.admin_api_fail_next(0)
    assert store.order_returns() == []


def test_timeout_after_shopify_accepted_is_adopted_by_the_retry(
    store, rq_worker, quick_retries, monkeypatch
):
    # given Shopify accepting the first returnRequest but the answer never reaching us
    real = returns_shopify.return_request_send
    sent = []

    def lost_answer(*args, **kwargs):
        sent.append(real(*args, **kwargs))
        if len(sent) == 1:
            raise AdminApiUnavailable("read timed out")
        return sent[-1]

    monkeypatch.setattr(returns_shopify, "return_request_send", lost_answer)
    request = submit(store)

    # when the job runs and is retried
    rq_worker()

    # then the retry found the return in Shopify and adopted it: one return, synced
    request.refresh_from_db()
    assert len(sent) == 1
    (only,) = store.order_returns()
    assert request.shopify_return_id == only["id"]
    assert (request.status, request.sync_state) == ("REQUESTED", "synced")
    assert request.line_items.get().shopify_return_line_item_gid


def test_the_webhook_of_a_request_whose_answer_was_lost_attaches_to_it(
    store, client, rq_worker, monkeypatch
):
    # given the send's answer lost (Shopify made the return) and no retry yet
    real = returns_shopify.return_request_send

    def lost_answer(*args, **kwargs):
        real(*args, **kwargs)
        raise AdminApiUnavailable("read timed out")

    monkeypatch.setattr(returns_shopify, "return_request_send", lost_answer)
    request = submit(store)
    with pytest.raises(AdminApiUnavailable):
        services.return_request_send(request_id=request.pk)

    # when Shopify's returns/request arrives
    deliver(store, client, rq_worker, expect={"returns/request"})

    # then it attaches to our request instead of making a second local copy
    (only,) = store.order_returns()
    assert ReturnRequest.objects.filter(shop=store.shop).count() == 1
    request.refresh_from_db()
    assert (request.shopify_return_id, request.status, request.sync_state) == (
        only["id"],
        "REQUESTED",
        "synced",
    )

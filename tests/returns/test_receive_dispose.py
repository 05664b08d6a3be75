"""Marking items received against the devshop over HTTP: the admin's receive form disposes the
units in Shopify (reverseFulfillmentOrderDispose), restocked where they were shipped from or
not restocked; only units Shopify has not disposed yet are sent; a retry after a lost answer
sends nothing twice; the call and its reverse_fulfillment_orders/dispose echo make one
timeline step in either order; Shopify's userErrors and outages change nothing here; two
actions on one return (a double click) run one after the other."""

import threading

import pytest
import redis
from django.conf import settings
from django.db import connection

from devshop.session_tokens import session_token_mint
from returns import services
from returns import shopify as returns_shopify
from returns.models import Resolution, ReturnRequest
from shopapp.admin_api import client as admin_api_client
from shopapp.admin_api.client import AdminApiUnavailable
from shopapp.models import OrderEvent
from tests.returns.flow_support import deliver, store_with_delivered_order

pytestmark = pytest.mark.django_db(transaction=True)

DISPOSITIONS = """
query($id: ID!) { reverseFulfillmentOrder(id: $id) { status
  lineItems(first: 20) { nodes { id totalQuantity
    dispositions { quantity type location { id } } } } } }"""

FULFILLMENT_LOCATIONS = """
query($id: ID!) { order(id: $id) { fulfillments(first: 10) { location { id } } } }"""

REMOVE_FROM_RETURN = """
mutation($id: ID!, $lines: [ReturnLineItemRemoveFromReturnInput!]) {
  removeFromReturn(returnId: $id, returnLineItems: $lines) {
    return { id } userErrors { field message code } } }"""


@pytest.fixture
def store(devshop, capture, rq_worker):
    yield store_with_delivered_order(devshop, capture, rq_worker)
    devshop.client.admin_api_fail_next(0)


@pytest.fixture
def store_with_units(devshop, capture, rq_worker):
    """A store whose order has a line of two units or more: a first receipt of one unit
    leaves some to receive, and an echo counted twice would show. The devshop draws
    quantities at random (1 unit seven times in ten): draw again until one has two."""
    for _attempt in range(20):
        store = store_with_delivered_order(devshop, capture, rq_worker, line_items=3)
        if store.order.line_items.filter(quantity__gte=2).exists():
            return store
    pytest.fail("the devshop drew twenty orders without a line of two units")


def approved_return(store, lines=None) -> ReturnRequest:
    """A refund of every unit of ``lines`` (default: every line), sent and approved."""
    lines = lines or list(store.order.line_items.order_by("pk"))
    request = services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[
            {"line_item_id": li.pk, "quantity": li.quantity, "reason": "SIZE_TOO_SMALL"}
            for li in lines
        ],
        resolution=Resolution.REFUND,
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )
    services.return_request_send(request_id=request.pk)
    request.refresh_from_db()
    return services.return_request_approve(shop=store.shop, request=request, instructions="")


def shopify_dispositions(store, request) -> dict[str, list[tuple[int, str, str | None]]]:
    """{reverse fulfillment order line gid: [(units, type, location gid)]} in the devshop."""
    rfo = store.api.execute(DISPOSITIONS, {"id": request.reverse_fulfillment_order_gid})
    return {
        node["id"]: [
            (d["quantity"], d["type"], (d["location"] or {}).get("id"))
            for d in node["dispositions"]
        ]
        for node in rfo["reverseFulfillmentOrder"]["lineItems"]["nodes"]
    }


def received_steps(store) -> int:
    return OrderEvent.objects.filter(order=store.order, kind="return.received").count()


def receive(store, request, quantities, disposition="RESTOCKED"):
    return services.return_items_receive(
        shop=store.shop, request=request, quantities=quantities, disposition=disposition
    )


def multi_unit_line(request):
    return request.line_items.filter(quantity__gte=2).order_by("pk").first()


def test_receive_in_the_admin_restocks_in_shopify_and_the_return_matches(store, client, rq_worker):
    # given an approved return of both lines
    request = approved_return(store)
    lines = list(request.line_items.order_by("pk"))
    token = session_token_mint(
        shop_domain=store.domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )

    # when the merchant marks every unit received, restocked, in the embedded admin
    response = client.post(
        f"/app/returns/{request.pk}/receive?shop={store.domain}",
        {f"received_{line.pk}": str(line.quantity) for line in lines}
        | {"disposition": "RESTOCKED"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    # then Shopify's reverse fulfillment order holds one RESTOCKED disposition per line, at
    # the location that shipped the order, and is closed (nothing left to dispose)
    # (the action redirects after its POST, and the page it leads to says what was done)
    assert response.status_code == 303
    page = client.get(response["Location"], HTTP_AUTHORIZATION=f"Bearer {token}")
    assert "Items marked as received in Shopify." in page.content.decode()
    fulfillments = store.api.execute(
        FULFILLMENT_LOCATIONS, {"id": f"gid://shopify/Order/{store.order.shopify_id}"}
    )["order"]["fulfillments"]
    (location,) = {f["location"]["id"] for f in fulfillments}
    assert shopify_dispositions(store, request) == {
        line.reverse_fulfillment_order_line_item_gid: [(line.quantity, "RESTOCKED", location)]
        for line in lines
    }
    rfo = store.api.execute(DISPOSITIONS, {"id": request.reverse_fulfillment_order_gid})
    assert rfo["reverseFulfillmentOrder"]["status"] == "CLOSED"
    # and the app's return says the same, with one timeline step
    for line in lines:
        line.refresh_from_db()
        assert line.received_quantity == line.quantity
    request.refresh_from_db()
    assert request.received_at is not None
    assert received_steps(store) == 1
    step = OrderEvent.objects.get(order=store.order, kind="return.received")
    assert step.detail["disposition"] == "RESTOCKED"

    # when Shopify's reverse_fulfillment_orders/dispose echo arrives
    deliver(store, client, rq_worker, expect={"reverse_fulfillment_orders/dispose"})

    # then nothing is counted twice
    for line in lines:
        line.refresh_from_db()
        assert (line.received_quantity, line.dispose_webhook_quantity) == (
            line.quantity,
            line.quantity,
        )
    assert received_steps(store) == 1


def test_receiving_more_later_disposes_only_the_difference(store_with_units, client, rq_worker):
    store = store_with_units
    request = approved_return(store)
    line = multi_unit_line(request)

    # when one unit comes back, restocked, and its echo arrives after the answer
    receive(store, request, {line.pk: 1})
    deliver(store, client, rq_worker, expect={"reverse_fulfillment_orders/dispose"})

    # then Shopify disposed that unit, and the app counts it once
    line.refresh_from_db()
    assert line.received_quantity == 1
    disposed = shopify_dispositions(store, request)[line.reverse_fulfillment_order_line_item_gid]
    assert [d[:2] for d in disposed] == [(1, "RESTOCKED")]
    assert received_steps(store) == 1

    # when the rest comes back damaged: the total received is now every unit
    receive(store, request, {line.pk: line.quantity}, disposition="NOT_RESTOCKED")

    # then only the difference was disposed, not restocked and with no location
    disposed = shopify_dispositions(store, request)[line.reverse_fulfillment_order_line_item_gid]
    assert disposed[0][:2] == (1, "RESTOCKED")
    assert disposed[1] == (line.quantity - 1, "NOT_RESTOCKED", None)
    line.refresh_from_db()
    assert line.received_quantity == line.quantity
    assert received_steps(store) == 2

    # when the merchant sends the same receipt again
    receive(store, request, {line.pk: line.quantity}, disposition="NOT_RESTOCKED")
    deliver(store, client, rq_worker, expect={"reverse_fulfillment_orders/dispose"})

    # then nothing changed anywhere
    assert (
        len(shopify_dispositions(store, request)[line.reverse_fulfillment_order_line_item_gid]) == 2
    )
    line.refresh_from_db()
    assert line.received_quantity == line.quantity
    assert received_steps(store) == 2


def test_the_echo_arriving_before_the_answer_makes_one_step(
    store_with_units, client, rq_worker, monkeypatch
):
    # given Shopify's dispose webhook processed by the app before the call's answer is read
    store = store_with_units
    request = approved_return(store)
    line = multi_unit_line(request)
    real = returns_shopify.reverse_fulfillment_order_dispose_send

    def echo_first(*args, **kwargs):
        answer = real(*args, **kwargs)
        deliver(store, client, rq_worker, expect={"reverse_fulfillment_orders/dispose"})
        return answer

    monkeypatch.setattr(returns_shopify, "reverse_fulfillment_order_dispose_send", echo_first)

    # when one unit is received
    receive(store, request, {line.pk: 1})

    # then it is received once, with one timeline step (the webhook's)
    line.refresh_from_db()
    assert (line.received_quantity, line.dispose_webhook_quantity) == (1, 1)
    assert received_steps(store) == 1
    disposed = shopify_dispositions(store, request)[line.reverse_fulfillment_order_line_item_gid]
    assert [d[:2] for d in disposed] == [(1, "RESTOCKED")]


def test_a_retry_after_a_lost_answer_disposes_nothing_twice(
    store_with_units, client, rq_worker, monkeypatch
):
    # given Shopify disposing the unit but its answer never reaching the app
    store = store_with_units
    request = approved_return(store)
    line = multi_unit_line(request)
    real = returns_shopify.reverse_fulfillment_order_dispose_send
    calls = []

    def lost_answer(*args, **kwargs):
        calls.append(kwargs["dispositions"])
        answer = real(*args, **kwargs)
        if len(calls) == 1:
            raise AdminApiUnavailable("read timed out")
        return answer

    monkeypatch.setattr(returns_shopify, "reverse_fulfillment_order_dispose_send", lost_answer)
    with pytest.raises(services.ReturnShopifyUnavailable):
        receive(store, request, {line.pk: 1})
    line.refresh_from_db()
    assert line.received_quantity == 0
    assert received_steps(store) == 0

    # when the merchant tries again
    receive(store, request, {line.pk: 1})

    # then Shopify was not asked again: it holds the one unit once, and the app matches
    assert len(calls) == 1
    disposed = shopify_dispositions(store, request)[line.reverse_fulfillment_order_line_item_gid]
    assert [d[:2] for d in disposed] == [(1, "RESTOCKED")]
    line.refresh_from_db()
    assert line.received_quantity == 1
    assert received_steps(store) == 1
    # and the echo of the first call adds nothing
    deliver(store, client, rq_worker, expect={"reverse_fulfillment_orders/dispose"})
    line.refresh_from_db()
    assert line.received_quantity == 1
    assert received_steps(store) == 1


def test_more_than_shopify_holds_is_refused_in_shopifys_words_and_changes_nothing(
    store_with_units,
):
    # given a unit taken off the return in Shopify's admin (its returns/update not here yet)
    store = store_with_units
    request = approved_return(store)
    line = multi_unit_line(request)
    answer = store.api.execute(
        REMOVE_FROM_RETURN,
        {
            "id": f"gid://shopify/Return/{request.shopify_return_id}",
            "lines": [{"returnLineItemId": line.shopify_return_line_item_gid, "quantity": 1}],
        },
    )
    assert answer["removeFromReturn"]["userErrors"] == []

    # when the merchant receives every unit the app knows of
    with pytest.raises(services.ReturnActionError) as refused:
        receive(store, request, {line.pk: line.quantity})

    # then Shopify's refusal is shown, named after the item, and nothing changed
    assert not isinstance(refused.value, services.ReturnShopifyUnavailable)
    assert refused.value.message.startswith(f"{line.line_item.title}: ")
    assert "exceeds" in refused.value.message
    assert "Traceback" not in refused.value.message
    line.refresh_from_db()
    request.refresh_from_db()
    assert (line.received_quantity, request.received_at) == (0, None)
    assert received_steps(store) == 0
    assert shopify_dispositions(store, request)[line.reverse_fulfillment_order_line_item_gid] == []


def test_shopify_unreachable_changes_nothing(store, monkeypatch):
    # given an approved return and Shopify answering 503 to every call
    request = approved_return(store)
    line = request.line_items.order_by("pk").first()
    monkeypatch.setattr(admin_api_client, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr(admin_api_client, "BACKOFF_MAX_SECONDS", 0.05)
    store.devshop.client.admin_api_fail_next(50, status=503)

    # when the merchant marks the line received
    with pytest.raises(services.ReturnShopifyUnavailable):
        receive(store, request, {line.pk: line.quantity})

    # then nothing is received, here or in Shopify
    store.devshop.client.admin_api_fail_next(0)
    line.refresh_from_db()
    assert line.received_quantity == 0
    assert received_steps(store) == 0
    assert shopify_dispositions(store, request)[line.reverse_fulfillment_order_line_item_gid] == []


def test_fewer_than_already_received_is_refused_before_shopify(store):
    request = approved_return(store)
    line = request.line_items.order_by("pk").first()
    receive(store, request, {line.pk: line.quantity}, disposition="NOT_RESTOCKED")

    with pytest.raises(services.ReturnActionError) as refused:
        receive(store, request, {line.pk: line.quantity - 1}, disposition="NOT_RESTOCKED")

    assert "already received" in refused.value.message
    line.refresh_from_db()
    assert line.received_quantity == line.quantity
    assert received_steps(store) == 1


# -- one action at a time ------------------------------------------------------------------
# A double click on "Process return" for a partial receipt (1 of 2 units back) would send the
# same unit twice, and Shopify accepts the second as another unit: two refunds.
def _at_once(count: int, action) -> list[object]:
    """Run ``action`` in ``count`` threads released together; results or exceptions."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = action()
        except Exception as exc:  # noqa: BLE001 - the test reads what each click got
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_double_click_on_process_settles_a_partial_receipt_once(store_with_units):
    store = store_with_units
    request = approved_return(store, lines=[store.order.line_items.filter(quantity__gte=2)[0]])
    line = multi_unit_line(request)
    # given one unit of two back
    receive(store, request, {line.pk: 1})

    # when the merchant's two clicks on "Process return" arrive together
    results = _at_once(
        2,
        lambda: services.return_request_process(
            shop=store.shop, request=ReturnRequest.objects.get(pk=request.pk)
        ),
    )

    # then one processed the unit and the other was told there was nothing left
    refused = [r for r in results if isinstance(r, services.ReturnActionError)]
    assert len(refused) == 1, results
    assert refused[0].code == "quantity"
    # and Shopify processed one unit, not two
    state = store.return_state(request.shopify_return_id)
    (shopify_line,) = state["returnLineItems"]["nodes"]
    assert shopify_line["processedQuantity"] == 1
    line.refresh_from_db()
    assert line.processed_quantity == 1


def test_an_action_that_cannot_get_its_turn_changes_nothing(store_with_units, monkeypatch):
    store = store_with_units
    request = approved_return(store)
    line = multi_unit_line(request)
    monkeypatch.setattr(services.common, "ACTION_WAIT_SECONDS", 0.2)
    # given another action holding the return (a slow Shopify call in another process)
    held = redis.Redis.from_url(settings.REDIS_URL).lock(f"returns:action:{request.pk}", timeout=30)
    assert held.acquire(blocking=False)
    try:
        # when the merchant marks a unit received
        with pytest.raises(services.ReturnActionError) as refused:
            receive(store, request, {line.pk: 1})
    finally:
        held.release()

    # then they are asked to try again, and nothing reached Shopify or changed here
    assert refused.value.code == "busy"
    assert "try again" in refused.value.message
    assert all(not d for d in shopify_dispositions(store, request).values())
    line.refresh_from_db()
    assert line.received_quantity == 0
    # and once the other action is done, the same receipt goes through
    receive(store, request, {line.pk: 1})
    line.refresh_from_db()
    assert line.received_quantity == 1

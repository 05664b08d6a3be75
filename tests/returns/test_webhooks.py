"""returns/* webhooks: Shopify is the source of truth, deliveries repeat and arrive out of
order, and returns made in Shopify's admin appear here.

Every return here is made and moved in the devshop (through its Admin API, or the merchant's
actions in its admin), and every webhook is the devshop's own delivery, signed, posted to the
app's /webhooks/ in the order a test chooses and processed by a real RQ worker. The module's
store subscribes each returns topic twice, so every event arrives twice with two webhook ids,
as Shopify may deliver it; where the order of events matters, the devshop's clock is moved a
minute between merchant actions (X-Shopify-Triggered-At has whole seconds).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.defaults import notification_defaults_install
from notifications.models import Message
from returns import services
from returns.models import Resolution, ReturnPolicy, ReturnRequest
from returns.portal import return_id_from_status_token
from shopapp.models import OrderEvent, WebhookEvent
from shopapp.webhooks.handlers import TOPIC_HANDLERS
from shopapp.webhooks.services import webhook_event_sweep
from tests.returns.domain_support import make_shop
from tests.returns.flow_support import DISPOSE
from tests.returns.store_support import REMOVE_FROM_RETURN, REVERSE_DELIVERY, DevshopStore, numeric

pytestmark = pytest.mark.django_db

RETURN_TOPICS = (
    "returns/request",
    "returns/approve",
    "returns/decline",
    "returns/update",
    "returns/cancel",
    "returns/close",
    "returns/reopen",
    "returns/process",
    "reverse_deliveries/attach_deliverable",
    "reverse_fulfillment_orders/dispose",
)
# What the tests below make Shopify send (each subscription costs a devshop call).
SUBSCRIBED = tuple(t for t in RETURN_TOPICS if t not in {"returns/cancel", "returns/process"})
# One order per test that makes a return; shipped is enough (no delivery scans).
POOL_SIZE = 9
TRACKING_NUMBER = "1Z999AA10123456784"


@pytest.fixture(scope="module")
def store(devshop_server, capture, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        store = DevshopStore.open(devshop_server, capture=capture, topics=SUBSCRIBED, copies=2)
        # Shipped, not delivered: the shop lets its shoppers return what is on its way.
        ReturnPolicy.objects.create(shop_id=store.shop_id, allows_return_before_delivery=True)
        store.pool_fill(POOL_SIZE, to=None)
        store.mirror()
    yield store
    with django_db_blocker.unblock():
        store.close()


@pytest.fixture(autouse=True)
def _app_calls_the_devshop(devshop):
    """Every test's Admin API calls go to the devshop (settings are per test)."""


@pytest.fixture
def inbox(store):
    """The module's store, with earlier tests' deliveries forgotten."""
    store.inbox_drain()
    return store


@pytest.fixture
def clock(store):
    """Move the devshop's clock ``seconds`` ahead of real time; back to real time after."""

    def ahead(seconds: float) -> None:
        store.devshop.client.clock_set(offset_seconds=seconds)

    yield ahead
    store.devshop.client.clock_set(speed=1, offset_seconds=0)


@pytest.fixture
def receive(client, rq_worker, django_capture_on_commit_callbacks):
    """POST deliveries to /webhooks/ in the order given (each answered 200), then run the
    jobs their commit enqueued. ``headers`` replace some of the devshop's."""

    def run(*deliveries, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            for delivery in deliveries:
                response = delivery.post(client, **headers)
                assert response.status_code == 200, (delivery.topic, response)
        rq_worker()

    return run


@pytest.fixture
def sweep(rq_worker, django_capture_on_commit_callbacks):
    """The webhook sweep as cron runs it, once RQ's retries are long overdue; then the jobs."""

    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            count = webhook_event_sweep(now=timezone.now() + timedelta(hours=1))
        rq_worker()
        return count

    return run


def of(deliveries, topic):
    """The deliveries of ``topic``, oldest event first."""
    return sorted((d for d in deliveries if d.topic == topic), key=lambda d: d.triggered_at)


def kinds(order):
    return list(
        OrderEvent.objects.filter(order=order, kind__startswith="return.")
        .order_by("id")
        .values_list("kind", flat=True)
    )


def test_every_returns_topic_has_a_handler():
    assert set(TOPIC_HANDLERS) >= set(RETURN_TOPICS)


def test_return_made_in_shopify_admin_is_created_here(inbox, receive):
    # given the shop's default notification sequences
    order = inbox.take()
    notification_defaults_install(shop=inbox.shop())
    (fli, _units), _second = inbox.shipped_lines(order.shopify_id)

    # when a return is made in Shopify, not by the app, and its webhook arrives (twice)
    return_id = inbox.return_request_in_shopify(
        [(fli, 1)], order_id=order.shopify_id, reason="WRONG_ITEM"
    )
    receive(*inbox.inbox_collect({"returns/request": 2}))

    # then it is here once, as Shopify holds it, and the shopper's sequence started once
    request = ReturnRequest.objects.get(shop_id=inbox.shop_id)
    assert request.shopify_return_id == return_id
    assert (request.status, request.sync_state, request.order_id) == (
        "REQUESTED",
        "synced",
        order.pk,
    )
    (sent,) = inbox.return_facts(return_id)["returnLineItems"]["nodes"]
    (line,) = request.line_items.all()
    assert (line.fulfillment_line_item_gid, line.quantity, line.reason) == (fli, 1, "WRONG_ITEM")
    assert line.shopify_return_line_item_gid == sent["id"]
    assert request.name == f"{order.name}-R1"
    (message,) = Message.objects.filter(order=order, trigger="return_requested")
    news = message.snapshot["news"]
    assert (message.subject_key, news["return_id"]) == (f"return:{request.pk}", request.pk)
    # the email links to the return's own signed status page
    token = news["status_url"].rsplit("/returns/", 1)[1]
    assert return_id_from_status_token(token, shop=request.shop) == request.pk


def test_return_for_an_unknown_order_is_retried_until_the_order_is_mirrored(inbox, receive, sweep):
    # given an order the app has not mirrored yet, and a return of it in Shopify
    (order_id,) = inbox.orders_create(1)
    (fli, _units), _second = inbox.shipped_lines(order_id)
    return_id = inbox.return_request_in_shopify([(fli, 1)], order_id=order_id)

    # when its webhook arrives
    receive(*inbox.inbox_collect({"returns/request": 2}))

    # then the job raised, to be retried, and nothing was made
    events = WebhookEvent.objects.filter(shop_id=inbox.shop_id, topic="returns/request")
    assert [(e.status, e.attempts) for e in events] == [("pending", 1), ("pending", 1)]
    assert all(e.last_error.startswith("ReturnOrderMissing") for e in events)
    assert not ReturnRequest.objects.filter(shop_id=inbox.shop_id).exists()

    # when the order reaches the mirror and the events are handed to RQ again
    inbox.mirror()
    assert sweep() == 2

    # then the return is here, once
    (request,) = ReturnRequest.objects.filter(shop_id=inbox.shop_id)
    assert (request.shopify_return_id, request.order.shopify_id) == (return_id, order_id)
    assert [e.status for e in events.all()] == ["processed", "processed"]


def test_repeated_delivery_records_each_step_once(inbox, receive):
    order = inbox.take()
    (fli, _units), _second = inbox.shipped_lines(order.shopify_id)
    return_id = inbox.return_request_in_shopify([(fli, 1)], order_id=order.shopify_id)
    inbox.merchant(return_id, "approve")
    received = inbox.inbox_collect({"returns/request": 2, "returns/approve": 2})
    request_a, request_b = of(received, "returns/request")
    approve_a, approve_b = of(received, "returns/approve")

    # each event twice (two webhook ids), a retry of one delivery (the same webhook id), and
    # the request's second copy arriving after the approval
    receive(request_a, approve_a, approve_b, approve_a, request_b)

    request = ReturnRequest.objects.get(shop_id=inbox.shop_id)
    assert request.status == "OPEN"
    assert kinds(order) == ["return.requested", "return.approved"]
    assert WebhookEvent.objects.filter(shop_id=inbox.shop_id).count() == 4


def test_approve_arriving_after_close_does_not_reopen(inbox, receive, clock):
    # given a return requested, approved a minute later and closed a minute after that
    order = inbox.take()
    (fli, _units), _second = inbox.shipped_lines(order.shopify_id)
    return_id = inbox.return_request_in_shopify([(fli, 1)], order_id=order.shopify_id)
    clock(60)
    inbox.merchant(return_id, "approve")
    clock(120)
    inbox.merchant(return_id, "close")
    received = inbox.inbox_collect({"returns/request": 2, "returns/approve": 2, "returns/close": 2})
    approves, closes = of(received, "returns/approve"), of(received, "returns/close")
    assert approves[-1].triggered_at < closes[0].triggered_at

    # when the close arrives before the approval (the worker takes jobs in arrival order)
    receive(*of(received, "returns/request"), *closes, *approves)

    request = ReturnRequest.objects.get(shop_id=inbox.shop_id)
    assert request.status == "CLOSED"
    assert request.approved_at is None
    assert not OrderEvent.objects.filter(order=order, kind="return.approved").exists()


def test_reopen_after_close_opens_it_again_but_a_stale_one_does_not(inbox, receive, clock):
    # given a return closed, reopened, closed, reopened and closed again in Shopify, a minute
    # between each step
    order = inbox.take()
    (fli, _units), _second = inbox.shipped_lines(order.shopify_id)
    return_id = inbox.return_request_in_shopify([(fli, 1)], order_id=order.shopify_id)
    steps = ["approve", "close", "reopen", "close", "reopen", "close"]
    for minute, action in enumerate(steps, start=1):
        clock(60 * minute)
        inbox.merchant(return_id, action)
    received = inbox.inbox_collect(
        {"returns/request": 2, "returns/approve": 2, "returns/close": 6, "returns/reopen": 4}
    )
    closes, reopens = of(received, "returns/close"), of(received, "returns/reopen")
    first_close, second_close, last_close = closes[0:2], closes[2:4], closes[4:6]
    first_reopen, last_reopen = reopens[0:2], reopens[2:4]

    # when the second close arrives first, then the reopen and the close from before it
    # (the worker takes jobs in arrival order)
    receive(
        *of(received, "returns/request"),
        *of(received, "returns/approve"),
        *second_close,
        *first_reopen,
        *first_close,
    )

    # then those stale ones change nothing
    assert ReturnRequest.objects.get(shop_id=inbox.shop_id).status == "CLOSED"

    # when the last reopen arrives, then the last close
    receive(*last_reopen)
    assert ReturnRequest.objects.get(shop_id=inbox.shop_id).status == "OPEN"
    receive(*last_close)

    assert ReturnRequest.objects.get(shop_id=inbox.shop_id).status == "CLOSED"
    assert kinds(order) == [
        "return.requested",
        "return.approved",
        "return.closed",
        "return.reopened",
        "return.closed",
    ]


def test_decline_stores_shopifys_reason_and_note(inbox, receive):
    order = inbox.take()
    (fli, _units), _second = inbox.shipped_lines(order.shopify_id)
    return_id = inbox.return_request_in_shopify([(fli, 1)], order_id=order.shopify_id)
    note = "As discussed on the phone, the return window ended last week."
    inbox.merchant(return_id, "decline", reason="RETURN_PERIOD_ENDED", note=note)
    received = inbox.inbox_collect({"returns/request": 2, "returns/decline": 2})

    receive(*of(received, "returns/request"), *of(received, "returns/decline"))

    request = ReturnRequest.objects.get(shop_id=inbox.shop_id)
    assert (request.status, request.decline_reason) == ("DECLINED", "RETURN_PERIOD_ENDED")
    assert request.decline_note == note
    assert kinds(order) == ["return.requested", "return.declined"]


def test_webhook_for_our_own_request_waits_for_the_send_job(inbox, receive, sweep):
    # given the shopper's request for the first item, stored and not sent yet
    order = inbox.take()
    shop = inbox.shop()
    first, _ = order.line_items.order_by("shopify_id")
    pending = services.return_request_submit(
        shop=shop,
        order=order,
        items=[(first.pk, 1, "UNWANTED", "", None)],
        resolution=Resolution.REFUND,
        customer_email=order.email,
        customer_id=order.customer_id,
    )
    # and a return of the second item made in Shopify meanwhile
    _first, (second_fli, _units) = inbox.shipped_lines(order.shopify_id)
    theirs = inbox.return_request_in_shopify([(second_fli, 1)], order_id=order.shopify_id)

    # when its webhook arrives
    receive(*inbox.inbox_collect({"returns/request": 2}))

    # then it waits (the job retries) rather than risk a second copy of ours
    assert list(ReturnRequest.objects.filter(shop=shop)) == [pending]
    events = WebhookEvent.objects.filter(shop=shop, topic="returns/request")
    assert all(e.last_error.startswith("ReturnNotYetSynced") for e in events)

    # when our send job has run and the events are retried
    services.return_request_send(request_id=pending.pk)
    sweep()

    # then Shopify's return is here too, apart from ours
    pending.refresh_from_db()
    other = ReturnRequest.objects.exclude(pk=pending.pk).get(shop=shop)
    assert (pending.sync_state, other.shopify_return_id) == ("synced", theirs)
    assert pending.shopify_return_id not in {None, theirs}
    assert other.line_items.get().fulfillment_line_item_gid == second_fli


def test_another_shops_webhook_never_touches_this_return(inbox, receive):
    # given a return here, that Shopify then approved and closed
    order = inbox.take()
    (fli, _units), _second = inbox.shipped_lines(order.shopify_id)
    return_id = inbox.return_request_in_shopify([(fli, 1)], order_id=order.shopify_id)
    receive(*inbox.inbox_collect({"returns/request": 2}))
    inbox.merchant(return_id, "approve")
    inbox.merchant(return_id, "close")
    received = inbox.inbox_collect({"returns/approve": 2, "returns/close": 2})
    other = make_shop("bravo.myshopify.com")

    # when those deliveries reach the app as another shop's (the HMAC covers the body only)
    receive(
        *of(received, "returns/approve"),
        *of(received, "returns/close"),
        **{"X-Shopify-Shop-Domain": other.myshopify_domain},
    )

    # then this shop's return is untouched, and the other shop has none
    mine = ReturnRequest.objects.get(shop_id=inbox.shop_id)
    assert (mine.status, mine.shopify_return_id) == ("REQUESTED", return_id)
    assert not ReturnRequest.objects.filter(shop=other).exists()
    theirs = WebhookEvent.objects.filter(shop=other)
    assert theirs.count() == 4
    assert all(e.last_error.startswith("ReturnOrderMissing") for e in theirs)


def test_topics_without_a_known_return_change_nothing(inbox, receive):
    # given a return of both items in Shopify, approved, with tracking, the first item
    # disposed and the second taken off the return
    order = inbox.take()
    (fli_a, units_a), (fli_b, units_b) = inbox.shipped_lines(order.shopify_id)
    return_id = inbox.return_request_in_shopify(
        [(fli_a, units_a), (fli_b, units_b)], order_id=order.shopify_id
    )
    inbox.merchant(return_id, "approve")
    facts = inbox.return_facts(return_id)
    (rfo,) = facts["reverseFulfillmentOrders"]["nodes"]
    rfo_a = rfo["lineItems"]["nodes"][0]
    line_b = facts["returnLineItems"]["nodes"][1]
    inbox.mutate(
        REVERSE_DELIVERY,
        {"rfo": rfo["id"], "tracking": {"number": TRACKING_NUMBER}},
        "reverseDeliveryCreateWithShipping",
    )
    disposition = {
        "reverseFulfillmentOrderLineItemId": rfo_a["id"],
        "quantity": units_a,
        "dispositionType": "NOT_RESTOCKED",
    }
    inbox.mutate(DISPOSE, {"inputs": [disposition]}, "reverseFulfillmentOrderDispose")
    inbox.mutate(
        REMOVE_FROM_RETURN,
        {"id": facts["id"], "lines": [{"returnLineItemId": line_b["id"], "quantity": units_b}]},
        "removeFromReturn",
    )
    topics = [
        "returns/update",
        "reverse_deliveries/attach_deliverable",
        "reverse_fulfillment_orders/dispose",
    ]
    received = inbox.inbox_collect(dict.fromkeys(topics, 2))

    # when only those webhooks arrive (the app never heard of the return)
    receive(*[d for d in received if d.topic in topics])

    # then they are processed and make nothing
    assert not ReturnRequest.objects.filter(shop_id=inbox.shop_id).exists()
    events = WebhookEvent.objects.filter(shop_id=inbox.shop_id)
    assert sorted(e.topic for e in events) == sorted(topics * 2)
    assert {e.status for e in events} == {"processed"}


def test_label_attached_is_on_the_timeline(inbox, receive):
    order = inbox.take()
    (fli, _units), _second = inbox.shipped_lines(order.shopify_id)
    return_id = inbox.return_request_in_shopify([(fli, 1)], order_id=order.shopify_id)
    receive(*inbox.inbox_collect({"returns/request": 2}))
    inbox.merchant(return_id, "approve")
    (rfo,) = inbox.return_facts(return_id)["reverseFulfillmentOrders"]["nodes"]
    inbox.mutate(
        REVERSE_DELIVERY,
        {"rfo": rfo["id"], "tracking": {"number": TRACKING_NUMBER}},
        "reverseDeliveryCreateWithShipping",
    )
    received = inbox.inbox_collect(
        {"returns/approve": 2, "reverse_deliveries/attach_deliverable": 2}
    )
    attached = of(received, "reverse_deliveries/attach_deliverable")

    receive(*of(received, "returns/approve"), *attached, attached[0])

    (event,) = OrderEvent.objects.filter(order=order, kind="return.label_attached")
    assert event.detail["tracking_number"] == TRACKING_NUMBER
    request = ReturnRequest.objects.get(shop_id=inbox.shop_id)
    assert (request.status, request.return_tracking_number) == ("OPEN", TRACKING_NUMBER)
    assert numeric(request.reverse_delivery_gid) > 0

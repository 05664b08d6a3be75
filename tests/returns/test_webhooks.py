"""returns/* webhooks: Shopify is the source of truth, deliveries repeat and arrive out of
order, and returns made in Shopify's admin appear here."""

import json
from datetime import timedelta
from pathlib import Path

import pytest

from returns import services
from returns.models import ReturnRequest
from shopapp.models import LineItem, OrderEvent
from shopapp.webhooks.handlers import TOPIC_HANDLERS
from tests.returns.domain_support import NOW, make_order, make_shop

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify" / "webhooks"
RETURN_ID = 123134564567890
ORDER_ID = 4783296544821

RETURN_TOPICS = {
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
}


def fixture(topic: str) -> dict:
    name = topic.replace("/", "__")
    if topic == "returns/process":
        name = "returns__approve"
    return json.loads((FIXTURES / f"{name}.json").read_text())


def apply(shop, topic, minutes=0, payload=None):
    return services.return_webhook_apply(
        shop=shop,
        topic=topic,
        payload=payload if payload is not None else fixture(topic),
        triggered_at=NOW + timedelta(minutes=minutes),
    )


@pytest.fixture
def shop():
    return make_shop()


@pytest.fixture
def order(shop):
    return make_order(shop, shopify_id=ORDER_ID)


def test_every_returns_topic_has_a_handler():
    assert set(TOPIC_HANDLERS) >= RETURN_TOPICS


def test_return_made_in_shopify_admin_is_created_here(shop, order, monkeypatch):
    triggered = []
    monkeypatch.setattr(
        "notifications.services.notification_trigger",
        lambda **kw: triggered.append((kw["trigger"], kw["context"])),
    )

    request = apply(shop, "returns/request")

    assert request.shopify_return_id == RETURN_ID
    assert (request.status, request.sync_state, request.order_id) == (
        "REQUESTED",
        "synced",
        order.pk,
    )
    assert triggered == [("return_requested", {"return_id": request.pk})]


def test_return_for_an_unknown_order_raises_so_the_job_retries(shop):
    with pytest.raises(services.ReturnOrderMissing):
        apply(shop, "returns/request")

    assert ReturnRequest.objects.count() == 0


def test_repeated_delivery_records_each_step_once(shop, order):
    apply(shop, "returns/request")
    apply(shop, "returns/approve", minutes=1)
    apply(shop, "returns/approve", minutes=1)
    apply(shop, "returns/request", minutes=2)

    request = ReturnRequest.objects.get()
    assert request.status == "OPEN"
    kinds = list(OrderEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["return.requested", "return.approved"]


def test_approve_arriving_after_close_does_not_reopen(shop, order):
    apply(shop, "returns/request", minutes=0)
    apply(shop, "returns/close", minutes=5)

    apply(shop, "returns/approve", minutes=2)

    request = ReturnRequest.objects.get()
    assert request.status == "CLOSED"
    assert request.approved_at is None
    assert not OrderEvent.objects.filter(kind="return.approved").exists()


def test_reopen_after_close_opens_it_again_but_a_stale_one_does_not(shop, order):
    apply(shop, "returns/request", minutes=0)
    apply(shop, "returns/close", minutes=5)
    apply(shop, "returns/reopen", minutes=3)  # triggered before the close: stale
    assert ReturnRequest.objects.get().status == "CLOSED"

    apply(shop, "returns/reopen", minutes=6)
    apply(shop, "returns/close", minutes=7)

    assert ReturnRequest.objects.get().status == "CLOSED"
    kinds = list(OrderEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["return.requested", "return.closed", "return.reopened", "return.closed"]


def test_decline_stores_shopifys_reason_and_note(shop, order):
    apply(shop, "returns/request")

    apply(shop, "returns/decline", minutes=1)

    request = ReturnRequest.objects.get()
    assert (request.status, request.decline_reason) == ("DECLINED", "RETURN_PERIOD_ENDED")
    assert request.decline_note.startswith("As discussed on the phone")


def test_webhook_for_our_own_request_waits_for_the_send_job(shop, order):
    line = LineItem.objects.filter(order=order).first()
    pending = ReturnRequest.objects.create(shop=shop, order=order, resolution="refund")
    pending.line_items.create(shop=shop, line_item=line, quantity=1, reason="OTHER")

    with pytest.raises(services.ReturnNotYetSynced):
        apply(shop, "returns/request")

    assert ReturnRequest.objects.count() == 1


def test_another_shops_webhook_never_touches_this_return(shop, order):
    apply(shop, "returns/request")
    other = make_shop("bravo.myshopify.com")
    make_order(other, shopify_id=ORDER_ID)

    apply(other, "returns/close", minutes=5)

    mine = ReturnRequest.objects.get(shop=shop)
    theirs = ReturnRequest.objects.get(shop=other)
    assert mine.status == "REQUESTED"
    assert theirs.status == "CLOSED"


def test_topics_without_a_known_return_change_nothing(shop, order):
    assert apply(shop, "returns/update") is None
    assert apply(shop, "reverse_deliveries/attach_deliverable") is None
    assert apply(shop, "reverse_fulfillment_orders/dispose") is None
    assert ReturnRequest.objects.count() == 0


def test_label_attached_is_on_the_timeline(shop, order):
    apply(shop, "returns/request")

    apply(shop, "reverse_deliveries/attach_deliverable", minutes=1)
    apply(shop, "reverse_deliveries/attach_deliverable", minutes=1)

    (event,) = OrderEvent.objects.filter(kind="return.label_attached")
    assert event.detail["tracking_number"] == "123345345"

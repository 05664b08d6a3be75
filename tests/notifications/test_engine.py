"""notification_trigger: which messages a trigger schedules, once, and what it cancels."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.models import Message, NotificationSettings, ShipmentFacts
from notifications.news import Item
from notifications.services import (
    QUEUE_LEASE,
    notification_news_record,
    notification_trigger,
    phone_to_e164,
)
from shopapp.models import OrderEvent
from tests.notifications.engine_support import (
    make_email_template,
    make_order,
    make_sequence,
    make_shop,
    parcel,
    shipped_email_sequence,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York


def _review_sequence(shop):
    make_email_template(shop, "delivered")
    make_email_template(shop, "review_request")
    return make_sequence(
        shop,
        "delivered_review",
        "delivered",
        [
            {"channel": "email", "template_key": "delivered"},
            {
                "channel": "email",
                "template_key": "review_request",
                "delay_minutes": 7 * 24 * 60,
                "delay_from": "previous",
                "conditions": ["not_returned"],
            },
        ],
    )


@time_machine.travel(NOW, tick=False)
def test_shipped_trigger_schedules_one_email_per_step_with_recipient_and_shipment():
    # given
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    # when
    created = notification_trigger(
        shop=shop, order=order, trigger="shipped", news=parcel(777, "shipped")
    )
    # then
    assert len(created) == 1
    message = Message.objects.get()
    # Due now: claimed for the sends queue, its job enqueued when the trigger commits.
    assert message.status == Message.Status.SENDING
    assert (message.lease_expires_at, message.claimed_at) == (NOW + QUEUE_LEASE, None)
    assert message.recipient == "shopper@example.com"
    assert message.subject_key == "shipment:777"
    assert message.channel == "email"
    assert message.due_at == NOW
    # The message keeps the facts it was scheduled on: Shopify's fulfillment id, the parcel.
    assert message.snapshot["news"]["type"] == "shipment"
    assert [s["fulfillment_id"] for s in message.snapshot["shipments"]] == [777]
    assert message.snapshot["shipments"][0]["carrier"] == "UPS"
    event = OrderEvent.objects.get(order=order, kind="notification.scheduled")
    assert event.detail["message_id"] == message.pk
    assert event.detail["template_key"] == "shipped"
    assert event.dedupe_key == f"notification.scheduled:{message.pk}:0"


@time_machine.travel(NOW, tick=False)
def test_delays_count_from_the_trigger_or_the_previous_step():
    # given
    shop = make_shop()
    _review_sequence(shop)
    order = make_order(shop)
    # when
    notification_trigger(shop=shop, order=order, trigger="delivered", news=parcel(1, "delivered"))
    # then
    due = {m.step.template_key: m.due_at for m in Message.objects.select_related("step")}
    assert due == {"delivered": NOW, "review_request": NOW + timedelta(days=7)}


def test_duplicate_trigger_creates_nothing_new():
    # given
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(5, "shipped"))
    # when: Shopify delivers the same news again
    again = notification_trigger(
        shop=shop, order=order, trigger="shipped", news=parcel(5, "shipped")
    )
    # then
    assert again == []
    assert Message.objects.count() == 1
    assert OrderEvent.objects.filter(kind="notification.scheduled").count() == 1


def test_a_second_shipment_of_the_same_order_gets_its_own_message_without_a_window():
    shop = make_shop()
    NotificationSettings.objects.create(shop=shop, combine_shipments_minutes=0)
    shipped_email_sequence(shop)
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(5, "shipped"))
    notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(6, "shipped"))
    assert sorted(Message.objects.values_list("subject_key", flat=True)) == [
        "shipment:5",
        "shipment:6",
    ]


@time_machine.travel(NOW, tick=False)
def test_parcels_shipped_within_the_window_share_one_message_listing_each_parcel():
    # given: an order split into three parcels, shipped a few minutes apart
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    shirt, tote, cap = (Item(title=t, quantity=1) for t in ("Linen shirt", "Canvas tote", "Cap"))
    # when
    first = notification_trigger(
        shop=shop,
        order=order,
        trigger="shipped",
        news=parcel(5, items=(shirt,), is_whole_order=False),
    )
    with time_machine.travel(NOW + timedelta(minutes=4), tick=False):
        notification_trigger(
            shop=shop, order=order, trigger="shipped", news=parcel(6, items=(tote,), carrier="DHL")
        )
        notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(6))
    with time_machine.travel(NOW + timedelta(minutes=11), tick=False):
        late = notification_trigger(
            shop=shop, order=order, trigger="shipped", news=parcel(7, items=(cap,))
        )
    # then: the first parcel waited the shop's window (10 minutes) and the second joined it;
    # a repeat of the second changed nothing; the third, after the window, has its own
    message, third = Message.objects.order_by("id")
    assert [m.pk for m in first] == [message.pk]
    assert [m.pk for m in late] == [third.pk]
    assert message.due_at == NOW + timedelta(minutes=10)
    assert [
        (s["fulfillment_id"], s["carrier"], [i["title"] for i in s["items"]])
        for s in message.snapshot["shipments"]
    ] == [
        (5, "UPS", ["Linen shirt"]),
        (6, "DHL", ["Canvas tote"]),
    ]
    assert [s["fulfillment_id"] for s in third.snapshot["shipments"]] == [7]
    assert third.due_at == NOW + timedelta(minutes=21)


def test_stale_trigger_creates_nothing():
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    created = notification_trigger(
        shop=shop, order=order, trigger="shipped", news=parcel(5, "shipped", is_stale=True)
    )
    assert created == []
    assert not Message.objects.exists()
    assert not OrderEvent.objects.filter(kind__startswith="notification.").exists()


def test_out_of_order_trigger_for_a_delivered_shipment_creates_nothing():
    # given: "delivered" was processed first, the in-transit news arrives late
    shop = make_shop()
    make_email_template(shop, "in_transit")
    make_sequence(shop, "in_transit", "in_transit", [{"template_key": "in_transit"}])
    order = make_order(shop)
    delivered_at = timezone.now()
    notification_news_record(
        shop=shop, order=order, news=parcel(42, "delivered", happened_at=delivered_at)
    )
    # when: a scan from an hour before the delivery
    created = notification_trigger(
        shop=shop,
        order=order,
        trigger="in_transit",
        news=parcel(42, "in_transit", happened_at=delivered_at - timedelta(hours=1)),
    )
    # then: nothing scheduled, and what is known of the parcel did not move back
    assert created == []
    assert not Message.objects.exists()
    assert ShipmentFacts.objects.get(fulfillment_id=42).stage == "delivered"


def test_extra_triggers_start_the_same_sequence():
    shop = make_shop()
    make_email_template(shop, "delivery_issue")
    make_sequence(
        shop,
        "delivery_issue",
        "attempted_delivery",
        [{"template_key": "delivery_issue"}],
        extra_triggers=["problem"],
    )
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="problem", news=parcel(9, "problem"))
    assert Message.objects.get().trigger == "problem"


def test_disabled_sequences_and_steps_schedule_nothing():
    shop = make_shop()
    shipped_email_sequence(shop, is_enabled=False)
    make_email_template(shop, "confirmed")
    make_sequence(
        shop, "confirmed", "order_confirmed", [{"template_key": "confirmed"}], is_enabled=False
    )
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped"))
    notification_trigger(shop=shop, order=order, trigger="order_confirmed")
    assert not Message.objects.exists()


def test_missing_email_is_recorded_as_skipped_with_the_reason():
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop, email="")
    notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped"))
    message = Message.objects.get()
    assert message.status == Message.Status.SKIPPED
    assert message.reason == "no email address on the order"
    assert OrderEvent.objects.filter(order=order, kind="notification.skipped").count() == 1


def test_sms_recipient_is_normalised_to_e164_with_the_shipping_country():
    shop = make_shop()
    make_sequence(shop, "shipped_sms", "shipped", [{"channel": "sms", "template_key": "shipped"}])
    us = make_order(shop, 1001, phone="(212) 555-0123", shipping_country_code="US")
    fr = make_order(shop, 1002, phone="06 12 34 56 78", shipping_country_code="FR")
    bad = make_order(shop, 1003, phone="12", shipping_country_code="US")
    for fulfillment_id, order in enumerate((us, fr, bad), start=1):
        notification_trigger(
            shop=shop, order=order, trigger="shipped", news=parcel(fulfillment_id, "shipped")
        )
    by_order = {m.order_id: m for m in Message.objects.all()}
    assert by_order[us.pk].recipient == "+12125550123"
    assert by_order[fr.pk].recipient == "+33612345678"
    assert by_order[bad.pk].status == Message.Status.SKIPPED
    assert by_order[bad.pk].reason == "phone number is not valid"
    assert phone_to_e164("", region="US") is None


def test_order_cancelled_cancels_every_pending_message_of_that_order_only():
    # given
    shop = make_shop()
    _review_sequence(shop)
    order = make_order(shop, 1001)
    other = make_order(shop, 1002)
    notification_trigger(shop=shop, order=order, trigger="delivered", news=parcel(1, "delivered"))
    notification_trigger(shop=shop, order=other, trigger="delivered", news=parcel(2, "delivered"))
    # when
    order.cancelled_at = timezone.now()
    order.save()
    notification_trigger(shop=shop, order=order, trigger="order_cancelled")
    # then
    assert set(Message.objects.filter(order=order).values_list("status", "reason")) == {
        ("cancelled", "order cancelled")
    }
    # The other order's: the delivered email handed to the queue, the review request waiting.
    assert set(Message.objects.filter(order=other).values_list("status", flat=True)) == {
        "sending",
        "scheduled",
    }
    assert OrderEvent.objects.filter(order=order, kind="notification.cancelled").count() == 2
    # and a shipping trigger arriving after the cancellation schedules nothing
    shipped_email_sequence(shop)
    assert (
        notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped"))
        == []
    )


def test_return_requested_cancels_only_review_requests():
    # given
    shop = make_shop()
    _review_sequence(shop)
    order = make_order(shop)
    with time_machine.travel(NOW, tick=False):
        notification_trigger(
            shop=shop, order=order, trigger="delivered", news=parcel(1, "delivered")
        )
    # when
    notification_trigger(shop=shop, order=order, trigger="return_requested")
    # then
    status = {m.step.template_key: (m.status, m.reason) for m in Message.objects.all()}
    assert status == {
        "delivered": ("sending", ""),
        "review_request": ("cancelled", "a return was started"),
    }


def test_trigger_refuses_an_order_of_another_shop():
    alpha = make_shop("alpha.myshopify.com")
    beta = make_shop("beta.myshopify.com")
    shipped_email_sequence(alpha)
    order = make_order(beta)
    with pytest.raises(ValueError, match="does not belong"):
        notification_trigger(shop=alpha, order=order, trigger="shipped")
    assert not Message.objects.exists()


def test_sequences_of_one_shop_never_schedule_for_another():
    # given: only alpha has a shipped sequence
    alpha = make_shop("alpha.myshopify.com")
    beta = make_shop("beta.myshopify.com")
    shipped_email_sequence(alpha)
    beta_order = make_order(beta)
    # when
    created = notification_trigger(
        shop=beta, order=beta_order, trigger="shipped", news=parcel(3, "shipped")
    )
    # then
    assert created == []
    assert not Message.objects.exists()


def test_unknown_trigger_is_ignored():
    shop = make_shop()
    order = make_order(shop)
    assert notification_trigger(shop=shop, order=order, trigger="teleported") == []

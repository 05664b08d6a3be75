"""notification_trigger: which messages a trigger schedules, once, and what it cancels."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.models import Message
from notifications.services import notification_trigger, phone_to_e164
from shopapp.models import OrderEvent
from tests.notifications.engine_support import (
    make_email_template,
    make_order,
    make_sequence,
    make_shipment,
    make_shop,
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
        shop=shop, order=order, trigger="shipped", context={"shipment_id": 777, "stale": False}
    )
    # then
    assert len(created) == 1
    message = Message.objects.get()
    assert message.status == Message.Status.SCHEDULED
    assert message.recipient == "shopper@example.com"
    assert message.shipment_key == 777
    assert message.channel == "email"
    assert message.due_at == NOW
    assert message.context == {"shipment_id": 777}
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
    notification_trigger(shop=shop, order=order, trigger="delivered", context={"shipment_id": 1})
    # then
    due = {m.step.template_key: m.due_at for m in Message.objects.select_related("step")}
    assert due == {"delivered": NOW, "review_request": NOW + timedelta(days=7)}


def test_duplicate_trigger_creates_nothing_new():
    # given
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="shipped", context={"shipment_id": 5})
    # when: Shopify delivers the same news again
    again = notification_trigger(
        shop=shop, order=order, trigger="shipped", context={"shipment_id": 5}
    )
    # then
    assert again == []
    assert Message.objects.count() == 1
    assert OrderEvent.objects.filter(kind="notification.scheduled").count() == 1


def test_a_second_shipment_of_the_same_order_gets_its_own_message():
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="shipped", context={"shipment_id": 5})
    notification_trigger(shop=shop, order=order, trigger="shipped", context={"shipment_id": 6})
    assert sorted(Message.objects.values_list("shipment_key", flat=True)) == [5, 6]


def test_stale_trigger_creates_nothing():
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    created = notification_trigger(
        shop=shop, order=order, trigger="shipped", context={"shipment_id": 5, "stale": True}
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
    make_shipment(shop, order, 42, stage="delivered", delivered_at=timezone.now())
    # when
    created = notification_trigger(
        shop=shop, order=order, trigger="in_transit", context={"shipment_id": 42}
    )
    # then
    assert created == []
    assert not Message.objects.exists()


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
    notification_trigger(shop=shop, order=order, trigger="problem", context={"shipment_id": 9})
    assert Message.objects.get().trigger == "problem"


def test_disabled_sequences_and_steps_schedule_nothing():
    shop = make_shop()
    shipped_email_sequence(shop, is_enabled=False)
    make_email_template(shop, "confirmed")
    make_sequence(
        shop, "confirmed", "order_confirmed", [{"template_key": "confirmed"}], is_enabled=False
    )
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="shipped", context={"shipment_id": 1})
    notification_trigger(shop=shop, order=order, trigger="order_confirmed")
    assert not Message.objects.exists()


def test_missing_email_is_recorded_as_skipped_with_the_reason():
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop, email="")
    notification_trigger(shop=shop, order=order, trigger="shipped", context={"shipment_id": 1})
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
    for order in (us, fr, bad):
        notification_trigger(shop=shop, order=order, trigger="shipped", context={"shipment_id": 1})
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
    notification_trigger(shop=shop, order=order, trigger="delivered", context={"shipment_id": 1})
    notification_trigger(shop=shop, order=other, trigger="delivered", context={"shipment_id": 2})
    # when
    order.cancelled_at = timezone.now()
    order.save()
    notification_trigger(shop=shop, order=order, trigger="order_cancelled")
    # then
    assert set(Message.objects.filter(order=order).values_list("status", "reason")) == {
        ("cancelled", "order cancelled")
    }
    assert set(Message.objects.filter(order=other).values_list("status", flat=True)) == {
        "scheduled"
    }
    assert OrderEvent.objects.filter(order=order, kind="notification.cancelled").count() == 2
    # and a shipping trigger arriving after the cancellation schedules nothing
    shipped_email_sequence(shop)
    assert (
        notification_trigger(shop=shop, order=order, trigger="shipped", context={"shipment_id": 1})
        == []
    )


def test_return_requested_cancels_only_review_requests():
    # given
    shop = make_shop()
    _review_sequence(shop)
    order = make_order(shop)
    with time_machine.travel(NOW, tick=False):
        notification_trigger(
            shop=shop, order=order, trigger="delivered", context={"shipment_id": 1}
        )
    # when
    notification_trigger(shop=shop, order=order, trigger="return_requested")
    # then
    status = {m.step.template_key: (m.status, m.reason) for m in Message.objects.all()}
    assert status == {
        "delivered": ("scheduled", ""),
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
        shop=beta, order=beta_order, trigger="shipped", context={"shipment_id": 3}
    )
    # then
    assert created == []
    assert not Message.objects.exists()


def test_unknown_trigger_is_ignored():
    shop = make_shop()
    order = make_order(shop)
    assert notification_trigger(shop=shop, order=order, trigger="teleported") == []

"""A message's lines on the order's timeline: scheduled, skipped, cancelled, sent, failed."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from notifications.models import Channel, Message, SequenceStep
from shopapp.models import Order, OrderEvent, Shop
from shopapp.orders.services import order_event_record

_CHANNEL_LABEL = {Channel.EMAIL: "Email", Channel.SMS: "SMS"}


def template_key_of(message: Message) -> str:
    step = getattr(message, "_step_cache", None)
    if step is None:
        step = SequenceStep.objects.filter(pk=message.step_id).only("template_key").first()
    return step.template_key if step else ""


def describe(message: Message, key: str | None = None) -> str:
    """'Email “shipped”' — the channel and the template, as staff read them."""
    label = _CHANNEL_LABEL.get(Channel(message.channel), message.channel)
    return f"{label} “{key if key is not None else template_key_of(message)}”"


def message_timeline_record(
    message: Message, *, kind: str, summary: str, dedupe_key: str | None = None, **detail: Any
) -> OrderEvent | None:
    """One line about ``message`` on its order's timeline; None when ``dedupe_key`` (default:
    one line per message, outcome and attempt) was already recorded."""
    # The sender loaded both with the row: no query then.
    order = message.order if Message.order.is_cached(message) else None
    if order is None or order.pk != message.order_id:
        order = Order.objects.get(pk=message.order_id)
    shop = order.shop if Order.shop.is_cached(order) else None
    if shop is None or shop.pk != message.shop_id:
        shop = Shop.objects.get(pk=message.shop_id)
    return order_event_record(
        shop=shop,
        order=order,
        kind=kind,
        occurred_at=timezone.now(),
        source=OrderEvent.Source.SYSTEM,
        summary=summary,
        detail={
            "message_id": message.pk,
            "channel": message.channel,
            "template_key": template_key_of(message),
            "trigger": message.trigger,
            "subject": message.subject_key,
            # Staff-facing: support needs to see where a message went.
            "recipient": message.recipient,
            **detail,
        },
        # One line per message and outcome; attempts keep a deliberate resend's line apart.
        dedupe_key=dedupe_key or f"{kind}:{message.pk}:{message.attempts}",
    )

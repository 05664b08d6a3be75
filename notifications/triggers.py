"""Triggers: news from tracking, returns and the platform starts or cancels sequences.

    tracking / returns / shopapp subscribers
        ─ notification_trigger(shop, order, trigger, news) ─▶ facts recorded (always)
              stale news, unknown trigger, out of order: nothing scheduled
              each enabled step ─▶ Message (scheduled, due_at, snapshot of the news)
                                   + timeline notification.scheduled / .skipped
              a parcel of an order whose other parcels are news of the same kind within the
              shop's window ─▶ joins that message (MessageShipment) instead of a new one

Idempotent: one message per (order, step, subject), one parcel per (order, step) across
messages; the unique constraints decide, so a repeated or concurrent trigger adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from notifications import facts as facts_store
from notifications.dispatch import messages_hand_over_now
from notifications.models import (
    Message,
    MessageShipment,
    NotificationSettings,
    Sequence,
    SequenceStep,
    Trigger,
)
from notifications.news import (
    DelayNews,
    News,
    OrderNews,
    ProblemNews,
    ReturnNews,
    ShipmentNews,
    news_snapshot,
)
from notifications.recipients import (
    SkipReason,
    merchant_recipient,
    notification_settings_for,
    outside_quiet_hours,
    recipient_for,
    recipient_timezone,
)
from notifications.timeline import describe, message_timeline_record
from shopapp.models import Order, Shop

logger = logging.getLogger(__name__)

# Triggers that still make sense after the order was cancelled.
AFTER_CANCEL_OK = frozenset(
    {
        Trigger.ORDER_CANCELLED,
        Trigger.RETURN_REQUESTED,
        Trigger.RETURN_APPROVED,
        Trigger.RETURN_DECLINED,
        Trigger.RETURN_PROCESSED,
        Trigger.RETURN_CLOSED,
    }
)


def notification_trigger(
    *, shop: Shop, order: Order, trigger: str, news: News | None = None
) -> list[Message]:
    """Start, advance or cancel the sequences that ``trigger`` concerns; returns the messages
    created. ``news`` says what happened (notifications.news); its facts are kept whatever
    the trigger, so later sends know the parcel's or the return's current state."""
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    # One transaction: facts, messages and their timeline lines commit together (and once).
    with transaction.atomic():
        moved = _out_of_order(shop=shop, trigger=trigger, news=news)
        if moved:
            # Older news than what is known, and the parcel has moved on since: keep nothing.
            logger.info(
                "notifications.trigger.out_of_order",
                extra={"shop": shop.myshopify_domain, "trigger": trigger, "stage": moved},
            )
            return []
        _facts_record(shop=shop, order=order, news=news)
        return _trigger(shop=shop, order=order, trigger=trigger, news=news)


def notification_news_record(*, shop: Shop, order: Order, news: News | None) -> None:
    """Keep what notifications knows current, announcing nothing: a stage corrected back, an
    event deleted (the producer's word is final), news that was old when it arrived."""
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    with transaction.atomic():
        _facts_record(shop=shop, order=order, news=news)


def _facts_record(*, shop: Shop, order: Order, news: News | None) -> None:
    for parcel in _parcels(news):
        facts_store.shipment_facts_record(shop=shop, order=order, news=parcel)
    if isinstance(news, ReturnNews):
        facts_store.return_facts_record(shop=shop, order=order, news=news)


def _parcels(news: News | None) -> list[ShipmentNews]:
    if isinstance(news, ShipmentNews):
        return [news]
    if isinstance(news, DelayNews) and news.shipment is not None:
        return [news.shipment]
    return []


def _subject_key(news: News | None) -> str:
    parcels = _parcels(news)
    if parcels:
        return f"shipment:{parcels[0].fulfillment_id}"
    if isinstance(news, ReturnNews):
        return f"return:{news.return_id}"
    if isinstance(news, ProblemNews):
        return f"problem:{news.problem_id}"
    return "order"


def _is_stale(news: News | None) -> bool:
    return any(parcel.is_stale for parcel in _parcels(news))


def _order_shipments_snapshot(*, shop: Shop, news: OrderNews) -> list[dict[str, Any]]:
    known = facts_store.shipment_facts_for(shop=shop, fulfillment_ids=list(news.fulfillment_ids))
    return [known[fid].snapshot for fid in news.fulfillment_ids if fid in known]


def _message_snapshot(*, shop: Shop, news: News | None) -> dict[str, Any]:
    if isinstance(news, OrderNews):
        shipments = _order_shipments_snapshot(shop=shop, news=news)
    else:
        shipments = [news_snapshot(parcel) for parcel in _parcels(news)]
    return {"news": news_snapshot(news), "shipments": shipments}


def _cancellations(*, shop: Shop, order: Order, trigger: str) -> None:
    if trigger == Trigger.ORDER_CANCELLED:
        messages_cancel(shop=shop, order=order, reason=SkipReason.CANCELLED)
    elif trigger == Trigger.RETURN_REQUESTED:
        messages_cancel(
            shop=shop,
            order=order,
            reason=SkipReason.RETURNED,
            condition=SequenceStep.Condition.NOT_RETURNED,
        )


def _out_of_order(*, shop: Shop, trigger: str, news: News | None) -> str | None:
    """The stage a parcel already reached, when ``news`` happened before what is known of it
    and announces an earlier stage (Shopify's webhooks come in no particular order)."""
    parcels = _parcels(news)
    known = facts_store.shipment_facts_for(
        shop=shop, fulfillment_ids=[p.fulfillment_id for p in parcels]
    )
    for parcel in parcels:
        current = known.get(parcel.fulfillment_id)
        if current is None or parcel.happened_at >= current.happened_at:
            continue
        moved = facts_store.stage_moved_past(trigger=trigger, facts=current)
        if moved:
            return moved
    return None


def _trigger(*, shop: Shop, order: Order, trigger: str, news: News | None) -> list[Message]:
    if trigger not in Trigger.values:
        # Tracking reports more than sequences start on (e.g. estimate_changed): fine.
        logger.info("notifications.trigger.no_sequence", extra={"trigger": trigger})
        return []
    log_extra = {"shop": shop.myshopify_domain, "order": order.pk, "trigger": trigger}
    if _is_stale(news):
        # AfterShip-style: news that was already old when it arrived sends nothing.
        logger.info("notifications.trigger.stale", extra=log_extra)
        return []
    _cancellations(shop=shop, order=order, trigger=trigger)
    if order.cancelled_at is not None and trigger not in AFTER_CANCEL_OK:
        logger.info("notifications.trigger.order_cancelled", extra=log_extra)
        return []
    sequences = _sequences_for(shop, trigger)
    if not sequences:
        return []
    plan = _plan(shop=shop, order=order, news=news)
    created: list[Message] = []
    for sequence in sequences:
        created.extend(
            _sequence_schedule(
                shop=shop, order=order, trigger=trigger, news=news, sequence=sequence, plan=plan
            )
        )
    if created:
        # What is due already goes to the sends queue when this transaction commits.
        messages_hand_over_now(messages=created)
        logger.info("notifications.trigger.scheduled", extra={**log_extra, "count": len(created)})
    return created


def _sequences_for(shop: Shop, trigger: str) -> list[Sequence]:
    # Few sequences per shop; JSON "contains" is not portable to SQLite, so filter here.
    return [
        sequence
        for sequence in Sequence.objects.filter(shop=shop, is_enabled=True)
        if sequence.trigger == trigger or trigger in (sequence.extra_triggers or [])
    ]


@dataclass(frozen=True)
class _Plan:
    """What every step of one trigger shares."""

    now: datetime
    settings: NotificationSettings
    zone: ZoneInfo
    locale: str
    subject_key: str
    snapshot: dict[str, Any]
    # Parcel news waits this long for the order's other parcels (None: sent on its own).
    combine_window: timedelta | None
    parcel: ShipmentNews | None


def _plan(*, shop: Shop, order: Order, news: News | None) -> _Plan:
    row = notification_settings_for(shop=shop)
    parcel = news if isinstance(news, ShipmentNews) else None
    window = None
    if parcel is not None and row.combine_shipments_minutes > 0:
        parcels = facts_store.order_parcels_count(shop=shop, order=order)
        alone = parcel.is_whole_order and parcels < 2
        window = None if alone else timedelta(minutes=row.combine_shipments_minutes)
    return _Plan(
        now=timezone.now(),
        settings=row,
        zone=recipient_timezone(shop=shop, order=order),
        locale=(order.locale or shop.primary_locale or "en")[:8],
        subject_key=_subject_key(news),
        snapshot=_message_snapshot(shop=shop, news=news),
        combine_window=window,
        parcel=parcel,
    )


def _sequence_schedule(
    *, shop: Shop, order: Order, trigger: str, news: News | None, sequence: Sequence, plan: _Plan
) -> list[Message]:
    created: list[Message] = []
    previous_due = plan.now
    for step in sequence.steps.filter(is_enabled=True).order_by("position", "id"):
        base = plan.now if step.delay_from == SequenceStep.DelayFrom.TRIGGER else previous_due
        due_at = base + timedelta(minutes=step.delay_minutes)
        if plan.combine_window is not None:
            due_at = max(due_at, plan.now + plan.combine_window)
        if step.audience != SequenceStep.Audience.MERCHANT:
            # The shop's own inbox has no quiet hours: a shopper is waiting for an answer.
            due_at = outside_quiet_hours(
                at=due_at, zone=plan.zone, row=plan.settings, channel=step.channel
            )
        # "After the previous step" counts from when that step really goes out.
        previous_due = due_at
        message = _step_schedule(
            shop=shop, order=order, trigger=trigger, step=step, due_at=due_at, plan=plan
        )
        if message is not None:
            message._step_cache = step  # type: ignore[attr-defined]
            created.append(message)
            _timeline_scheduled(message, step=step, sequence=sequence)
    return created


def _step_schedule(
    *, shop: Shop, order: Order, trigger: str, step: SequenceStep, due_at: datetime, plan: _Plan
) -> Message | None:
    """The new message for one step, or None (already scheduled, or joined another parcel's)."""
    parcel = plan.parcel
    if parcel is not None:
        if MessageShipment.objects.filter(
            order=order, step=step, fulfillment_id=parcel.fulfillment_id
        ).exists():
            return None
        if plan.combine_window is not None and _join(
            shop=shop,
            order=order,
            trigger=trigger,
            step=step,
            parcel=parcel,
            window=plan.combine_window,
            now=plan.now,
        ):
            return None
    locale = plan.locale
    if step.audience == SequenceStep.Audience.MERCHANT:
        recipient, skip = merchant_recipient(shop=shop, channel=step.channel)
        locale = (shop.primary_locale or "en")[:8]
    else:
        recipient, skip = recipient_for(step.channel, order)
    message = _message_create(
        shop=shop,
        order=order,
        step=step,
        subject_key=plan.subject_key,
        trigger=trigger,
        channel=step.channel,
        recipient=recipient,
        locale=locale,
        snapshot=plan.snapshot,
        due_at=due_at,
        status=Message.Status.SKIPPED if skip else Message.Status.SCHEDULED,
        reason=skip or "",
    )
    if message is not None and parcel is not None:
        _parcel_attach(message=message, fulfillment_id=parcel.fulfillment_id)
    return message


def _message_create(**fields: Any) -> Message | None:
    """One row, or None when (order, step, subject) already has one: the constraint decides,
    inside a savepoint so a caller's transaction survives the collision."""
    try:
        with transaction.atomic():
            return Message.objects.create(**fields)
    except IntegrityError:
        exists = Message.objects.filter(
            order=fields["order"], step=fields["step"], subject_key=fields["subject_key"]
        ).exists()
        if exists:
            return None
        raise


def _parcel_attach(*, message: Message, fulfillment_id: int) -> bool:
    try:
        with transaction.atomic():
            MessageShipment.objects.create(
                shop_id=message.shop_id,
                message=message,
                order_id=message.order_id,
                step_id=message.step_id,
                fulfillment_id=fulfillment_id,
            )
    except IntegrityError:
        return False
    return True


def _join(
    *,
    shop: Shop,
    order: Order,
    trigger: str,
    step: SequenceStep,
    parcel: ShipmentNews,
    window: timedelta,
    now: datetime,
) -> bool:
    """Add the parcel to a message of the same step still waiting for the order's parcels."""
    host = (
        Message.objects.select_for_update()
        .filter(
            shop=shop,
            order=order,
            step=step,
            trigger=trigger,
            status=Message.Status.SCHEDULED,
            subject_key__startswith="shipment:",
            created_at__gte=now - window,
        )
        .order_by("id")
        .first()
    )
    if host is None or not _parcel_attach(message=host, fulfillment_id=parcel.fulfillment_id):
        return False
    snapshot = dict(host.snapshot or {})
    snapshot["shipments"] = [*snapshot.get("shipments", []), news_snapshot(parcel)]
    Message.objects.filter(pk=host.pk).update(snapshot=snapshot, updated_at=now)
    logger.info(
        "notifications.trigger.combined",
        extra={"message_id": host.pk, "fulfillment_id": parcel.fulfillment_id},
    )
    return True


def _timeline_scheduled(message: Message, *, step: SequenceStep, sequence: Sequence) -> None:
    if message.status == Message.Status.SKIPPED:
        message_timeline_record(
            message,
            kind="notification.skipped",
            summary=f"{describe(message, step.template_key)} skipped: {message.reason}",
            reason=message.reason,
        )
        return
    message_timeline_record(
        message,
        kind="notification.scheduled",
        summary=f"{describe(message, step.template_key)} scheduled",
        due_at=message.due_at.isoformat(),
        sequence=sequence.key,
    )


def messages_cancel(
    *, shop: Shop, order: Order, reason: str, condition: str | None = None
) -> list[int]:
    """Cancel what is pending for ``order`` (only steps with ``condition`` if given).

    Pending = scheduled, or dispatched but not yet claimed by a worker; a send in progress
    finishes (its own checks at send time see the cancellation). Returns the ids cancelled.
    """
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update()
            .filter(shop=shop, order=order)
            .filter(
                Q(status=Message.Status.SCHEDULED)
                | Q(status=Message.Status.SENDING, claimed_at__isnull=True)
            )
            .select_related("step")
        )
        if condition:
            rows = [m for m in rows if condition in (m.step.conditions or [])]
        ids = [m.pk for m in rows]
        if ids:
            Message.objects.filter(pk__in=ids).update(
                status=Message.Status.CANCELLED,
                reason=reason,
                lease_expires_at=None,
                updated_at=timezone.now(),
            )
        for message in rows:
            message.status = Message.Status.CANCELLED
            message._step_cache = message.step  # type: ignore[attr-defined]
            message_timeline_record(
                message,
                kind="notification.cancelled",
                summary=f"{describe(message, message.step.template_key)} cancelled: {reason}",
                reason=reason,
            )
    if ids:
        logger.info(
            "notifications.cancelled",
            extra={"shop": shop.myshopify_domain, "order": order.pk, "count": len(ids)},
        )
    return ids

"""Notifications' state changes: triggers schedule messages, a cron dispatches them, a job
sends each one exactly once, unsubscribes suppress an address.

    tracking / returns / orders ─ notification_trigger ─▶ Message rows (scheduled, due_at)
                                                          + timeline notification.scheduled
    cron, every minute ─ messages_dispatch_due ─ select_for_update(skip_locked) ─▶
        status sending + queue lease ─(on commit)─▶ RQ message_send_job(message_id)
    message_send ─ claim (attempts+1, send lease) ─ conditions, stale news, suppression,
        quiet hours ─ render ─ mark provider_call_at ─ provider ─ sent / failed / skipped
        transient error ─ RQ Retry with backoff; failure callback: failed when none left

Redis is only the hand-over: a row whose job was lost (Redis flushed, worker killed) keeps
status sending with a lease, and the dispatcher claims it again when the lease expires.

Exactly once, honestly: the unique constraint makes one row per order, step and shipment, and
the claim makes one worker at a time own it. What no database can make atomic is the
provider call and our record of it: SMTP has no idempotency key (neither has Twilio's Messages
API). ``provider_call_at`` is written just before the hand-over, after rendering and after the
SMTP connection is open, so a worker that dies before it provably sent nothing and is resent
silently; one that dies after it may have delivered, and the resend is recorded on the row
(last_error) and the timeline. The email keeps the same Message-ID on every attempt, so a
duplicate is recognisable by receivers.
"""

from __future__ import annotations

import logging
import time as time_module
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.models import (
    Channel,
    Message,
    NotificationSettings,
    Sequence,
    SequenceStep,
    Suppression,
    Trigger,
)
from shopapp.models import Order, OrderEvent, Shop

logger = logging.getLogger(__name__)

# How long a dispatched row may wait in the queue before the dispatcher hands it out again
# (its job was lost with Redis, or the workers are that far behind: a duplicate job is then
# harmless, the claim lets only one of them send).
QUEUE_LEASE = timedelta(minutes=10)
# How long one send attempt owns its row: render + SMTP (EMAIL_TIMEOUT 10 s per operation) or
# Twilio (10 s). Longer than SEND_JOB_TIMEOUT_SECONDS, so RQ kills a stuck job before another
# worker may take the row over.
SEND_LEASE = timedelta(minutes=3)
SEND_JOB_TIMEOUT_SECONDS = 120
# Transient provider errors: five tries over ~45 minutes ride out a greylisting server
# (typically 5-15 min) or a provider incident; NOTIFICATIONS_RETRY_INTERVALS overrides (tests).
RETRY_INTERVALS_SECONDS = [30, 120, 600, 1800]
# Rows claimed per transaction by the dispatcher, and how long one dispatcher run may loop:
# the cron fires every minute, so a run never overlaps the next by much.
DISPATCH_BATCH = 500
DISPATCH_BUDGET_SECONDS = 40.0

SEND_QUEUE = "default"

# News about a shipment that has since moved on. A "shipped" email still helps while the
# parcel travels (it carries the tracking link), but not once it is delivered.
_BEFORE_DELIVERY = {
    Trigger.SHIPPED,
    Trigger.IN_TRANSIT,
    Trigger.OUT_FOR_DELIVERY,
    Trigger.ATTEMPTED_DELIVERY,
    Trigger.READY_FOR_PICKUP,
    Trigger.DELAYED,
    Trigger.PROBLEM,
}
# Triggers that still make sense after the order was cancelled.
_AFTER_CANCEL_OK = {
    Trigger.ORDER_CANCELLED,
    Trigger.RETURN_REQUESTED,
    Trigger.RETURN_APPROVED,
    Trigger.RETURN_DECLINED,
    Trigger.RETURN_PROCESSED,
    Trigger.RETURN_CLOSED,
}
_MAIN_LINE_RANK = {"shipped": 1, "in_transit": 2, "out_for_delivery": 3, "delivered": 4}

DEFAULT_QUIET = {Channel.EMAIL: ("00:00", "00:00"), Channel.SMS: ("21:00", "08:00")}


class SkipReason:
    NO_EMAIL = "no email address on the order"
    NO_PHONE = "no phone number on the order"
    INVALID_PHONE = "phone number is not valid"
    SUPPRESSED = "recipient suppressed"
    SMS_DISABLED = "SMS is not enabled for this shop"
    CANCELLED = "order cancelled"
    RETURNED = "a return was started"
    DELIVERED = "shipment already delivered"
    OUT_FOR_DELIVERY = "shipment already out for delivery"
    NO_MARKETING = "customer does not accept marketing"
    STEP_DISABLED = "sequence or step disabled"
    SHOP_INACTIVE = "shop uninstalled the app"
    REDACTED = "customer data redacted"


# --- recipients and time zones -----------------------------------------------------------

# The recipient's time zone from the shipping address: one zone for most countries, by state
# or province where a country spans several. Unknown places fall back to the shop's zone.
_COUNTRY_ZONE = {
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "LU": "Europe/Luxembourg",
    "AT": "Europe/Vienna",
    "CH": "Europe/Zurich",
    "SE": "Europe/Stockholm",
    "NO": "Europe/Oslo",
    "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki",
    "PL": "Europe/Warsaw",
    "CZ": "Europe/Prague",
    "PT": "Europe/Lisbon",
    "GR": "Europe/Athens",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "SG": "Asia/Singapore",
    "HK": "Asia/Hong_Kong",
    "IN": "Asia/Kolkata",
    "AE": "Asia/Dubai",
    "IL": "Asia/Jerusalem",
    "NZ": "Pacific/Auckland",
    "ZA": "Africa/Johannesburg",
    "PR": "America/Puerto_Rico",
}
_US = {
    **dict.fromkeys(
        [
            "CT",
            "DE",
            "DC",
            "FL",
            "GA",
            "IN",
            "KY",
            "ME",
            "MD",
            "MA",
            "MI",
            "NH",
            "NJ",
            "NY",
            "NC",
            "OH",
            "PA",
            "RI",
            "SC",
            "VT",
            "VA",
            "WV",
        ],
        "America/New_York",
    ),
    **dict.fromkeys(
        [
            "AL",
            "AR",
            "IL",
            "IA",
            "KS",
            "LA",
            "MN",
            "MS",
            "MO",
            "NE",
            "ND",
            "OK",
            "SD",
            "TN",
            "TX",
            "WI",
        ],
        "America/Chicago",
    ),
    **dict.fromkeys(["CO", "MT", "NM", "UT", "WY"], "America/Denver"),
    "ID": "America/Boise",
    "AZ": "America/Phoenix",
    **dict.fromkeys(["CA", "NV", "OR", "WA"], "America/Los_Angeles"),
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
}
_PROVINCE_ZONE = {
    "US": (_US, "America/New_York"),
    "CA": (
        {
            "BC": "America/Vancouver",
            "AB": "America/Edmonton",
            "NT": "America/Edmonton",
            "SK": "America/Regina",
            "MB": "America/Winnipeg",
            "ON": "America/Toronto",
            "QC": "America/Toronto",
            "NB": "America/Halifax",
            "NS": "America/Halifax",
            "PE": "America/Halifax",
            "NL": "America/St_Johns",
            "YT": "America/Whitehorse",
            "NU": "America/Iqaluit",
        },
        "America/Toronto",
    ),
    "AU": (
        {
            "NSW": "Australia/Sydney",
            "ACT": "Australia/Sydney",
            "VIC": "Australia/Melbourne",
            "QLD": "Australia/Brisbane",
            "SA": "Australia/Adelaide",
            "WA": "Australia/Perth",
            "TAS": "Australia/Hobart",
            "NT": "Australia/Darwin",
        },
        "Australia/Sydney",
    ),
    "MX": ({"BCN": "America/Tijuana", "SON": "America/Hermosillo"}, "America/Mexico_City"),
    "BR": ({"AM": "America/Manaus", "AC": "America/Rio_Branco"}, "America/Sao_Paulo"),
}


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def recipient_timezone(*, shop: Shop, order: Order) -> ZoneInfo:
    """The shopper's time zone, from the shipping country and province; else the shop's."""
    country = (order.shipping_country_code or "").upper()
    province = (order.shipping_province_code or "").upper()
    name = None
    if country in _PROVINCE_ZONE:
        table, default = _PROVINCE_ZONE[country]
        # Shopify sends "US-NY" style codes in some payloads and "NY" in others.
        name = table.get(province.split("-")[-1], default)
    elif country in _COUNTRY_ZONE:
        name = _COUNTRY_ZONE[country]
    zone = _zone(name) if name else None
    return zone or _zone(shop.timezone or "UTC") or ZoneInfo("UTC")


def phone_to_e164(phone: str, *, region: str | None) -> str | None:
    """``phone`` in E.164, reading national numbers in the shipping country; None if invalid."""
    if not phone:
        return None
    try:
        parsed = phonenumbers.parse(phone, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _recipient(channel: str, order: Order) -> tuple[str, str | None]:
    """(recipient, skip reason)."""
    if channel == Channel.SMS:
        if not order.phone:
            return "", SkipReason.NO_PHONE
        number = phone_to_e164(order.phone, region=order.shipping_country_code)
        return (number, None) if number else ("", SkipReason.INVALID_PHONE)
    email = (order.email or "").strip().lower()
    return (email, None) if email else ("", SkipReason.NO_EMAIL)


def _address_normalise(channel: str, address: str) -> str:
    return address.strip() if channel == Channel.SMS else address.strip().lower()


# --- quiet hours ---------------------------------------------------------------------------


def notification_settings_for(*, shop: Shop) -> NotificationSettings:
    """The shop's settings row, or unsaved defaults (reading never writes)."""
    row = NotificationSettings.objects.filter(shop=shop).first()
    return row or NotificationSettings(shop=shop)


def _parse_hhmm(value: str) -> time | None:
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        return None


def quiet_hours_end(*, at: datetime, zone: ZoneInfo, start: str, end: str) -> datetime | None:
    """When the quiet hours around ``at`` end (UTC), or None if ``at`` is outside them.

    Wall-clock times in ``zone``: across a DST change the window keeps its local hours, so
    21:00-08:00 in New York is 11 hours long the night clocks fall back (zoneinfo resolves
    the local end time with the offset in force then).
    """
    quiet_start, quiet_end = _parse_hhmm(start), _parse_hhmm(end)
    if quiet_start is None or quiet_end is None or quiet_start == quiet_end:
        return None
    local = at.astimezone(zone)
    now_local = local.time().replace(tzinfo=None)
    if quiet_start < quiet_end:
        if not quiet_start <= now_local < quiet_end:
            return None
        day = local.date()
    elif now_local >= quiet_start:
        day = local.date() + timedelta(days=1)
    elif now_local < quiet_end:
        day = local.date()
    else:
        return None
    return datetime.combine(day, quiet_end, tzinfo=zone).astimezone(UTC)


def _quiet_window(row: NotificationSettings, channel: str) -> tuple[str, str]:
    if channel == Channel.SMS:
        return row.sms_quiet_start, row.sms_quiet_end
    return row.email_quiet_start, row.email_quiet_end


def _outside_quiet_hours(
    *, at: datetime, zone: ZoneInfo, row: NotificationSettings, channel: str
) -> datetime:
    start, end = _quiet_window(row, channel)
    return quiet_hours_end(at=at, zone=zone, start=start, end=end) or at


# --- stale news and conditions ---------------------------------------------------------------


def _shipment_for(shop: Shop, fulfillment_id: int) -> Any | None:
    from tracking.models import Shipment

    if not fulfillment_id:
        return None
    return Shipment.objects.filter(shop=shop, fulfillment_id=fulfillment_id).first()


def _is_delivered(shipment: Any) -> bool:
    return shipment.stage == "delivered" or shipment.delivered_at is not None


def _stale_reason(trigger: str, shipment: Any | None) -> str | None:
    """Why news about ``shipment`` is outdated now, or None while it still holds."""
    if shipment is None:
        return None
    if trigger in _BEFORE_DELIVERY and _is_delivered(shipment):
        return SkipReason.DELIVERED
    if (
        trigger in _MAIN_LINE_RANK
        and _MAIN_LINE_RANK.get(shipment.stage, 0) > _MAIN_LINE_RANK[trigger]
        and trigger != Trigger.SHIPPED
    ):
        return (
            SkipReason.OUT_FOR_DELIVERY
            if shipment.stage == "out_for_delivery"
            else SkipReason.DELIVERED
        )
    return None


def _order_delivered(shop: Shop, order: Order) -> bool:
    from tracking.models import Shipment

    stages = list(Shipment.objects.filter(shop=shop, order=order).values_list("stage", flat=True))
    return bool(stages) and all(stage == "delivered" for stage in stages)


def _order_has_return(shop: Shop, order: Order) -> bool:
    # Returns write "return.*" events on the order's timeline; until the returns engine has
    # its own selector, the timeline is the signal that a return was started.
    return OrderEvent.objects.filter(shop=shop, order=order, kind__startswith="return.").exists()


def _skip_reason_at_send(
    *, message: Message, shop: Shop, order: Order, step: SequenceStep, shipment: Any | None
) -> str | None:
    if not shop.is_active:
        return SkipReason.SHOP_INACTIVE
    if order.redacted_at is not None:
        return SkipReason.REDACTED
    if not step.is_enabled or not step.sequence.is_enabled:
        return SkipReason.STEP_DISABLED
    if order.cancelled_at is not None and message.trigger not in _AFTER_CANCEL_OK:
        return SkipReason.CANCELLED
    stale = _stale_reason(message.trigger, shipment)
    if stale:
        return stale
    for condition in step.conditions or []:
        if condition == SequenceStep.Condition.NOT_CANCELLED and order.cancelled_at is not None:
            return SkipReason.CANCELLED
        if condition == SequenceStep.Condition.ACCEPTS_MARKETING and not (
            order.buyer_accepts_marketing
        ):
            return SkipReason.NO_MARKETING
        if condition == SequenceStep.Condition.NOT_RETURNED and _order_has_return(shop, order):
            return SkipReason.RETURNED
        if condition == SequenceStep.Condition.NOT_DELIVERED and (
            (shipment is not None and _is_delivered(shipment))
            or (shipment is None and _order_delivered(shop, order))
        ):
            return SkipReason.DELIVERED
    if Suppression.objects.filter(
        shop=shop, channel=message.channel, address=message.recipient
    ).exists():
        return SkipReason.SUPPRESSED
    return None


# --- the timeline ---------------------------------------------------------------------------

_CHANNEL_LABEL = {Channel.EMAIL: "Email", Channel.SMS: "SMS"}


def _timeline(message: Message, *, kind: str, summary: str, **detail: Any) -> None:
    # Imported here: shopapp.orders.services calls notification_trigger (import cycle).
    from shopapp.orders.services import order_event_record

    order = Order.objects.get(pk=message.order_id)
    shop = Shop.objects.get(pk=message.shop_id)
    order_event_record(
        shop=shop,
        order=order,
        kind=kind,
        occurred_at=timezone.now(),
        source=OrderEvent.Source.SYSTEM,
        summary=summary,
        detail={
            "message_id": message.pk,
            "channel": message.channel,
            "template_key": _template_key(message),
            "trigger": message.trigger,
            "shipment_id": message.shipment_key or None,
            # Staff-facing: support needs to see where a message went.
            "recipient": message.recipient,
            **detail,
        },
        # One line per message and outcome; attempts keep a deliberate resend's line apart.
        dedupe_key=f"{kind}:{message.pk}:{message.attempts}",
    )


def _template_key(message: Message) -> str:
    step = getattr(message, "_step_cache", None)
    if step is None:
        step = SequenceStep.objects.filter(pk=message.step_id).only("template_key").first()
    return step.template_key if step else ""


def _describe(message: Message, key: str) -> str:
    return f"{_CHANNEL_LABEL.get(message.channel, message.channel)} “{key}”"


# --- triggers ---------------------------------------------------------------------------------


def _sequences_for(shop: Shop, trigger: str) -> list[Sequence]:
    # Few sequences per shop; JSON "contains" is not portable to SQLite, so filter here.
    return [
        sequence
        for sequence in Sequence.objects.filter(shop=shop, is_enabled=True)
        if sequence.trigger == trigger or trigger in (sequence.extra_triggers or [])
    ]


def _message_create(**fields: Any) -> Message | None:
    """One row, or None when (order, step, shipment) already has one: the constraint decides,
    inside a savepoint so a caller's transaction survives the collision."""
    try:
        with transaction.atomic():
            return Message.objects.create(**fields)
    except IntegrityError:
        exists = Message.objects.filter(
            order=fields["order"], step=fields["step"], shipment_key=fields["shipment_key"]
        ).exists()
        if exists:
            return None
        raise


def notification_trigger(
    *, shop: Any, order: Any, trigger: str, context: dict | None = None
) -> list[Message]:
    """Start, advance or cancel the sequences that ``trigger`` concerns.

    ``context``: ``shipment_id`` (the Shopify fulfillment id the news is about), ``stale``
    (the event was old when it arrived: record nothing), ``kind`` (for delays). Idempotent:
    a repeated or out-of-order trigger creates nothing new. Returns the messages created.
    """
    # One transaction: the messages and their timeline lines commit together (and once).
    with transaction.atomic():
        return _trigger(shop=shop, order=order, trigger=trigger, context=context)


def _trigger(*, shop: Any, order: Any, trigger: str, context: dict | None) -> list[Message]:
    context = dict(context or {})
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    if trigger not in Trigger.values:
        # Tracking reports more than sequences can start on (e.g. estimate_changed): fine.
        logger.info("notifications.trigger.no_sequence", extra={"trigger": trigger})
        return []
    log_extra = {"shop": shop.myshopify_domain, "order": order.pk, "trigger": trigger}
    if context.get("stale"):
        # AfterShip-style: news that was already old when it arrived sends nothing.
        logger.info("notifications.trigger.stale", extra=log_extra)
        return []

    if trigger == Trigger.ORDER_CANCELLED:
        messages_cancel(shop=shop, order=order, reason=SkipReason.CANCELLED)
    elif trigger == Trigger.RETURN_REQUESTED:
        messages_cancel(
            shop=shop,
            order=order,
            reason=SkipReason.RETURNED,
            condition=SequenceStep.Condition.NOT_RETURNED,
        )

    if order.cancelled_at is not None and trigger not in _AFTER_CANCEL_OK:
        logger.info("notifications.trigger.order_cancelled", extra=log_extra)
        return []
    shipment_key = int(context.get("shipment_id") or 0)
    shipment = _shipment_for(shop, shipment_key)
    stale = _stale_reason(trigger, shipment)
    if stale:
        # Out of order: the shipment is already further along than this news.
        logger.info("notifications.trigger.out_of_order", extra={**log_extra, "reason": stale})
        return []

    sequences = _sequences_for(shop, trigger)
    if not sequences:
        return []
    now = timezone.now()
    row = notification_settings_for(shop=shop)
    zone = recipient_timezone(shop=shop, order=order)
    locale = (order.locale or shop.primary_locale or "en")[:8]
    stored_context = {k: v for k, v in context.items() if k in {"shipment_id", "kind"}}
    created: list[Message] = []
    for sequence in sequences:
        previous_due = now
        for step in sequence.steps.filter(is_enabled=True).order_by("position", "id"):
            base = now if step.delay_from == SequenceStep.DelayFrom.TRIGGER else previous_due
            due_at = base + timedelta(minutes=step.delay_minutes)
            due_at = _outside_quiet_hours(at=due_at, zone=zone, row=row, channel=step.channel)
            # "After the previous step" counts from when that step really goes out.
            previous_due = due_at
            recipient, skip = _recipient(step.channel, order)
            message = _message_create(
                shop=shop,
                order=order,
                step=step,
                shipment_key=shipment_key,
                trigger=trigger,
                channel=step.channel,
                recipient=recipient,
                locale=locale,
                context=stored_context,
                due_at=due_at,
                status=Message.Status.SKIPPED if skip else Message.Status.SCHEDULED,
                reason=skip or "",
            )
            if message is None:
                continue
            message._step_cache = step  # type: ignore[attr-defined]
            created.append(message)
            if skip:
                _timeline(
                    message,
                    kind="notification.skipped",
                    summary=f"{_describe(message, step.template_key)} skipped: {skip}",
                    reason=skip,
                )
            else:
                _timeline(
                    message,
                    kind="notification.scheduled",
                    summary=f"{_describe(message, step.template_key)} scheduled",
                    due_at=due_at.isoformat(),
                    sequence=sequence.key,
                )
    if created:
        logger.info("notifications.trigger.scheduled", extra={**log_extra, "count": len(created)})
    return created


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
            _timeline(
                message,
                kind="notification.cancelled",
                summary=f"{_describe(message, message.step.template_key)} cancelled: {reason}",
                reason=reason,
            )
    if ids:
        logger.info(
            "notifications.cancelled",
            extra={"shop": shop.myshopify_domain, "order": order.pk, "count": len(ids)},
        )
    return ids


# --- dispatch ---------------------------------------------------------------------------------


def _retry_intervals() -> list[int]:
    return list(getattr(settings, "NOTIFICATIONS_RETRY_INTERVALS", RETRY_INTERVALS_SECONDS))


def messages_enqueue(*, message_ids: list[int]) -> bool:
    """Hand send jobs to RQ. Never raises: with Redis down the rows keep their queue lease and
    the dispatcher hands them out again when it expires."""
    import django_rq
    from rq import Callback, Retry
    from rq.queue import Queue

    from notifications.jobs import message_send_failed, message_send_job

    if not message_ids:
        return True
    intervals = _retry_intervals()
    try:
        queue = django_rq.get_queue(SEND_QUEUE, commit_mode="auto")
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    message_send_job,
                    args=(message_id,),
                    timeout=SEND_JOB_TIMEOUT_SECONDS,
                    retry=Retry(max=len(intervals), interval=intervals),
                    on_failure=Callback(message_send_failed),
                    description=f"message_send_job({message_id})",
                )
                for message_id in message_ids
            ]
        )
    except (redis.RedisError, OSError) as exc:
        logger.warning(
            "notifications.enqueue.redis_unavailable",
            extra={"count": len(message_ids), "error": type(exc).__name__},
        )
        return False
    return True


def messages_dispatch_due(
    *, batch_size: int = DISPATCH_BATCH, budget_seconds: float = DISPATCH_BUDGET_SECONDS
) -> int:
    """Claim due messages and enqueue one send job each; returns how many were handed out.

    Due: scheduled with due_at ≤ now, or sending with an expired lease (its job was lost or
    its worker died). Rows another dispatcher holds are skipped, not waited for.
    """
    started = time_module.monotonic()
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                Message.objects.select_for_update(skip_locked=True)
                .filter(
                    Q(status=Message.Status.SCHEDULED, due_at__lte=now)
                    | Q(status=Message.Status.SENDING, lease_expires_at__lte=now)
                )
                .order_by("due_at", "id")
                .only("id", "status", "claimed_at", "provider_call_at", "attempts", "order_id")[
                    :batch_size
                ]
            )
            ids = [m.pk for m in rows]
            if ids:
                Message.objects.filter(pk__in=ids).update(
                    status=Message.Status.SENDING,
                    lease_expires_at=now + QUEUE_LEASE,
                    claimed_at=None,
                    provider_call_at=None,
                    updated_at=now,
                )
            for message in rows:
                if message.status == Message.Status.SENDING:
                    _note_lost_attempt(message)
            transaction.on_commit(lambda ids=ids: messages_enqueue(message_ids=ids))
        total += len(ids)
        if len(ids) < batch_size or time_module.monotonic() - started > budget_seconds:
            break
    if total:
        logger.info("notifications.dispatch.enqueued", extra={"count": total})
    return total


def _note_lost_attempt(message: Message) -> None:
    """Record why a row in flight is handed out again (called with the row locked)."""
    if message.provider_call_at is not None:
        note = "lease expired; resending (the previous attempt may have reached the provider)"
        Message.objects.filter(pk=message.pk).update(last_error=note)
        _timeline(
            message,
            kind="notification.resending",
            summary="Sending again after a worker stopped mid-send (may arrive twice)",
            reason=note,
        )
        logger.warning(
            "notifications.dispatch.resend_after_handover", extra={"message_id": message.pk}
        )
    elif message.claimed_at is not None:
        Message.objects.filter(pk=message.pk).update(
            last_error="lease expired; resending (the previous attempt never reached the provider)"
        )
        logger.info(
            "notifications.dispatch.resend_before_handover", extra={"message_id": message.pk}
        )
    else:
        Message.objects.filter(pk=message.pk).update(last_error="queued job lost; enqueued again")
        logger.info("notifications.dispatch.requeued", extra={"message_id": message.pk})


# --- send ---------------------------------------------------------------------------------------


class ClaimLost(Exception):
    """The row's lease expired under us and someone else may own it: do not send."""


def _message_claim(*, message_id: int) -> Message | None:
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .select_related("step__sequence")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return None
        is_due_scheduled = message.status == Message.Status.SCHEDULED and message.due_at <= now
        if message.status != Message.Status.SENDING and not is_due_scheduled:
            return None
        lease_live = message.lease_expires_at is not None and message.lease_expires_at > now
        if message.claimed_at is not None and lease_live:
            # Another worker is on it (a duplicate job): leave it.
            return None
        if message.claimed_at is not None:
            # Its worker died and nobody re-dispatched it yet: same note as the dispatcher's.
            _note_lost_attempt(message)
            message.refresh_from_db(fields=["last_error"])
        message.status = Message.Status.SENDING
        message.claimed_at = now
        message.provider_call_at = None
        message.lease_expires_at = now + SEND_LEASE
        message.attempts += 1
        message.save(
            update_fields=[
                "status",
                "claimed_at",
                "provider_call_at",
                "lease_expires_at",
                "attempts",
                "updated_at",
            ]
        )
    return message


def _finish(message: Message, *, status: str, **fields: Any) -> bool:
    """Record an outcome, only while our claim holds. Returns whether it was recorded."""
    now = timezone.now()
    updated = Message.objects.filter(
        pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at
    ).update(
        status=status,
        claimed_at=None,
        provider_call_at=None,
        lease_expires_at=None,
        updated_at=now,
        **fields,
    )
    if not updated:
        logger.warning("notifications.send.claim_lost", extra={"message_id": message.pk})
        return False
    message.status = status
    return True


def _skip(message: Message, reason: str) -> str:
    with transaction.atomic():
        if not _finish(message, status=Message.Status.SKIPPED, reason=reason):
            return "not_claimed"
        _timeline(
            message,
            kind="notification.skipped",
            summary=f"{_describe(message, message.step.template_key)} skipped: {reason}",
            reason=reason,
        )
    logger.info(
        "notifications.send.skipped",
        extra={"message_id": message.pk, "channel": message.channel, "reason": reason},
    )
    return "skipped"


def _fail(message: Message, reason: str, error: str) -> str:
    with transaction.atomic():
        if not _finish(
            message, status=Message.Status.FAILED, reason=reason[:255], last_error=error
        ):
            return "not_claimed"
        _timeline(
            message,
            kind="notification.failed",
            summary=f"{_describe(message, message.step.template_key)} failed: {reason}"[:255],
            reason=reason,
            error=error,
        )
    logger.warning(
        "notifications.send.failed",
        extra={"message_id": message.pk, "channel": message.channel, "error": error},
    )
    return "failed"


def _defer(message: Message, until: datetime) -> str:
    """Quiet hours began after the row was scheduled: put it back until they end."""
    updated = Message.objects.filter(
        pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at
    ).update(
        status=Message.Status.SCHEDULED,
        due_at=until,
        claimed_at=None,
        provider_call_at=None,
        lease_expires_at=None,
        # The attempt never reached a provider: it does not count.
        attempts=F("attempts") - 1,
        updated_at=timezone.now(),
    )
    if updated:
        logger.info(
            "notifications.send.quiet_hours",
            extra={
                "message_id": message.pk,
                "channel": message.channel,
                "until": until.isoformat(),
            },
        )
    return "deferred"


def message_send(*, message_id: int) -> str:
    """Send one message if it is still due and wanted. Returns the outcome: sent, skipped,
    failed, deferred or not_claimed. Raises TransientSendError for RQ to retry."""
    from notifications.channels import (
        EmailToSend,
        PermanentSendError,
        SmsToSend,
        TransientSendError,
        email_message_id,
        email_send,
        sms_body_fit,
        sms_send,
    )
    from notifications.context import message_context_build
    from notifications.rendering import TemplateRenderError, template_render
    from shopapp.auth.tokens import token_decrypt

    message = _message_claim(message_id=message_id)
    if message is None:
        logger.info("notifications.send.not_claimed", extra={"message_id": message_id})
        return "not_claimed"
    step = message.step
    message._step_cache = step  # type: ignore[attr-defined]
    order = Order.objects.select_related("shop").get(pk=message.order_id)
    shop = order.shop
    shipment = _shipment_for(shop, message.shipment_key)

    reason = _skip_reason_at_send(
        message=message, shop=shop, order=order, step=step, shipment=shipment
    )
    row = notification_settings_for(shop=shop)
    if (
        reason is None
        and message.channel == Channel.SMS
        and not (
            row.is_sms_enabled
            and row.twilio_account_sid
            and row.twilio_auth_token_encrypted
            and row.twilio_from_number
        )
    ):
        reason = SkipReason.SMS_DISABLED
    if reason:
        return _skip(message, reason)

    zone = recipient_timezone(shop=shop, order=order)
    start, end = _quiet_window(row, message.channel)
    quiet_end = quiet_hours_end(at=timezone.now(), zone=zone, start=start, end=end)
    if quiet_end is not None:
        return _defer(message, quiet_end)

    context = message_context_build(
        shop=shop,
        order=order,
        shipment=shipment,
        channel=message.channel,
        recipient=message.recipient,
        zone=zone,
    )
    try:
        rendered = template_render(
            shop=shop,
            key=step.template_key,
            channel=message.channel,
            locale=message.locale,
            context=context,
        )
    except TemplateRenderError as exc:
        return _fail(message, f"template error: {exc}", "template_error")

    def before_handover() -> None:
        # Committed on its own (autocommit): from here the provider may have the message.
        marked = Message.objects.filter(
            pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at
        ).update(provider_call_at=timezone.now())
        if not marked:
            raise ClaimLost()

    log_extra = {
        "message_id": message.pk,
        "shop": shop.myshopify_domain,
        "channel": message.channel,
    }
    try:
        if message.channel == Channel.SMS:
            provider_id = sms_send(
                SmsToSend(
                    to=message.recipient,
                    body=sms_body_fit(rendered.body),
                    account_sid=row.twilio_account_sid,
                    auth_token=token_decrypt(encrypted=row.twilio_auth_token_encrypted),
                    from_number=row.twilio_from_number,
                ),
                before_handover=before_handover,
            )
        else:
            provider_id = email_send(
                EmailToSend(
                    to=message.recipient,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    from_name=row.sender_name or shop.name or shop.myshopify_domain,
                    reply_to=row.reply_to or shop.email,
                    message_id=email_message_id(message.pk),
                    unsubscribe_url=context["unsubscribe_url"],
                ),
                before_handover=before_handover,
            )
    except ClaimLost:
        logger.warning("notifications.send.claim_lost", extra=log_extra)
        return "not_claimed"
    except PermanentSendError as exc:
        if exc.suppress:
            suppression_add(
                shop=shop, channel=message.channel, address=message.recipient, reason=exc.suppress
            )
        if exc.suppress == Suppression.Reason.UNSUBSCRIBED:
            return _skip(message, f"recipient unsubscribed at the provider ({exc.code})")
        return _fail(message, f"{exc} (not retried)", exc.code)
    except TransientSendError as exc:
        # Give the row back for RQ's retry; the failure callback extends the lease to cover the
        # retry's wait, or marks the row failed when no retry is left.
        Message.objects.filter(
            pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at
        ).update(
            claimed_at=None,
            # A 4xx answer means the provider refused it; a dropped connection mid-send may not.
            provider_call_at=timezone.now() if exc.maybe_delivered else None,
            last_error=f"{exc.code}: {exc}"[:1000],
            lease_expires_at=timezone.now() + QUEUE_LEASE,
            updated_at=timezone.now(),
        )
        logger.info("notifications.send.transient_error", extra={**log_extra, "error": exc.code})
        raise
    with transaction.atomic():
        if not _finish(
            message,
            status=Message.Status.SENT,
            provider_message_id=provider_id[:255],
            sent_at=timezone.now(),
            reason="",
        ):
            return "not_claimed"
        _timeline(
            message,
            kind="notification.sent",
            summary=f"{_describe(message, step.template_key)} sent to {message.recipient}"[:255],
            provider_message_id=provider_id,
        )
    logger.info("notifications.send.sent", extra={**log_extra, "attempts": message.attempts})
    return "sent"


def message_send_attempt_failed(
    *, message_id: int, retries_left: int, retry_in_s: float | None, error: str
) -> None:
    """After a send job raised: keep the row for the retry, or mark it failed for good."""
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .select_related("step")
            .filter(pk=message_id, status=Message.Status.SENDING)
            .first()
        )
        if message is None:
            return
        if retries_left > 0:
            # The dispatcher must not hand it out while RQ's retry is waiting to run.
            Message.objects.filter(pk=message.pk).update(
                claimed_at=None,
                lease_expires_at=now + timedelta(seconds=retry_in_s or 0) + QUEUE_LEASE,
                updated_at=now,
            )
            return
        message._step_cache = message.step  # type: ignore[attr-defined]
        reason = f"gave up after {message.attempts} attempts: {message.last_error or error}"
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.FAILED,
            reason=reason[:255],
            claimed_at=None,
            provider_call_at=None,
            lease_expires_at=None,
            updated_at=now,
        )
        message.status = Message.Status.FAILED
        _timeline(
            message,
            kind="notification.failed",
            summary=f"{_describe(message, message.step.template_key)} failed: {reason}"[:255],
            reason=reason,
        )
    logger.warning("notifications.send.gave_up", extra={"message_id": message_id, "error": error})


def message_resend(*, shop: Shop, message_id: int) -> Message:
    """Staff asked to send a message again (from the message log): due now, same row, the
    dispatcher picks it up within a minute. A message being sent cannot be resent."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(shop=shop, pk=message_id)
        if message.status in {Message.Status.SENDING, Message.Status.SCHEDULED}:
            raise ValueError("message is already on its way")
        message.status = Message.Status.SCHEDULED
        message.due_at = timezone.now()
        message.reason = ""
        message.claimed_at = None
        message.provider_call_at = None
        message.lease_expires_at = None
        message.save(
            update_fields=[
                "status",
                "due_at",
                "reason",
                "claimed_at",
                "provider_call_at",
                "lease_expires_at",
                "updated_at",
            ]
        )
    return message


# --- suppressions -------------------------------------------------------------------------------


def suppression_add(*, shop: Shop, channel: str, address: str, reason: str) -> Suppression:
    """Record that ``address`` must not be messaged on ``channel``; idempotent (the first
    reason stays). Scheduled messages to it are skipped at send time."""
    address = _address_normalise(channel, address)
    try:
        with transaction.atomic():
            suppression, created = Suppression.objects.get_or_create(
                shop=shop, channel=channel, address=address, defaults={"reason": reason}
            )
    except IntegrityError:
        suppression = Suppression.objects.get(shop=shop, channel=channel, address=address)
        created = False
    if created:
        logger.info(
            "notifications.suppression.added",
            extra={"shop": shop.myshopify_domain, "channel": channel, "reason": reason},
        )
    return suppression

"""Sending one message, exactly once as far as a provider allows.

    message_send ─ claim (attempts+1, send lease) ─ still wanted? (shop, order, step, the
        parcels' latest facts, conditions, suppression) ─ quiet hours ─ render from the
        snapshot, refreshed with the latest facts ─ mark provider_call_at ─ provider ─
        sent / failed / skipped; transient error ─ RQ retries; failure callback: failed when
        none left

Exactly once, honestly: the unique constraint makes one row per order, step and subject, and
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
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from notifications import facts as facts_store
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
from notifications.dispatch import QUEUE_LEASE, SEND_LEASE, note_lost_attempt
from notifications.models import (
    Channel,
    Message,
    NotificationSettings,
    SequenceStep,
    Suppression,
)
from notifications.recipients import (
    SkipReason,
    address_normalise,
    notification_settings_for,
    quiet_hours_end,
    quiet_window,
    recipient_timezone,
)
from notifications.rendering import Rendered, TemplateRenderError, template_render
from notifications.reviews import REVIEW_TEMPLATE_KEY
from notifications.timeline import describe, message_timeline_record
from notifications.triggers import AFTER_CANCEL_OK
from shopapp.auth.tokens import token_decrypt
from shopapp.models import Order, Shop

logger = logging.getLogger(__name__)


class ClaimLost(Exception):
    """The row's lease expired under us and someone else may own it: do not send."""


def _message_claim(*, message_id: int) -> Message | None:
    now = timezone.now()
    with transaction.atomic():
        # The step, order, shop and the shop's settings come with the row (one query, only the
        # message row locked): a send reads them all.
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("step__sequence", "order__shop__notification_settings")
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
            note_lost_attempt(message)
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
        message_timeline_record(
            message,
            kind="notification.skipped",
            summary=f"{describe(message, message.step.template_key)} skipped: {reason}",
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
        message_timeline_record(
            message,
            kind="notification.failed",
            summary=f"{describe(message, message.step.template_key)} failed: {reason}"[:255],
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


# --- is it still wanted? --------------------------------------------------------------------


def _message_parcels(message: Message) -> list[int]:
    return [int(s["fulfillment_id"]) for s in (message.snapshot or {}).get("shipments", []) if s]


def _live_parcels(message: Message, shop: Shop) -> tuple[list[dict[str, Any]], str | None]:
    """The message's parcels whose news still holds, with their latest facts (the stage the
    message was about kept), and why none is left when that is so."""
    shipments = list((message.snapshot or {}).get("shipments", []))
    known = facts_store.shipment_facts_for(shop=shop, fulfillment_ids=_message_parcels(message))
    live, reason = [], None
    for original in shipments:
        current = known.get(int(original["fulfillment_id"]))
        if current is None:
            live.append(original)
            continue
        moved = facts_store.stage_moved_past(trigger=message.trigger, facts=current)
        if moved:
            reason = (
                SkipReason.OUT_FOR_DELIVERY if moved == "out_for_delivery" else SkipReason.DELIVERED
            )
            continue
        live.append({**current.snapshot, "stage": original.get("stage", current.stage)})
    return live, (reason if shipments and not live else None)


def _condition_fails(
    condition: str, *, shop: Shop, order: Order, parcels: list[dict[str, Any]], has_parcels: bool
) -> str | None:
    cond = SequenceStep.Condition
    if condition == cond.NOT_CANCELLED and order.cancelled_at is not None:
        return SkipReason.CANCELLED
    if condition == cond.ACCEPTS_MARKETING and not order.buyer_accepts_marketing:
        return SkipReason.NO_MARKETING
    if condition == cond.NOT_RETURNED and facts_store.order_return_started(shop=shop, order=order):
        return SkipReason.RETURNED
    if condition == cond.NOT_DELIVERED:
        delivered = (
            all(p.get("stage") == "delivered" or p.get("delivered_at") for p in parcels)
            if has_parcels
            else facts_store.order_all_delivered(shop=shop, order=order)
        )
        if delivered:
            return SkipReason.DELIVERED
    return None


def _skip_reason_at_send(
    *, message: Message, shop: Shop, order: Order, step: SequenceStep
) -> tuple[str | None, list[dict[str, Any]]]:
    if not shop.is_active:
        return SkipReason.SHOP_INACTIVE, []
    if order.redacted_at is not None:
        return SkipReason.REDACTED, []
    if not step.is_enabled or not step.sequence.is_enabled:
        return SkipReason.STEP_DISABLED, []
    if order.cancelled_at is not None and message.trigger not in AFTER_CANCEL_OK:
        return SkipReason.CANCELLED, []
    parcels, stale = _live_parcels(message, shop)
    if stale:
        return stale, parcels
    has_parcels = bool(_message_parcels(message))
    for condition in step.conditions or []:
        reason = _condition_fails(
            condition, shop=shop, order=order, parcels=parcels, has_parcels=has_parcels
        )
        if reason:
            return reason, parcels
    if Suppression.objects.filter(
        shop=shop, channel=message.channel, address=message.recipient
    ).exists():
        return SkipReason.SUPPRESSED, parcels
    return None, parcels


def _sms_configured(row: NotificationSettings) -> bool:
    return bool(
        row.is_sms_enabled
        and row.twilio_account_sid
        and row.twilio_auth_token_encrypted
        and row.twilio_from_number
    )


# --- the send -------------------------------------------------------------------------------


def message_send(*, message_id: int) -> str:
    """Send one message if it is still due and wanted. Returns the outcome: sent, skipped,
    failed, deferred or not_claimed. Raises TransientSendError for RQ to retry."""
    message = _message_claim(message_id=message_id)
    if message is None:
        logger.info("notifications.send.not_claimed", extra={"message_id": message_id})
        return "not_claimed"
    step = message.step
    message._step_cache = step  # type: ignore[attr-defined]
    order = message.order
    shop = order.shop
    row = notification_settings_for(shop=shop)

    reason, parcels = _skip_reason_at_send(message=message, shop=shop, order=order, step=step)
    if reason is None and message.channel == Channel.SMS and not _sms_configured(row):
        reason = SkipReason.SMS_DISABLED
    if reason:
        return _skip(message, reason)

    zone = recipient_timezone(shop=shop, order=order)
    is_for_merchant = step.audience == SequenceStep.Audience.MERCHANT
    start, end = quiet_window(row, message.channel)
    quiet_end = quiet_hours_end(at=timezone.now(), zone=zone, start=start, end=end)
    if quiet_end is not None and not is_for_merchant:
        return _defer(message, quiet_end)

    snapshot = {**(message.snapshot or {}), "shipments": parcels}
    context = message_context_build(
        shop=shop,
        order=order,
        snapshot=snapshot,
        channel=message.channel,
        recipient=message.recipient,
        zone=zone,
        language=(message.locale or "en").split("-", 1)[0].lower(),
        review_message_id=message.pk if step.template_key == REVIEW_TEMPLATE_KEY else None,
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
    # The facts the shopper reads are the facts the row keeps (written with the handover mark).
    message.snapshot = snapshot
    return _provider_send(message, shop=shop, row=row, rendered=rendered, context=context)


def _provider_call(
    message: Message,
    *,
    shop: Shop,
    row: NotificationSettings,
    rendered: Rendered,
    context: dict[str, Any],
) -> str:
    def before_handover() -> None:
        # Committed on its own (autocommit): from here the provider may have the message.
        marked = Message.objects.filter(
            pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at
        ).update(provider_call_at=timezone.now(), snapshot=message.snapshot)
        if not marked:
            raise ClaimLost()

    if message.channel == Channel.SMS:
        return sms_send(
            SmsToSend(
                to=message.recipient,
                body=sms_body_fit(rendered.body),
                account_sid=row.twilio_account_sid,
                auth_token=token_decrypt(encrypted=row.twilio_auth_token_encrypted),
                from_number=row.twilio_from_number,
            ),
            before_handover=before_handover,
        )
    return email_send(
        EmailToSend(
            to=message.recipient,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            from_name=row.sender_name or shop.name or shop.myshopify_domain,
            # The merchant answers the shopper by replying to an alert about their order.
            reply_to=(
                (message.order.email or "")
                if message.step.audience == SequenceStep.Audience.MERCHANT
                else row.reply_to or shop.email
            ),
            message_id=email_message_id(message.pk),
            unsubscribe_url=context["unsubscribe_url"],
        ),
        before_handover=before_handover,
    )


def _provider_send(
    message: Message,
    *,
    shop: Shop,
    row: NotificationSettings,
    rendered: Rendered,
    context: dict[str, Any],
) -> str:
    log_extra = {
        "message_id": message.pk,
        "shop": shop.myshopify_domain,
        "channel": message.channel,
    }
    try:
        provider_id = _provider_call(
            message, shop=shop, row=row, rendered=rendered, context=context
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
        message_timeline_record(
            message,
            kind="notification.sent",
            summary=f"{describe(message, message.step.template_key)} sent to {message.recipient}"[
                :255
            ],
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
        message_timeline_record(
            message,
            kind="notification.failed",
            summary=f"{describe(message, message.step.template_key)} failed: {reason}"[:255],
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


def suppression_add(*, shop: Shop, channel: str, address: str, reason: str) -> Suppression:
    """Record that ``address`` must not be messaged on ``channel``; idempotent (the first
    reason stays). Scheduled messages to it are skipped at send time."""
    address = address_normalise(channel, address)
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

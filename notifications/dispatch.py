"""The dispatcher: due messages are claimed in the database and handed to RQ.

    cron, every minute ─ messages_dispatch_due ─ select_for_update(skip_locked) ─▶
        status sending + queue lease ─(on commit)─▶ rq_enqueue(message_send_job(message_id))

Redis is only the hand-over: a row whose job was lost (Redis flushed, worker killed) keeps
status sending with a lease, and the dispatcher claims it again when the lease expires. The
message rows are the schedule; this is their sweep (shopapp.background).
"""

from __future__ import annotations

import functools
import logging
import time as time_module
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.models import Message
from notifications.timeline import message_timeline_record
from shopapp.background.queue import JobSpec, Queues, rq_enqueue

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

SEND_QUEUE = Queues.SENDS


def retry_intervals() -> list[int]:
    return list(getattr(settings, "NOTIFICATIONS_RETRY_INTERVALS", RETRY_INTERVALS_SECONDS))


def messages_enqueue(*, message_ids: list[int]) -> bool:
    """Hand send jobs to RQ. Never raises: with Redis down the rows keep their queue lease and
    the dispatcher hands them out again when it expires."""
    from notifications.jobs import message_send_failed, message_send_job

    intervals = tuple(retry_intervals())
    return rq_enqueue(
        [
            JobSpec(
                func=message_send_job,
                args=(message_id,),
                queue=SEND_QUEUE,
                timeout_s=SEND_JOB_TIMEOUT_SECONDS,
                retry_intervals_s=intervals,
                on_failure=message_send_failed,
                description=f"message_send_job({message_id})",
            )
            for message_id in message_ids
        ]
    )


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
                .only(
                    "id",
                    "status",
                    "claimed_at",
                    "provider_call_at",
                    "attempts",
                    "order_id",
                    "shop_id",
                    "step_id",
                    "channel",
                    "trigger",
                    "subject_key",
                    "recipient",
                )[:batch_size]
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
                    note_lost_attempt(message)
            transaction.on_commit(functools.partial(messages_enqueue, message_ids=ids))
        total += len(ids)
        if len(ids) < batch_size or time_module.monotonic() - started > budget_seconds:
            break
    if total:
        logger.info("notifications.dispatch.enqueued", extra={"count": total})
    return total


def note_lost_attempt(message: Message) -> None:
    """Record why a row in flight is handed out again (called with the row locked)."""
    if message.provider_call_at is not None:
        note = "lease expired; resending (the previous attempt may have reached the provider)"
        Message.objects.filter(pk=message.pk).update(last_error=note)
        message_timeline_record(
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

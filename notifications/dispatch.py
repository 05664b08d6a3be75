"""Due messages are claimed in the database and handed to RQ, at once or by the dispatcher.

    trigger (its transaction) ─ messages_hand_over_now ─ due now: status sending + queue lease
        └─(on commit)─▶ rq_enqueue(message_send_job(message_id))
                        Redis refused: the lease is released (scheduled again), and the next
                        dispatcher pass hands it out
    cron, every minute ─ messages_dispatch_due ─ select_for_update(skip_locked) ─▶
        status sending + queue lease ─(on commit)─▶ rq_enqueue(message_send_job(message_id))

A message due when it is scheduled goes to the sends queue when its trigger commits, without
waiting for a dispatcher pass (a burst of triggers is sent as fast as the workers go, not a
minute's batch at a time); messages due later wait for the pass that finds them due.

Redis is only the hand-over: a row whose job was lost (Redis flushed, worker killed) keeps
status sending with a lease, and the dispatcher claims it again when the lease expires. The
message rows are the schedule; this is their sweep (shopapp.background).
"""

from __future__ import annotations

import functools
import logging
import time as time_module
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
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


def messages_hand_over_now(*, messages: list[Message]) -> list[int]:
    """Claim the messages among ``messages`` that are due now for the sends queue, in the
    caller's transaction, and enqueue their send jobs when it commits. Returns their ids.

    The claim is the dispatcher's (status sending, a queue lease, no worker yet), so the
    dispatcher leaves them alone while the job waits in the queue, a cancellation still
    cancels them, and a job Redis loses is handed out again when the lease expires.
    """
    now = timezone.now()
    ids = [m.pk for m in messages if m.status == Message.Status.SCHEDULED and m.due_at <= now]
    if not ids:
        return []
    lease = now + QUEUE_LEASE
    Message.objects.filter(pk__in=ids, status=Message.Status.SCHEDULED).update(
        status=Message.Status.SENDING, lease_expires_at=lease, updated_at=now
    )
    for message in messages:
        if message.pk in ids:
            message.status = Message.Status.SENDING
            message.lease_expires_at = lease
    transaction.on_commit(functools.partial(_hand_over_or_release, message_ids=ids, lease=lease))
    return ids


def _hand_over_or_release(*, message_ids: list[int], lease: datetime) -> None:
    """After the trigger committed: enqueue, or give the rows back to the dispatcher."""
    if messages_enqueue(message_ids=message_ids):
        return
    # Redis refused: without this the rows would wait out the queue lease (minutes). Only rows
    # still as we left them (no worker claimed one, no cancellation): scheduled again, due,
    # so the dispatcher's next pass hands them out. Nothing accepted is lost either way.
    try:
        released = Message.objects.filter(
            pk__in=message_ids,
            status=Message.Status.SENDING,
            claimed_at__isnull=True,
            lease_expires_at=lease,
        ).update(status=Message.Status.SCHEDULED, lease_expires_at=None, updated_at=timezone.now())
    except DatabaseError as exc:
        # The database went too: the queue lease expires and the dispatcher takes them then.
        logger.warning(
            "notifications.hand_over.release_failed",
            extra={"count": len(message_ids), "error": type(exc).__name__},
        )
        return
    logger.warning(
        "notifications.hand_over.left_to_dispatcher",
        extra={"count": len(message_ids), "released": released},
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

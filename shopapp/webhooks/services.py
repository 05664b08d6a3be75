"""Webhook deliveries: record them, hand them to RQ, process them, sweep and replay them.

    view ─> webhook_event_record ─(on commit)─> webhook_pump_arm: SET NX webhooks:pump-armed
                 │ one INSERT                       ├ first since the last pump: enqueue it
                 │                                  └ skipped when this process saw it set
                 │                                    in the last 100 ms (the pump's tail)
                 v
         WebhookEvent (pending, enqueued_at NULL)
                 │
    webhook_events_pump_job: deliveries nothing handed over yet, 500 per round trip,
                 │            one processing job each (RQ's enqueue_many, one pipeline)
                 v
    webhook_event_process_job ─> webhook_event_process ─> TOPIC_HANDLERS[topic]
                 │ raised: attempts+1, RQ retries with backoff
                 └ no retries left: webhook_event_mark_failed ─> webhook_event_replay (admin)

    webhook_event_sweep (cron, every minute): whatever Redis lost, pump or processing job

Why a pump: an RQ enqueue per request cost the intake a millisecond and a Redis pipeline of
its own, under Shopify's busiest bursts; a SET NX costs one small round trip, and the pump
enqueues hundreds of jobs in one. The processing jobs still run on every worker in parallel.
The database, not Redis, is the source of truth (DESIGN "The way of one webhook").
"""

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import redis
from django.db import DatabaseError, DataError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from shopapp.background.queue import JobSpec, Queues, queue_get, rq_enqueue
from shopapp.models import Shop, WebhookEvent

logger = logging.getLogger(__name__)

# RQ retries for a failing event. Shopify itself retries a delivery for 4 hours, but once we
# answered 200 the retrying is ours; 5 tries over ~43 min cover a deploy or a database blip.
RETRY_MAX = 5
RETRY_INTERVALS_S = [10, 30, 120, 600, 1800]
PROCESS_JOB_TIMEOUT_S = 120

# The sweep leaves young events to the on-commit enqueue (seconds), and re-enqueues an event
# only when nothing handed it to RQ for a while (a lost job, a crash between commit and
# enqueue). A retry scheduled by RQ counts as handed over until it is due.
SWEEP_MIN_AGE = timedelta(seconds=30)
SWEEP_REENQUEUE_AFTER = timedelta(minutes=10)
SWEEP_BATCH_SIZE = 500

# The pump: a flag in Redis says one is on its way; it hands over this many deliveries per
# round trip, and at most this many per run before it makes way for other jobs.
PUMP_FLAG = "webhooks:pump-armed"
PUMP_FLAG_TTL_S = 30
PUMP_BATCH_SIZE = 500
PUMP_MAX_PER_RUN = 5000

# A SET NX per delivery was a Redis round trip per request. Each process remembers when it last
# saw the flag set (it set it, or found it set) and skips the SET NX for PUMP_ARM_MEMO_S after.
# The pump makes the skip safe: after clearing the flag it drains once more PUMP_TAIL_S later.
# A delivery whose arm was skipped was committed within PUMP_ARM_MEMO_S of a SET NX that saw
# the flag set, so before the tail of the pump that clears that flag. Seconds; the tail is
# longer than the memo by a margin for two processes' clocks.
PUMP_ARM_MEMO_S = 0.1
PUMP_TAIL_S = 0.15
# time.monotonic() of this process's last SET NX that left the flag set.
_pump_flag_seen_at = -math.inf

# Topics that must be handled even for a shop that uninstalled the app: Shopify sends the
# compliance topics after uninstall (shop/redact 48 h later), and a repeated app/uninstalled
# has to be answered idempotently.
# https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
INACTIVE_SHOP_TOPICS = frozenset(
    {"app/uninstalled", "shop/redact", "customers/data_request", "customers/redact"}
)


class IgnoredReason:
    UNKNOWN_SHOP = "unknown_shop"
    INACTIVE_SHOP = "inactive_shop"
    UNKNOWN_TOPIC = "unknown_topic"
    SHOP_UNINSTALLED = "shop_uninstalled"


def webhook_event_ignore_reason(
    *, topic: str, shop_exists: bool, shop_is_active: bool
) -> str | None:
    """Why a delivery will not be processed, or None when it will."""
    from shopapp.webhooks.handlers import TOPIC_HANDLERS

    if topic not in TOPIC_HANDLERS:
        return IgnoredReason.UNKNOWN_TOPIC
    if not shop_exists:
        return IgnoredReason.UNKNOWN_SHOP
    if not shop_is_active and topic not in INACTIVE_SHOP_TOPICS:
        return IgnoredReason.INACTIVE_SHOP
    return None


# One statement, in autocommit its own transaction: the shop lookup, the ignore rules and the
# INSERT in a single round trip, committed (durable) when it returns. A repeated webhook id
# inserts nothing and returns no row. The CASEs are webhook_event_ignore_reason's rules, in its
# order, with the topic's part decided in Python: %(topic_reason)s (unknown topic) and
# %(inactive_ok)s (a topic an uninstalled shop still gets). INSERT … SELECT … ON CONFLICT
# needs a WHERE on SQLite (its parser would read ON as a join's).
# https://www.sqlite.org/lang_upsert.html ("parsing ambiguity")
_RECORD_SQL = """
INSERT INTO shopapp_webhookevent (
    shop_id, shop_domain, webhook_id, topic, event_id, api_version, triggered_at,
    headers, payload, order_shopify_id, status, ignored_reason,
    attempts, last_error, received_at, enqueued_at, processed_at
)
SELECT
    shop.id, %(shop_domain)s, %(webhook_id)s, %(topic)s, %(event_id)s, %(api_version)s,
    %(triggered_at)s, {headers}, {payload}, %(order_shopify_id)s,
    CASE
        WHEN %(topic_reason)s <> '' OR shop.id IS NULL THEN {ignored}
        WHEN NOT shop.is_active AND NOT %(inactive_ok)s THEN {ignored}
        ELSE {pending}
    END,
    CASE
        WHEN %(topic_reason)s <> '' THEN %(topic_reason)s
        WHEN shop.id IS NULL THEN {unknown_shop}
        WHEN NOT shop.is_active AND NOT %(inactive_ok)s THEN {inactive_shop}
        ELSE ''
    END,
    0, '', %(received_at)s, NULL, NULL
FROM (SELECT 1 AS one) AS one
LEFT JOIN shopapp_shop AS shop ON shop.myshopify_domain = %(shop_domain)s
WHERE true
ON CONFLICT (webhook_id) DO NOTHING
RETURNING id, shop_id, status, ignored_reason
"""
# PostgreSQL parses the JSON text into jsonb; SQLite stores it as it is (JSONField's text).
# The statuses and reasons are the code's constants, written in as literals: every parameter
# is a value the driver quotes on each request.
_RECORD_CONSTANTS = {
    "pending": f"'{WebhookEvent.Status.PENDING.value}'",
    "ignored": f"'{WebhookEvent.Status.IGNORED.value}'",
    "unknown_shop": f"'{IgnoredReason.UNKNOWN_SHOP}'",
    "inactive_shop": f"'{IgnoredReason.INACTIVE_SHOP}'",
}
_RECORD_SQL_BY_VENDOR = {
    "postgresql": _RECORD_SQL.format(
        headers="%(headers)s::jsonb", payload="%(payload)s::jsonb", **_RECORD_CONSTANTS
    ),
    "sqlite": _RECORD_SQL.format(headers="%(headers)s", payload="%(payload)s", **_RECORD_CONSTANTS),
}


def webhook_event_record(
    *,
    webhook_id: str,
    topic: str,
    shop_domain: str,
    payload: dict,
    headers: dict[str, str],
    event_id: str = "",
    api_version: str = "",
    triggered_at: datetime | None = None,
    order_shopify_id: int | None = None,
    payload_text: str | None = None,
) -> WebhookEvent | None:
    """Store one delivery and, on commit, hand it to RQ. Returns the new event.

    A repeated ``webhook_id`` returns None and changes nothing: the unique constraint
    decides, so two concurrent deliveries of the same webhook still leave one row.
    ``payload_text`` is the body as received, when the caller knows it is ``payload``'s
    storable JSON: stored as it is, it saves serialising the payload again. One query (a
    second only when the database refuses that text: see ``_payload_insert``).
    """
    from shopapp.webhooks.handlers import TOPIC_HANDLERS

    now = timezone.now()
    params: dict[str, Any] = {
        "shop_domain": shop_domain,
        "webhook_id": webhook_id,
        "topic": topic,
        "event_id": event_id,
        "api_version": api_version,
        "triggered_at": connection.ops.adapt_datetimefield_value(triggered_at),
        "headers": json.dumps(headers),
        "order_shopify_id": order_shopify_id,
        "topic_reason": "" if topic in TOPIC_HANDLERS else IgnoredReason.UNKNOWN_TOPIC,
        "inactive_ok": topic in INACTIVE_SHOP_TOPICS,
        "received_at": connection.ops.adapt_datetimefield_value(now),
    }
    row = _payload_insert(params, payload=payload, payload_text=payload_text)
    if row is None:
        return None
    pk, shop_pk, status, reason = row
    if status == WebhookEvent.Status.PENDING:
        transaction.on_commit(webhook_pump_arm)
    return WebhookEvent(
        pk=pk,
        shop_id=shop_pk,
        shop_domain=shop_domain,
        webhook_id=webhook_id,
        topic=topic,
        event_id=event_id,
        api_version=api_version,
        triggered_at=triggered_at,
        headers=headers,
        payload=payload,
        order_shopify_id=order_shopify_id,
        status=status,
        ignored_reason=reason,
        received_at=now,
    )


def _payload_insert(
    params: dict[str, Any], *, payload: dict, payload_text: str | None
) -> tuple[Any, ...] | None:
    """Run the INSERT with the body as received, or with ``payload`` serialised.

    Python's parser accepts a few numbers jsonb cannot hold (``1e-20000`` parses to 0.0): the
    database refuses that text, and the payload as Python parsed it is stored instead. Inside
    a transaction (tests, a caller's atomic block) the first try runs in a savepoint, so that
    the refusal does not break the transaction; in autocommit it needs none.
    """
    sql = _RECORD_SQL_BY_VENDOR[connection.vendor]
    if payload_text is not None:
        savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
        try:
            with savepoint, connection.cursor() as cursor:
                cursor.execute(sql, {**params, "payload": payload_text})
                return cursor.fetchone()
        except DataError:
            logger.info("webhooks.intake.payload_reserialised")
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "payload": json.dumps(payload)})
        return cursor.fetchone()


def _spec(event_id: int) -> JobSpec:
    # Imported here: jobs import this module.
    from shopapp.webhooks.jobs import webhook_event_process_failed, webhook_event_process_job

    return JobSpec(
        func=webhook_event_process_job,
        args=(event_id,),
        queue=Queues.WEBHOOKS,
        timeout_s=PROCESS_JOB_TIMEOUT_S,
        retry_intervals_s=tuple(RETRY_INTERVALS_S),
        on_failure=webhook_event_process_failed,
    )


def webhook_pump_arm() -> None:
    """A delivery was stored: make sure a pump job is on its way. Never raises.

    One SET NX: the first delivery after a pump started enqueues the next pump, the others
    find the flag set. The pump clears the flag before it reads the rows, so a delivery stored
    after that read re-arms it. The flag expires, so a pump job Redis lost holds nothing up for
    long; the sweep hands over anything older. Within PUMP_ARM_MEMO_S of the last SET NX that
    saw the flag set, not even that: the pump's tail takes the delivery.
    """
    global _pump_flag_seen_at
    # Taken before the SET NX reaches Redis: the tail's guarantee counts from here.
    started = time.monotonic()
    if started - _pump_flag_seen_at < PUMP_ARM_MEMO_S:
        return
    try:
        connection = queue_get(Queues.WEBHOOKS).connection
        armed = connection.set(PUMP_FLAG, "1", nx=True, ex=PUMP_FLAG_TTL_S)
        if armed and not rq_enqueue([_pump_spec()]):
            connection.delete(PUMP_FLAG)
            return
        _pump_flag_seen_at = started
    except (redis.RedisError, OSError) as exc:
        logger.warning("webhooks.pump.arm_failed", extra={"error": type(exc).__name__})


def webhook_pump_arm_forget() -> None:
    """Forget that the flag was seen set: Redis was emptied (tests), the next arm asks it."""
    global _pump_flag_seen_at
    _pump_flag_seen_at = -math.inf


def _pump_spec() -> JobSpec:
    from shopapp.webhooks.jobs import webhook_events_pump_job

    return JobSpec(func=webhook_events_pump_job, queue=Queues.WEBHOOKS, timeout_s=120)


def webhook_events_pump(*, batch: int = PUMP_BATCH_SIZE, most: int = PUMP_MAX_PER_RUN) -> int:
    """Hand stored deliveries that nothing handed over yet to RQ, ``batch`` per round trip.

    Rows are claimed with ``skip_locked``, so pumps on several workers (and the sweep) never
    take the same one. After ``most`` rows it enqueues another pump and stops, so that a flood
    never keeps one job busy while other work waits. Once drained, it drains again PUMP_TAIL_S
    after it cleared the flag: deliveries whose processes skipped the SET NX (see
    webhook_pump_arm) are in by then. Returns how many it handed over.
    """
    with contextlib.suppress(redis.RedisError, OSError):
        queue_get(Queues.WEBHOOKS).connection.delete(PUMP_FLAG)
    tail_at = time.monotonic() + PUMP_TAIL_S
    total, state = _drain(batch=batch, most=most)
    if state == "drained":
        time.sleep(max(0.0, tail_at - time.monotonic()))
        more, state = _drain(batch=batch, most=most - total)
        total += more
    if state == "more":
        rq_enqueue([_pump_spec()])
    if total:
        logger.info("webhooks.pump.enqueued", extra={"count": total})
    return total


def _drain(*, batch: int, most: int) -> tuple[int, str]:
    """Claim and hand over up to ``most`` rows. Returns how many, and how it stopped:
    "drained" (none left), "more" (``most`` reached) or "redis_down" (left to the sweep)."""
    total = 0
    while total < most:
        with transaction.atomic():
            ids = list(
                WebhookEvent.objects.select_for_update(skip_locked=True)
                .filter(status=WebhookEvent.Status.PENDING, enqueued_at__isnull=True)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                return total, "drained"
            WebhookEvent.objects.filter(pk__in=ids).update(enqueued_at=timezone.now())
        # Committed (a job runs outside any transaction): now the jobs may find the rows.
        if not _hand_over(ids):
            return total, "redis_down"
        total += len(ids)
        if len(ids) < batch:
            return total, "drained"
    return total, "more"


def _hand_over(ids: list[int]) -> bool:
    if rq_enqueue([_spec(pk) for pk in ids]):
        return True
    # Redis went away: back to "nothing handed over", for the sweep.
    WebhookEvent.objects.filter(pk__in=ids, status=WebhookEvent.Status.PENDING).update(
        enqueued_at=None
    )
    logger.warning("webhooks.pump.enqueue_failed", extra={"count": len(ids)})
    return False


def webhook_event_enqueue(*, event_id: int) -> bool:
    """Put the processing job on the "webhooks" queue now. Never raises.

    Redis down: the event's ``enqueued_at`` is cleared and the sweep enqueues it once Redis is
    back. Returns whether the job was enqueued.
    """
    if rq_enqueue([_spec(event_id)]):
        return True
    try:
        WebhookEvent.objects.filter(pk=event_id, status=WebhookEvent.Status.PENDING).update(
            enqueued_at=None
        )
    except DatabaseError:
        logger.exception("webhooks.enqueue.reset_failed", extra={"event": event_id})
    return False


def _mark_ignored(event: WebhookEvent, reason: str) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=WebhookEvent.Status.IGNORED, ignored_reason=reason, processed_at=timezone.now()
    )
    logger.info(
        "webhooks.process.ignored",
        extra={"event": event.pk, "topic": event.topic, "reason": reason},
    )


def webhook_event_process(*, event_id: int) -> str | None:
    """Process one stored delivery with its topic's handler. Returns the final status.

    The row is locked for the whole run, so a duplicate job (the sweep and a late on-commit
    enqueue) waits and then skips. Only a pending event is processed. On an exception the
    handler's changes roll back, the attempt is counted and the exception re-raised so that
    RQ retries it.
    """
    from shopapp.webhooks.handlers import TOPIC_HANDLERS

    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
            if event is None:
                logger.info("webhooks.process.gone", extra={"event": event_id})
                return None
            if event.status != WebhookEvent.Status.PENDING:
                logger.info(
                    "webhooks.process.skipped", extra={"event": event_id, "status": event.status}
                )
                return event.status
            handler = TOPIC_HANDLERS.get(event.topic)
            shop = event.shop
            reason = webhook_event_ignore_reason(
                topic=event.topic,
                shop_exists=shop is not None,
                shop_is_active=bool(shop and shop.is_active),
            )
            if reason or handler is None or shop is None:
                _mark_ignored(event, reason or IgnoredReason.UNKNOWN_TOPIC)
                return WebhookEvent.Status.IGNORED
            handler(shop=shop, event=event, payload=event.payload)
            # A filter().update(): the handler may have changed the row (shop/redact detaches
            # it, customers/redact scrubs its payload) and must not be overwritten.
            WebhookEvent.objects.filter(pk=event_id, status=WebhookEvent.Status.PENDING).update(
                status=WebhookEvent.Status.PROCESSED,
                processed_at=timezone.now(),
                attempts=F("attempts") + 1,
                last_error="",
            )
    except Exception as exc:
        # Exception class and message only, kept in the database for staff; the log line
        # carries the class, never a message that could quote a shopper's data.
        WebhookEvent.objects.filter(pk=event_id).update(
            attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        logger.warning(
            "webhooks.process.error", extra={"event": event_id, "error": type(exc).__name__}
        )
        raise
    logger.info("webhooks.process.processed", extra={"event": event_id, "topic": event.topic})
    return WebhookEvent.Status.PROCESSED


def webhook_event_attempt_failed(
    *, event_id: int, retries_left: int, retry_in_s: int | None = None
) -> None:
    """After a failed attempt: mark the event failed only when RQ has no retry left.

    With retries left, ``enqueued_at`` is set to when RQ will run the retry, so the sweep does
    not enqueue a second copy meanwhile.
    """
    now = timezone.now()
    if retries_left > 0:
        WebhookEvent.objects.filter(pk=event_id, status=WebhookEvent.Status.PENDING).update(
            enqueued_at=now + timedelta(seconds=retry_in_s or 0)
        )
        return
    updated = WebhookEvent.objects.filter(pk=event_id, status=WebhookEvent.Status.PENDING).update(
        status=WebhookEvent.Status.FAILED
    )
    if updated:
        logger.error("webhooks.process.failed", extra={"event": event_id})


def webhook_event_sweep(*, now: datetime | None = None) -> int:
    """Enqueue pending events that nothing handed to RQ (Redis was down, a job was lost).

    Claims rows with ``skip_locked`` so two sweeps, or a sweep and a running job, never take
    the same row. Returns how many events were enqueued.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookEvent.Status.PENDING, received_at__lt=now - SWEEP_MIN_AGE)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - SWEEP_REENQUEUE_AFTER))
            .order_by("received_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH_SIZE]
        )
        if not ids:
            return 0
        WebhookEvent.objects.filter(pk__in=ids).update(enqueued_at=now)
        transaction.on_commit(lambda: _enqueue_many(ids))
    logger.info("webhooks.sweep.enqueued", extra={"count": len(ids)})
    return len(ids)


def _enqueue_many(ids: Iterable[int]) -> None:
    ids = list(ids)
    if not rq_enqueue([_spec(pk) for pk in ids]):
        # Redis went away: these keep their enqueued_at and a later sweep retries them after
        # SWEEP_REENQUEUE_AFTER.
        logger.warning("webhooks.sweep.enqueue_failed", extra={"count": len(ids)})


def webhook_event_replay(*, event_id: int) -> bool:
    """Send a failed event through processing again (the Django admin's "replay" action).

    Returns False when the event is not failed (already processed, pending or ignored).
    """
    with transaction.atomic():
        updated = WebhookEvent.objects.filter(
            pk=event_id, status=WebhookEvent.Status.FAILED
        ).update(status=WebhookEvent.Status.PENDING, enqueued_at=timezone.now(), processed_at=None)
        if not updated:
            return False
        transaction.on_commit(lambda: webhook_event_enqueue(event_id=event_id))
    logger.info("webhooks.replay.enqueued", extra={"event": event_id})
    return True


def webhook_events_ignore_pending(*, shop: Shop, reason: str, exclude_pk: Any = None) -> int:
    """Stop a shop's pending deliveries (app/uninstalled): they are kept, marked ignored."""
    pending = WebhookEvent.objects.filter(shop=shop, status=WebhookEvent.Status.PENDING).exclude(
        topic__in=INACTIVE_SHOP_TOPICS
    )
    if exclude_pk is not None:
        pending = pending.exclude(pk=exclude_pk)
    return pending.update(
        status=WebhookEvent.Status.IGNORED, ignored_reason=reason, processed_at=timezone.now()
    )

"""Webhook delivery, as Shopify does it.

    dev_webhook_emit(shop, topic, payload)          one event (one X-Shopify-Event-Id)
        → one DevWebhookDelivery per subscription   body serialized once, own X-Shopify-Webhook-Id
    delivery loop (thread in the devshop server)    every ~100 ms: dev_webhook_deliver_due()
        → POST uri, Shopify's headers, HMAC          2xx: delivered; anything else, 3xx included,
                                                    a failure retried with exponential backoff
    POST /_devshop/webhooks/flush                   the same pass, on demand (tests)

Subscriptions: the app's shopify.app.toml sends every topic to APP_URL/webhooks/ (implied for an
installed app, no row); ``DevWebhookSubscription`` rows are the shop-specific ones that
``webhookSubscriptionCreate`` makes. Facts from shopify.dev (webhooks: delivery, headers,
troubleshooting): 1 s to connect and 5 s in all, 8 retries over 4 hours, the original payload on
every retry, at-least-once and in no particular order, which the chaos knobs exaggerate.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from devshop.knobs import knob_get
from devshop.models import DevShop, DevWebhookDelivery, DevWebhookSubscription

logger = logging.getLogger(__name__)

# Shopify: "1 second to connect and 5 seconds for the whole request".
CONNECT_TIMEOUT_SECONDS = 1.0
TOTAL_TIMEOUT_SECONDS = 5.0
# The loop's polling interval: near-real-time delivery without a busy database.
POLL_INTERVAL_SECONDS = 0.1
# At most this many deliveries per pass, so a flush stays bounded.
PASS_LIMIT = 500
# Shopify deletes an Admin-API subscription after 8 consecutive failures.
SUBSCRIPTION_MAX_CONSECUTIVE_FAILURES = 8
# Read at most this much of a response: only the status matters.
RESPONSE_READ_LIMIT_BYTES = 64 * 1024
# Topics Shopify sends to an app that is no longer installed (the uninstall itself, and the
# compliance topics that follow it: shop/redact comes 48 h after).
SENT_AFTER_UNINSTALL = {"app/uninstalled", "shop/redact", "customers/redact"}

# One delivery pass at a time in this process: the loop and a flush never send the same row twice
# (the devshop runs one gunicorn worker, so a process lock is enough).
_PASS_LOCK = threading.Lock()
_loop_thread: threading.Thread | None = None
_loop_start_lock = threading.Lock()


@dataclass(frozen=True)
class _Target:
    subscription: DevWebhookSubscription | None
    uri: str
    api_version: str
    name: str


def webhook_hmac(body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64 of HMAC-SHA256 over the raw body, keyed with the secret."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_body(payload: dict[str, Any]) -> bytes:
    """Compact JSON as Shopify sends it, UTF-8 (names and addresses are not \\u-escaped)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _absolute_uri(uri: str) -> str:
    # shopify.app.toml allows a path relative to the app's URL ("/webhooks/").
    if uri.startswith("/"):
        return settings.DEVSHOP_APP_URL + uri
    return uri


def _order_id(topic: str, payload: dict[str, Any]) -> int | None:
    """X-Shopify-Order-Id: the order an order, fulfillment, refund or return payload is about."""
    if topic.startswith("orders/"):
        candidate = payload.get("id")
        if candidate is None and isinstance(payload.get("order_edit"), dict):
            candidate = payload["order_edit"].get("order_id")
    else:
        candidate = payload.get("order_id")
        if candidate is None and isinstance(payload.get("order"), dict):
            candidate = payload["order"].get("id")
    return candidate if isinstance(candidate, int) and not isinstance(candidate, bool) else None


def _triggered_at_header(moment: datetime) -> str:
    # Shopify's format: 2025-07-10T16:15:47.000000Z (UTC, microseconds).
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dev_webhook_subscription_create(
    *,
    shop: DevShop,
    topic: str,
    uri: str,
    api_version: str | None = None,
    name: str = "",
    filter: str = "",  # noqa: A002 - Shopify's field name
    include_fields: list[str] | None = None,
    format: str = "json",  # noqa: A002 - Shopify's field name
) -> DevWebhookSubscription:
    """A shop-specific subscription, as ``webhookSubscriptionCreate`` makes it."""
    subscription, _ = DevWebhookSubscription.objects.update_or_create(
        shop=shop,
        topic=topic,
        uri=uri,
        defaults={
            "api_version": api_version or settings.DEVSHOP_WEBHOOKS_API_VERSION,
            "name": name,
            "filter": filter,
            "include_fields": include_fields or [],
            "format": format,
        },
    )
    return subscription


def dev_webhook_targets(*, shop: DevShop, topic: str) -> list[_Target]:
    """Where an event of ``topic`` on ``shop`` goes: the app's TOML subscription, then the
    shop-specific ones. Two subscriptions to one topic mean two deliveries (Shopify)."""
    if not (shop.app_installed or topic in SENT_AFTER_UNINSTALL):
        return []
    targets = [
        _Target(
            subscription=None,
            uri=_absolute_uri("/webhooks/"),
            api_version=settings.DEVSHOP_WEBHOOKS_API_VERSION,
            name="",
        )
    ]
    for subscription in DevWebhookSubscription.objects.filter(shop=shop, topic=topic).order_by(
        "id"
    ):
        targets.append(
            _Target(
                subscription=subscription,
                uri=_absolute_uri(subscription.uri),
                api_version=subscription.api_version,
                name=subscription.name,
            )
        )
    return targets


def dev_webhook_emit(
    *,
    shop: DevShop,
    topic: str,
    payload: dict[str, Any],
    event_id: str | None = None,
    triggered_at: datetime | None = None,
    is_test: bool = False,
) -> list[DevWebhookDelivery]:
    """Queue ``payload`` for every subscription to ``topic`` on ``shop``.

    The body is serialized once, here: every subscription and every retry gets these bytes.
    Pass the same ``event_id`` to several calls when one merchant action fires several topics.
    """
    now = timezone.now()
    body = webhook_body(payload)
    event_id = event_id or str(uuid.uuid4())
    triggered_at = triggered_at or now
    delay_max = float(knob_get("webhook_chaos_delay_seconds") or 0)
    deliveries = []
    for target in dev_webhook_targets(shop=shop, topic=topic):
        # Chaos: a random delay before the first attempt, so deliveries arrive late and out of
        # the order the events happened in.
        delay = random.uniform(0, delay_max) if delay_max > 0 else 0.0
        deliveries.append(
            DevWebhookDelivery.objects.create(
                shop=shop,
                subscription=target.subscription,
                topic=topic,
                uri=target.uri,
                api_version=target.api_version,
                name=target.name,
                webhook_id=str(uuid.uuid4()),
                event_id=event_id,
                triggered_at=triggered_at,
                body=body,
                order_id=_order_id(topic, payload),
                is_test=is_test,
                next_attempt_at=now + timedelta(seconds=delay),
            )
        )
    logger.info(
        "devshop.webhooks.emitted",
        extra={"shop": shop.myshopify_domain, "topic": topic, "deliveries": len(deliveries)},
    )
    return deliveries


def delivery_headers(delivery: DevWebhookDelivery) -> dict[str, str]:
    """The headers Shopify sends with a delivery (names as Shopify spells them)."""
    body = bytes(delivery.body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Shopify-Captain-Hook",
        "Accept": "*/*",
        # What Shopify's Ruby HTTP client advertises.
        "Accept-Encoding": "gzip;q=1.0,deflate;q=0.6,identity;q=0.3",
        "X-Shopify-Topic": delivery.topic,
        "X-Shopify-Hmac-Sha256": webhook_hmac(body, settings.DEVSHOP_APP_CLIENT_SECRET),
        "X-Shopify-Shop-Domain": delivery.shop.myshopify_domain,
        "X-Shopify-API-Version": delivery.api_version,
        "X-Shopify-Webhook-Id": delivery.webhook_id,
        "X-Shopify-Event-Id": delivery.event_id,
        "X-Shopify-Triggered-At": _triggered_at_header(delivery.triggered_at),
        "X-Shopify-Test": "true" if delivery.is_test else "false",
    }
    if delivery.order_id is not None:
        headers["X-Shopify-Order-Id"] = str(delivery.order_id)
    if delivery.name:
        headers["X-Shopify-Name"] = delivery.name
    return headers


def _send(delivery: DevWebhookDelivery, headers: dict[str, str]) -> tuple[int | None, str, int]:
    """POST once. Returns (status code or None, error, duration in ms)."""
    started = time.monotonic()
    try:
        # No redirects: a 3xx is a failed delivery for Shopify, not something to follow.
        response = requests.post(
            delivery.uri,
            data=bytes(delivery.body),
            headers=headers,
            timeout=(CONNECT_TIMEOUT_SECONDS, TOTAL_TIMEOUT_SECONDS),
            allow_redirects=False,
            stream=True,
        )
        try:
            read = 0
            for chunk in response.iter_content(8192):
                read += len(chunk)
                if read >= RESPONSE_READ_LIMIT_BYTES:
                    break
                if time.monotonic() - started > TOTAL_TIMEOUT_SECONDS:
                    break
        finally:
            response.close()
    except requests.Timeout:
        return None, "timeout", int((time.monotonic() - started) * 1000)
    except requests.ConnectionError:
        return None, "connection_error", int((time.monotonic() - started) * 1000)
    except requests.RequestException as exc:
        return None, type(exc).__name__, int((time.monotonic() - started) * 1000)
    duration_ms = int((time.monotonic() - started) * 1000)
    # requests' read timeout is per socket read; Shopify's 5 s is for the whole request.
    if duration_ms > TOTAL_TIMEOUT_SECONDS * 1000:
        return None, "timeout", duration_ms
    return response.status_code, "", duration_ms


def _log_attempt(
    delivery: DevWebhookDelivery, status: int | None, error: str, duration_ms: int, duplicate: bool
) -> None:
    delivery.attempt_log = [
        *delivery.attempt_log,
        {
            "at": timezone.now().isoformat(),
            "status_code": status,
            "error": error,
            "duration_ms": duration_ms,
            "duplicate": duplicate,
        },
    ]


def _attempt(delivery: DevWebhookDelivery, *, duplicate_probability: float) -> str:
    """One attempt at one delivery. Returns "delivered", "failed" (retry due) or "gave_up"."""
    headers = delivery_headers(delivery)
    status, error, duration_ms = _send(delivery, headers)
    _log_attempt(delivery, status, error, duration_ms, duplicate=False)
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = status
    delivery.last_error = error or ("" if status and 200 <= status < 300 else f"http_{status}")
    subscription = delivery.subscription
    facts = {
        "shop": delivery.shop.myshopify_domain,
        "topic": delivery.topic,
        "webhook_id": delivery.webhook_id,
        "attempt": delivery.attempts,
        "status_code": status,
        "duration_ms": duration_ms,
    }

    if status is not None and 200 <= status < 300:
        delivery.status = DevWebhookDelivery.Status.DELIVERED
        delivery.delivered_at = now
        # Chaos: Shopify "minimizes" duplicates but does send some; the same delivery (same
        # X-Shopify-Webhook-Id and body) arrives again.
        if duplicate_probability > 0 and random.random() < duplicate_probability:
            dup_status, dup_error, dup_ms = _send(delivery, headers)
            _log_attempt(delivery, dup_status, dup_error, dup_ms, duplicate=True)
            delivery.duplicates_sent += 1
        delivery.save()
        if subscription is not None and subscription.consecutive_failures:
            DevWebhookSubscription.objects.filter(pk=subscription.pk).update(consecutive_failures=0)
        logger.info("devshop.webhooks.delivered", extra=facts)
        return "delivered"

    if subscription is not None:
        subscription.consecutive_failures += 1
        DevWebhookSubscription.objects.filter(pk=subscription.pk).update(
            consecutive_failures=subscription.consecutive_failures
        )
    retries_used = delivery.attempts - 1
    if retries_used >= int(knob_get("webhook_max_retries")):
        delivery.status = DevWebhookDelivery.Status.FAILED
        delivery.save()
        logger.warning("devshop.webhooks.gave_up", extra={**facts, "error": delivery.last_error})
        if (
            subscription is not None
            and subscription.consecutive_failures >= SUBSCRIPTION_MAX_CONSECUTIVE_FAILURES
        ):
            # Shopify removes an Admin-API subscription after 8 consecutive failures.
            logger.warning(
                "devshop.webhooks.subscription_removed",
                extra={"shop": delivery.shop.myshopify_domain, "topic": subscription.topic},
            )
            subscription.delete()
        return "gave_up"

    # Exponential backoff: base, 2·base, 4·base, … (8 retries ≈ 4 h at the default base).
    backoff = float(knob_get("webhook_retry_base_seconds")) * (2 ** (delivery.attempts - 1))
    delivery.next_attempt_at = now + timedelta(seconds=backoff)
    delivery.save()
    logger.info(
        "devshop.webhooks.failed",
        extra={**facts, "error": delivery.last_error, "retry_in_s": backoff},
    )
    return "failed"


def _shuffled(rows: list[DevWebhookDelivery]) -> list[DevWebhookDelivery]:
    """A permutation that is never the original order when there are two or more rows, so
    that a test of reordering cannot pass by luck."""
    if len(rows) < 2:
        return rows
    shuffled = rows[:]
    random.shuffle(shuffled)
    if [r.pk for r in shuffled] == [r.pk for r in rows]:
        shuffled = shuffled[1:] + shuffled[:1]
    return shuffled


def dev_webhook_deliver_due(*, hold: bool = False, limit: int = PASS_LIMIT) -> dict[str, int]:
    """One delivery pass over every pending row that is due now. Returns counts.

    ``hold`` (the background loop): with the reorder chaos on, rows younger than
    ``webhook_chaos_hold_seconds`` wait, so that a batch gathers and is then shuffled. A flush
    does not hold: it delivers everything due now, shuffled when reordering is on.
    """
    counts = {"due": 0, "delivered": 0, "failed": 0, "gave_up": 0, "duplicates": 0, "held": 0}
    with _PASS_LOCK:
        now = timezone.now()
        rows = list(
            DevWebhookDelivery.objects.select_related("shop", "subscription")
            .filter(status=DevWebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:limit]
        )
        reorder = bool(knob_get("webhook_chaos_reorder"))
        if reorder and hold:
            cutoff = now - timedelta(seconds=float(knob_get("webhook_chaos_hold_seconds")))
            ready = [r for r in rows if r.created_at <= cutoff]
            counts["held"] = len(rows) - len(ready)
            rows = ready
        if reorder:
            rows = _shuffled(rows)
        duplicate_probability = float(knob_get("webhook_chaos_duplicate") or 0)
        counts["due"] = len(rows)
        for row in rows:
            before = row.duplicates_sent
            outcome = _attempt(row, duplicate_probability=duplicate_probability)
            counts[outcome] += 1
            counts["duplicates"] += row.duplicates_sent - before
    return counts


def delivery_as_dict(delivery: DevWebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "shop": delivery.shop.myshopify_domain,
        "topic": delivery.topic,
        "uri": delivery.uri,
        "api_version": delivery.api_version,
        "subscription_id": delivery.subscription.shopify_id if delivery.subscription else None,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "triggered_at": _triggered_at_header(delivery.triggered_at),
        "order_id": delivery.order_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat(),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "attempt_log": delivery.attempt_log,
        "duplicates_sent": delivery.duplicates_sent,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        "created_at": delivery.created_at.isoformat(),
    }


def dev_webhook_delivery_list(
    *,
    shop: str | None = None,
    topic: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[DevWebhookDelivery]:
    rows = DevWebhookDelivery.objects.select_related("shop", "subscription").order_by("id")
    if shop:
        rows = rows.filter(shop__myshopify_domain=shop)
    if topic:
        rows = rows.filter(topic=topic)
    if status:
        rows = rows.filter(status=status)
    return list(rows[:limit])


def _loop() -> None:
    # One database connection for the thread's life (polling every 100 ms would otherwise
    # reconnect ten times a second); dropped after an error so the next pass starts clean.
    while True:
        try:
            if not knob_get("webhook_delivery_paused"):
                dev_webhook_deliver_due(hold=True)
        except Exception:  # the loop must outlive a bad row or a locked database
            logger.exception("devshop.webhooks.loop_error")
            close_old_connections()
            connection.close()
        time.sleep(POLL_INTERVAL_SECONDS)


def delivery_loop_start() -> bool:
    """Start the background delivery thread once per process. True if it was started now.

    Only the devshop server runs it (``DEVSHOP_DELIVERY=1``, set by ``manage.py devshop`` for
    gunicorn), never the app's processes, migrations or the test process.
    """
    global _loop_thread
    if os.environ.get("DEVSHOP_DELIVERY") != "1":
        return False
    # Belt and braces: a process inheriting the variable but running the app's settings (whose
    # INSTALLED_APPS include devshop locally) must not deliver from the app's database.
    if settings.SETTINGS_MODULE != "devshop.settings":
        return False
    with _loop_start_lock:
        if _loop_thread is not None and _loop_thread.is_alive():
            return False
        _loop_thread = threading.Thread(target=_loop, name="devshop-webhook-delivery", daemon=True)
        _loop_thread.start()
    logger.info("devshop.webhooks.loop_started", extra={"pid": os.getpid()})
    return True

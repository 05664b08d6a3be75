"""``POST /webhooks/``: one URL for every topic, an ordered chain of guards, then one INSERT.

    method ─405─ size ─413─ signature ─401─ headers ─400─ JSON object ─400─ record ─> 200
                                                                            └ database down ─503

Each guard has its own log key. Nothing is stored before the signature is verified, and
nothing but the WebhookEvent row is written in the request: no Shopify call, no domain work
(Shopify gives up after 5 s: https://shopify.dev/docs/apps/build/webhooks/subscribe/https).
"""

import base64
import hashlib
import hmac
import logging
import re
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from shopapp.payloads import json_parse, json_storable, json_storable_text
from shopapp.payloads import payload_int as _as_id
from shopapp.webhooks.services import webhook_event_record

logger = logging.getLogger(__name__)

# Column widths of WebhookEvent: a longer header is refused rather than truncated.
_MAX_LENGTHS = {"topic": 128, "shop_domain": 255, "webhook_id": 255, "event_id": 255}

_PRINTABLE = re.compile(r"[\x21-\x7e]+")

# The database is down or restarting: nothing was stored, and Shopify delivers again after any
# non-2xx answer (8 tries over 4 hours). A 503 says "come back", where a 500 would say the app
# is broken; Retry-After (seconds) is what a restart takes.
DATABASE_UNAVAILABLE_RETRY_AFTER_S = 10

# Topics whose payload names its order as ``order_id``; orders/* carry it as ``id``.
_ORDER_ID_KEY_TOPICS = ("fulfillments/", "refunds/", "fulfillment_events/")


def _plain(status: int) -> HttpResponse:
    return HttpResponse(status=status, content_type="text/plain")


def _signature_valid(body: bytes, provided: str) -> bool:
    # Shopify signs the raw body with the app's client secret, base64-encoded HMAC-SHA256;
    # compared in constant time (https://shopify.dev/docs/apps/build/webhooks/subscribe/https).
    digest = hmac.new(settings.SHOPIFY_API_SECRET.encode(), body, hashlib.sha256).digest()
    expected = base64.b64encode(digest)
    return hmac.compare_digest(expected, provided.encode("utf-8", "replace"))


def _shopify_headers(request: HttpRequest) -> dict[str, str]:
    # Every X-Shopify-* header, lowercased as HTTP/2 delivers them, storable (no NUL).
    return {
        "x-shopify-" + key[15:].lower().replace("_", "-"): json_storable(value)
        for key, value in request.META.items()
        if key.startswith("HTTP_X_SHOPIFY_")
    }


def _order_id(topic: str, payload: dict, headers: dict[str, str]) -> int | None:
    if topic == "orders/edited":
        edit = payload.get("order_edit")
        found = _as_id(edit.get("order_id")) if isinstance(edit, dict) else None
    elif topic.startswith("orders/"):
        found = _as_id(payload.get("id"))
    elif topic.startswith(_ORDER_ID_KEY_TOPICS):
        found = _as_id(payload.get("order_id"))
    elif topic.startswith("returns/"):
        order = payload.get("order")
        found = _as_id(order.get("id")) if isinstance(order, dict) else None
    else:
        found = None
    return found if found is not None else _as_id(headers.get("x-shopify-order-id"))


def _triggered_at(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _body_read(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is over the limit (declared or actually sent)."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        logger.warning("webhooks.intake.too_large", extra={"declared": declared})
        return None
    # Read at most one byte past the limit: a chunked body without Content-Length is
    # measured by what actually arrives.
    body = request.read(limit + 1)
    if len(body) > limit:
        logger.warning("webhooks.intake.too_large", extra={"received": len(body)})
        return None
    return body


def _ids_valid(values: dict[str, str]) -> bool:
    missing = [name for name in ("topic", "shop_domain", "webhook_id") if not values[name]]
    too_long = [name for name, value in values.items() if len(value) > _MAX_LENGTHS[name]]
    # Shopify's ids and topics are printable ASCII; anything else is not Shopify's.
    garbled = [name for name, value in values.items() if value and not _PRINTABLE.fullmatch(value)]
    if missing or too_long or garbled:
        logger.warning(
            "webhooks.intake.bad_headers",
            extra={"missing": missing, "too_long": too_long, "garbled": garbled},
        )
        return False
    return True


def _payload_parse(body: bytes, *, shop_domain: str, topic: str) -> dict | None:
    try:
        # Python's json keeps integers exact: Shopify ids above 2**53 survive.
        payload = json_parse(body)
    except ValueError:
        logger.warning(
            "webhooks.intake.bad_json", extra={"shop_domain": shop_domain, "topic": topic}
        )
        return None
    if not isinstance(payload, dict):
        logger.warning(
            "webhooks.intake.not_an_object", extra={"shop_domain": shop_domain, "topic": topic}
        )
        return None
    return payload


@csrf_exempt
def webhook_receive(request: HttpRequest) -> HttpResponse:
    """The guards in order, each with its log key and status; then one INSERT and 200."""
    if request.method != "POST":
        logger.info("webhooks.intake.method_not_allowed", extra={"method": request.method})
        return HttpResponseNotAllowed(["POST"])
    body = _body_read(request)
    if body is None:
        return _plain(413)
    headers = _shopify_headers(request)
    values = {
        "topic": headers.get("x-shopify-topic", ""),
        "shop_domain": headers.get("x-shopify-shop-domain", "").lower(),
        "webhook_id": headers.get("x-shopify-webhook-id", ""),
        "event_id": headers.get("x-shopify-event-id", ""),
    }
    topic, shop_domain = values["topic"], values["shop_domain"]
    provided = headers.get("x-shopify-hmac-sha256", "")
    if not provided or not _signature_valid(body, provided):
        logger.warning(
            "webhooks.intake.bad_signature",
            extra={"shop_domain": shop_domain, "topic": topic, "missing": not provided},
        )
        return _plain(401)
    if not _ids_valid(values):
        return _plain(400)
    payload = _payload_parse(body, shop_domain=shop_domain, topic=topic)
    if payload is None:
        return _plain(400)
    log_extra = {"shop_domain": shop_domain, "topic": topic, "webhook_id": values["webhook_id"]}
    try:
        event = webhook_event_record(
            webhook_id=values["webhook_id"],
            topic=topic,
            shop_domain=shop_domain,
            payload=payload,
            headers=headers,
            event_id=values["event_id"],
            api_version=headers.get("x-shopify-api-version", "")[:32],
            triggered_at=_triggered_at(headers.get("x-shopify-triggered-at", "")),
            order_shopify_id=_order_id(topic, payload, headers),
            payload_text=json_storable_text(body),
        )
    except (OperationalError, InterfaceError) as exc:
        # Unreachable, restarting, or a connection the restart closed (InterfaceError).
        logger.warning(
            "webhooks.intake.database_unavailable",
            extra={**log_extra, "error": type(exc).__name__},
        )
        response = _plain(503)
        response["Retry-After"] = str(DATABASE_UNAVAILABLE_RETRY_AFTER_S)
        return response
    if event is None:
        logger.info("webhooks.intake.duplicate", extra=log_extra)
        return _plain(200)
    logger.info(
        "webhooks.intake.stored",
        extra={
            **log_extra,
            "event": event.pk,
            "status": event.status,
            "ignored_reason": event.ignored_reason or None,
        },
    )
    return _plain(200)

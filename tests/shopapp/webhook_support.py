"""Helpers for the webhook, order and privacy tests: Shopify's sample payloads, signed for real."""

import base64
import hashlib
import hmac
import itertools
import json
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from shopapp.models import Shop

# Shopify's documented sample payloads, byte-exact (ids above 2**53 included); see SOURCES.md.
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify" / "webhooks"
FIXTURE_ORDER_ID = 820982911946154508

_ids = itertools.count(1)


def fixture_bytes(topic: str) -> bytes:
    return (FIXTURES / f"{topic.replace('/', '__')}.json").read_bytes()


def fixture_json(topic: str) -> dict:
    return json.loads(fixture_bytes(topic))


def sign(body: bytes, secret: str | None = None) -> str:
    key = (secret if secret is not None else settings.SHOPIFY_API_SECRET).encode()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def shopify_headers(
    topic: str,
    body: bytes,
    *,
    shop_domain: str,
    webhook_id: str | None = None,
    secret: str | None = None,
    **extra: str,
) -> dict[str, str]:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-Webhook-Id": webhook_id or f"wh-{next(_ids)}",
        "X-Shopify-Event-Id": f"ev-{next(_ids)}",
        "X-Shopify-Triggered-At": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "X-Shopify-API-Version": "2026-04",
    }
    headers.update(extra)
    return headers


def post_webhook(
    client,
    topic: str,
    body: bytes,
    *,
    shop_domain: str,
    webhook_id: str | None = None,
    secret: str | None = None,
    **extra: str,
):
    headers = shopify_headers(
        topic, body, shop_domain=shop_domain, webhook_id=webhook_id, secret=secret, **extra
    )
    return client.post("/webhooks/", data=body, content_type="application/json", headers=headers)


def order_body(**changes) -> bytes:
    """orders/create's sample with some fields changed, serialised again (ids stay exact)."""
    payload = fixture_json("orders/create")
    payload.update(changes)
    return json.dumps(payload).encode()


def make_shop(domain: str = "alpha.myshopify.com", *, is_active: bool = True, **fields) -> Shop:
    defaults = {
        "is_active": is_active,
        "installed_at": timezone.now() - timezone.timedelta(days=30),
        "access_token_encrypted": "encrypted-access",
        "refresh_token_encrypted": "encrypted-refresh",
        "access_token_expires_at": timezone.now() + timezone.timedelta(hours=1),
        "refresh_token_expires_at": timezone.now() + timezone.timedelta(days=90),
    }
    defaults.update(fields)
    return Shop.objects.create(myshopify_domain=domain, **defaults)

"""Rendered order pages, cached in Redis under the versions of everything they show.

    GET /proxy/track/<token> ─ order row (its ``version``) ─ key ─▶ cache hit: the body as is
                                                                 ─▶ miss: load, render, store

The key holds every input of the page: the order and its ``version`` (PostgreSQL triggers bump
it on any change to the order, its line items, shipments, their items and events, its delays
or its problem cases: shopapp migration 0007, tracking 0003 and the problem cases' trigger),
the shop's settings (with the time its delivery statistics were rebuilt: predicted estimates)
and name and timezone, today's date in the shop's timezone (a predicted range never starts
before today), the language, the explicit ``locale`` and the link base. A change to any of
them is a new key; the suggested products shown, kept in Redis, are read with the page in one
MGET and their digest must match the page's stamp. So a page is never served stale; old
entries expire after ``TRACKING_PAGE_CACHE_SECONDS`` (600; 0 turns the cache off).
``PAGE_FORMAT`` is bumped when the page's code or templates change in a way a deploy must not
mix with pages rendered before.

Only on PostgreSQL, where the triggers exist (SQLite, the local default, renders every time).
Redis down or failing: the page is rendered as if nothing were cached. The Redis is REDIS_URL's,
through one client per process (Django's Redis cache builds a client per call: ~0.5 ms of CPU,
as much as the rest of a cached page). Keys carry a prefix naming the database, so databases
behind one Redis never share pages.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from shopapp.models import Order, Shop
from shopapp.storefront.redis_store import storefront_key_prefix, storefront_redis
from tracking.estimates import shop_today
from tracking.models import TrackingSettings

logger = logging.getLogger(__name__)

PAGE_FORMAT = 4
DEFAULT_SECONDS = 600


def _seconds() -> int:
    return int(getattr(settings, "TRACKING_PAGE_CACHE_SECONDS", DEFAULT_SECONDS))


def page_cache_enabled() -> bool:
    return connection.vendor == "postgresql" and _seconds() > 0


def _settings_fingerprint(tracking_settings: TrackingSettings) -> str:
    values = [
        repr(getattr(tracking_settings, field.attname))
        for field in TrackingSettings._meta.concrete_fields
    ]
    return hashlib.sha256("\x1f".join(values).encode()).hexdigest()[:16]


def order_page_key(
    *,
    shop: Shop,
    order: Order,
    tracking_settings: TrackingSettings,
    branding: object,
    language: str,
    explicit_locale: str,
    proxy_base: str,
) -> str:
    """``branding`` is the page's look as rendered (the tracking settings and the shop's
    brand: colours, logo, contact, footer), a frozen dataclass whose repr holds every field.
    The "you may also like" list shown (tracking.suggestions) is not in the key: it is read
    with the page (``page_cache_get``'s ``along``), and its digest is the page's stamp."""
    shop_part = hashlib.sha256(
        f"{shop.name}\x1f{shop.myshopify_domain}\x1f{shop.timezone}".encode()
    ).hexdigest()[:12]
    # created_at tells apart two orders that got the same id (a database rebuilt behind the
    # same Redis).
    return storefront_key_prefix() + (
        f"tracking:order:{PAGE_FORMAT}:{shop.pk}:{order.pk}:{order.created_at.timestamp()}:"
        f"{order.version}:{shop_part}:{_settings_fingerprint(tracking_settings)}:"
        f"{hashlib.sha256(repr(branding).encode()).hexdigest()[:16]}:"
        f"{shop_today(shop).isoformat()}:{language}:{explicit_locale}:{proxy_base}"
    )


@dataclass(frozen=True)
class CachedPage:
    """A read of the cache: the page's bytes as stored (None: not cached), the ``stamp`` it was
    stored with, and the value of the ``along`` key read in the same round trip."""

    content: bytes | None = None
    stamp: str = ""
    along: bytes | None = None


def page_cache_get(key: str, *, along: str | None = None) -> CachedPage:
    """The page under ``key`` and, in the same round trip (one MGET), the value of ``along``:
    an input of the page kept in Redis (the suggested products), whose digest the caller
    compares with the page's ``stamp``. Redis down or failing: nothing cached, nothing along."""
    try:
        values = storefront_redis().mget([key, along] if along else [key])
    except redis.RedisError as exc:
        logger.warning("tracking.page_cache.unavailable", extra={"error": type(exc).__name__})
        return CachedPage()
    stored, along_value = values[0], values[1] if along else None
    along_value = along_value if isinstance(along_value, bytes) else None
    if not isinstance(stored, bytes) or b"\n" not in stored:
        return CachedPage(along=along_value)
    stamp, content = stored.split(b"\n", 1)
    return CachedPage(content=content, stamp=stamp.decode(), along=along_value)


def page_cache_set(key: str, content: str, *, stamp: str = "") -> None:
    """Keep ``content`` under ``key`` with ``stamp`` (no newline): the digest of an input kept
    in Redis rather than in the key (it is read with the page, so unknown before)."""
    try:
        storefront_redis().set(key, stamp.encode() + b"\n" + content.encode(), ex=_seconds())
    except redis.RedisError as exc:
        logger.warning("tracking.page_cache.unavailable", extra={"error": type(exc).__name__})

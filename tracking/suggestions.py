""" "You may also like" on the tracking page: a few products from the shop's catalogue.

    cron, hourly ─ product_suggestions_refresh_all_job ─ per shop that shows them (task row,
        syncs queue) ─ product_suggestions_refresh_job ─ Admin API ``products`` (active, newest
        first) ─ kept: published on the online store, something available, a price ─ Redis,
        for SUGGESTIONS_TTL_SECONDS
    GET /proxy/track/<token> ─ one Redis GET (no Admin API call) ─ minus what the order holds
        ─ at most PAGE_PRODUCTS cards; nothing cached, turned off, or all held: no section

Redis, not a table: the list is a cache of Shopify's catalogue, rebuilt every hour for as long
as the merchant shows it; a flushed Redis or a failed refresh only hides the section until the
next round (off-safe), and the TTL drops a list a shop stopped refreshing (uninstalled, token
revoked, turned off). Keys carry the database's prefix (tracking.page_cache), so databases
behind one Redis never share lists. The page cache's key holds a digest of the list, so a
refreshed list is a new page.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import redis

from shopapp.admin_api.client import admin_client_for_shop
from shopapp.models import Shop
from shopapp.storefront.redis_store import storefront_key_prefix, storefront_redis
from tracking.branding import safe_url

logger = logging.getLogger(__name__)

# Read per round: enough that an order holding a few of them still leaves a full row.
PRODUCTS_FIRST = 12
# Variants read per product, to tell whether any is available for sale.
VARIANTS_FIRST = 10
# Cards on the page.
PAGE_PRODUCTS = 4
# The list lives three refresh rounds: a round or two failing (Shopify down, throttled)
# keeps the section; a shop no longer refreshed loses it within hours.
SUGGESTIONS_TTL_SECONDS = 3 * 3600
MAX_TITLE_LENGTH = 255

# Requested cost (shopify.dev "GraphQL Admin API rate limits": object 1, connection 2 +
# first × item): products 2 + 12 × (product 1 + featuredMedia 1 + preview 1 + image 1 +
# priceRangeV2 1 + minVariantPrice 1 + variants 2 + 10 × 1) = 218, well under the 1,000-point
# single-query limit (a test measures it against the devshop).
PRODUCT_SUGGESTIONS_QUERY = """
query TrackingProductSuggestions($first: Int!, $variantsFirst: Int!, $query: String!) {
  products(first: $first, query: $query, sortKey: CREATED_AT, reverse: true) {
    nodes {
      id
      legacyResourceId
      title
      status
      onlineStoreUrl
      featuredMedia {
        preview {
          image {
            url
            altText
          }
        }
      }
      priceRangeV2 {
        minVariantPrice {
          amount
          currencyCode
        }
      }
      variants(first: $variantsFirst) {
        nodes {
          availableForSale
        }
      }
    }
  }
}
"""
# Shopify's product search syntax: active products only (drafts and archived are not sold).
PRODUCTS_SEARCH = "status:active"


@dataclass(frozen=True)
class Suggestion:
    product_id: int
    title: str
    url: str
    image_url: str
    image_alt: str
    price: Decimal
    currency: str


def _key(shop_id: int) -> str:
    return storefront_key_prefix() + f"tracking:suggestions:{shop_id}"


def _node_suggestion(node: dict[str, Any]) -> dict[str, Any] | None:
    """One product node as kept, or None when it is not one to suggest."""
    if not isinstance(node, dict) or node.get("status") != "ACTIVE":
        return None
    url = safe_url(str(node.get("onlineStoreUrl") or ""), https_only=True)
    if not url:
        # Not published on the online store: nothing a shopper could open.
        return None
    variants = ((node.get("variants") or {}).get("nodes")) or []
    if not any(isinstance(v, dict) and v.get("availableForSale") for v in variants):
        return None
    price = ((node.get("priceRangeV2") or {}).get("minVariantPrice")) or {}
    try:
        amount = Decimal(str(price.get("amount")))
        product_id = int(node.get("legacyResourceId") or 0)
    except (InvalidOperation, TypeError, ValueError):
        return None
    title = str(node.get("title") or "").strip()[:MAX_TITLE_LENGTH]
    currency = str(price.get("currencyCode") or "")[:3]
    if product_id <= 0 or not title or not currency or not amount.is_finite():
        return None
    image = (((node.get("featuredMedia") or {}).get("preview")) or {}).get("image") or {}
    return {
        "product_id": product_id,
        "title": title,
        "url": url,
        "image_url": safe_url(str(image.get("url") or ""), https_only=True),
        "image_alt": str(image.get("altText") or "")[:MAX_TITLE_LENGTH],
        "price": str(amount),
        "currency": currency,
    }


def product_suggestions_refresh(*, shop: Shop, client: Any = None) -> int:
    """Read the shop's newest active products through the Admin API and keep the ones worth
    suggesting, for SUGGESTIONS_TTL_SECONDS. Returns how many were kept. A shop that turned
    the section off has its list dropped instead."""
    from tracking.selectors import tracking_settings_for_shop

    if not tracking_settings_for_shop(shop=shop).show_product_suggestions:
        product_suggestions_drop(shop=shop)
        return 0
    client = client or admin_client_for_shop(shop)
    data = client.execute(
        PRODUCT_SUGGESTIONS_QUERY,
        {"first": PRODUCTS_FIRST, "variantsFirst": VARIANTS_FIRST, "query": PRODUCTS_SEARCH},
    )
    nodes = ((data or {}).get("products") or {}).get("nodes") or []
    kept = [s for s in (_node_suggestion(node) for node in nodes) if s is not None]
    storefront_redis().set(_key(shop.pk), json.dumps(kept).encode(), ex=SUGGESTIONS_TTL_SECONDS)
    logger.info(
        "tracking.suggestions.refreshed",
        extra={"shop": shop.myshopify_domain, "read": len(nodes), "kept": len(kept)},
    )
    return len(kept)


def product_suggestions_drop(*, shop: Shop) -> None:
    try:
        storefront_redis().delete(_key(shop.pk))
    except redis.RedisError as exc:
        logger.warning("tracking.suggestions.unavailable", extra={"error": type(exc).__name__})


def product_suggestions_cached(*, shop: Shop) -> tuple[list[dict[str, Any]], str]:
    """The shop's kept list and a digest of it (for the page cache's stamp); ([], "") when
    there is none or Redis does not answer. One Redis GET, no Admin API call."""
    try:
        raw = storefront_redis().get(_key(shop.pk))
    except redis.RedisError as exc:
        logger.warning("tracking.suggestions.unavailable", extra={"error": type(exc).__name__})
        return [], ""
    kept = raw if isinstance(raw, bytes) else None
    return product_suggestions_rows(kept), product_suggestions_digest(kept)


def product_suggestions_key(*, shop: Shop) -> str:
    """Where the shop's list is kept: for a caller that reads it with something else in one
    round trip (tracking.page_cache.page_cache_get)."""
    return _key(shop.pk)


def product_suggestions_digest(raw: bytes | None) -> str:
    """The digest of the kept list as read ("" when there is none): a page cached with it is
    stale once it differs."""
    return hashlib.sha256(raw).hexdigest()[:16] if isinstance(raw, bytes) else ""


def product_suggestions_rows(raw: bytes | None) -> list[dict[str, Any]]:
    """The kept list as read; [] when there is none or it is not a list."""
    if not isinstance(raw, bytes):
        return []
    try:
        rows = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(rows, list):
        return []
    return [r for r in rows if isinstance(r, dict)]


def product_suggestions_for_order(
    rows: list[dict[str, Any]], *, held_product_ids: set[int]
) -> list[Suggestion]:
    """At most PAGE_PRODUCTS of the kept list, without the products the order holds."""
    chosen: list[Suggestion] = []
    for row in rows:
        try:
            suggestion = Suggestion(
                product_id=int(row["product_id"]),
                title=str(row["title"]),
                url=safe_url(str(row["url"]), https_only=True),
                image_url=safe_url(str(row.get("image_url") or ""), https_only=True),
                image_alt=str(row.get("image_alt") or ""),
                price=Decimal(str(row["price"])),
                currency=str(row["currency"]),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation):
            continue
        if suggestion.product_id in held_product_ids or not suggestion.url:
            continue
        chosen.append(suggestion)
        if len(chosen) == PAGE_PRODUCTS:
            break
    return chosen


# The tracking page's display choices the merchant edits in the admin (TrackingSettings).
PAGE_SETTINGS_FIELDS: tuple[str, ...] = (
    "show_line_items",
    "show_event_timeline",
    "show_return_link",
    "show_product_suggestions",
    "is_standalone_page",
)


def tracking_page_settings_update(*, shop: Shop, values: dict[str, bool]) -> None:
    """Save the page's display choices. Turning "you may also like" on reads the products at
    once (a task on the syncs queue) rather than at the next hourly round; turning it off
    drops the kept list, so no page shows it again."""
    from django.db import transaction

    from shopapp.background.queue import Queues
    from shopapp.background.services import task_defer
    from tracking.common import tracking_settings_get
    from tracking.jobs import (
        SHOP_JOB_RETRY_INTERVALS_S,
        SHOP_JOB_TIMEOUT_S,
        product_suggestions_refresh_job,
    )

    unknown = set(values) - set(PAGE_SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not a tracking page setting: {sorted(unknown)}")
    with transaction.atomic():
        row = tracking_settings_get(shop=shop)
        was_shown = row.show_product_suggestions
        for name, value in values.items():
            setattr(row, name, bool(value))
        row.save(update_fields=[*values, "updated_at"])
        if row.show_product_suggestions and not was_shown:
            task_defer(
                product_suggestions_refresh_job,
                shop=shop,
                kwargs={"shop_id": shop.pk},
                key=f"tracking.suggestions:{shop.pk}",
                queue=Queues.SYNCS,
                timeout_s=SHOP_JOB_TIMEOUT_S,
                retry_intervals_s=SHOP_JOB_RETRY_INTERVALS_S,
            )
        elif was_shown and not row.show_product_suggestions:
            transaction.on_commit(lambda: product_suggestions_drop(shop=shop))
    logger.info(
        "tracking.page_settings.saved",
        extra={"shop": shop.myshopify_domain, **{k: bool(v) for k, v in values.items()}},
    )

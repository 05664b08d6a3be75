"""Exchange for a different product: the shop's exchangeable catalogue, kept in Redis, and the
live check of the variants a shopper chose.

    cron, hourly ─ exchange_catalogue_refresh_all_job ─ per shop whose policy offers it (task
        row, syncs queue; also at once when the merchant turns it on) ─
        exchange_catalogue_refresh_job ─ Admin API ``products`` (active) ─ kept: variants
        available for sale, with their price, and the product's image ─ Redis, for
        CATALOGUE_TTL_SECONDS
    portal items page ─ one Redis GET (no Admin API call) ─ the products offered in exchange
    portal submit ─ exchange_variants_live: one query for the variants chosen (availableForSale,
        price, product status), so a variant sold out since the page refuses the submission

Redis, not a table, for the reasons tracking.suggestions gives: a cache of Shopify's catalogue
that a flushed Redis or a failed round only empties until the next round (the portal then
offers only the item's own sizes and colours), and the TTL drops a shop no longer refreshed.
No products/* webhooks: a page an hour behind costs nothing, since the submission checks the
chosen variant live, while every product edit of a large shop would cost a delivery.

The price difference (returns.eligibility.return_quote): an exchange for something cheaper
refunds the difference to the original payment when the return is processed; one for
something dearer is allowed, and the shopper owes the difference: returnProcess books the
exchange and Shopify holds its fulfillment (AWAITING_PAYMENT) until the order's outstanding
balance is paid (shopify.dev "Migrate to return processing": only buyer-owes exchanges are
held). The app records that balance on the return (``amount_outstanding``) and the review tells
the shopper before they submit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import redis

from shopapp.admin_api.client import AdminApiClient, admin_client_for_shop
from shopapp.models import Shop
from shopapp.orders.images import image_url_clean
from shopapp.storefront.redis_store import storefront_key_prefix, storefront_redis

logger = logging.getLogger(__name__)

# Products read per round: a small shop's whole range; a large one's newest, which is what
# shoppers exchange for. Variants per product: every size × colour of a garment.
PRODUCTS_FIRST = 50
VARIANTS_FIRST = 20
# The list lives three hourly rounds: one or two failing (Shopify down, throttled) keep it.
CATALOGUE_TTL_SECONDS = 3 * 3600
MAX_TITLE_LENGTH = 255
# Variants checked per live query (aliases of productVariant(id:)): a return has a few items.
VARIANTS_PER_LIVE_QUERY = 25

# Requested cost per page (shopify.dev "GraphQL Admin API rate limits": object 1, connection
# 2 + first × item): 2 + 25 × (product 1 + featuredMedia 3 + variants 2 + 20 × 1) = 652,
# under the 1,000-point single-query limit (50 products in one page would be 1,302).
EXCHANGE_CATALOGUE_QUERY = """
query ReturnExchangeCatalogue(
  $first: Int!
  $variantsFirst: Int!
  $query: String!
  $after: String
) {
  products(first: $first, after: $after, query: $query, sortKey: CREATED_AT, reverse: true) {
    nodes {
      legacyResourceId
      title
      status
      featuredMedia {
        preview {
          image {
            url(transform: {maxWidth: 128, maxHeight: 128})
            altText
          }
        }
      }
      variants(first: $variantsFirst) {
        nodes {
          legacyResourceId
          title
          price
          availableForSale
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""
PRODUCTS_PER_PAGE = 25
# Shopify's product search syntax: active products only (drafts and archived are not sold).
PRODUCTS_SEARCH = "status:active"


@dataclass(frozen=True)
class CatalogueVariant:
    variant_id: int
    title: str
    price: Decimal


@dataclass(frozen=True)
class CatalogueProduct:
    product_id: int
    title: str
    image_url: str
    image_alt: str
    variants: tuple[CatalogueVariant, ...]

    def variant_label(self, variant: CatalogueVariant) -> str:
        """The shopper's words for one variant: "Rain Jacket — M / Navy", or the product's
        title alone for its only variant."""
        if variant.title in ("", "Default Title"):
            return self.title
        return f"{self.title} — {variant.title}"


def _key(shop_id: int) -> str:
    return storefront_key_prefix() + f"returns:catalogue:{shop_id}"


def _node_product(node: dict[str, Any]) -> dict[str, Any] | None:
    """One product node as kept, or None when nothing of it can be exchanged for."""
    if not isinstance(node, dict) or node.get("status") != "ACTIVE":
        return None
    try:
        product_id = int(node.get("legacyResourceId") or 0)
    except (TypeError, ValueError):
        return None
    title = str(node.get("title") or "").strip()[:MAX_TITLE_LENGTH]
    if product_id <= 0 or not title:
        return None
    variants = []
    for variant in ((node.get("variants") or {}).get("nodes")) or []:
        if not isinstance(variant, dict) or not variant.get("availableForSale"):
            continue
        try:
            variant_id = int(variant.get("legacyResourceId") or 0)
            price = Decimal(str(variant.get("price")))
        except (TypeError, ValueError, InvalidOperation):
            continue
        if variant_id <= 0 or not price.is_finite() or price < 0:
            continue
        variants.append(
            {
                "variant_id": variant_id,
                "title": str(variant.get("title") or "").strip()[:MAX_TITLE_LENGTH],
                "price": str(price),
            }
        )
    if not variants:
        return None
    image = (((node.get("featuredMedia") or {}).get("preview")) or {}).get("image") or {}
    return {
        "product_id": product_id,
        "title": title,
        "image_url": image_url_clean(str(image.get("url") or "")),
        "image_alt": str(image.get("altText") or "")[:MAX_TITLE_LENGTH],
        "variants": variants,
    }


def exchange_catalogue_refresh(*, shop: Shop, client: AdminApiClient | None = None) -> int:
    """Read the shop's active products through the Admin API and keep those with a variant
    for sale, for CATALOGUE_TTL_SECONDS. Returns how many products were kept. A shop whose
    policy no longer offers it has its list dropped instead."""
    from returns.policy import return_policy_get

    if not return_policy_get(shop=shop).allow_product_exchange:
        exchange_catalogue_drop(shop=shop)
        return 0
    client = client or admin_client_for_shop(shop)
    kept: list[dict[str, Any]] = []
    read = 0
    after: str | None = None
    while read < PRODUCTS_FIRST:
        data = client.execute(
            EXCHANGE_CATALOGUE_QUERY,
            {
                "first": min(PRODUCTS_PER_PAGE, PRODUCTS_FIRST - read),
                "variantsFirst": VARIANTS_FIRST,
                "query": PRODUCTS_SEARCH,
                "after": after,
            },
        )
        products = (data or {}).get("products") or {}
        nodes = products.get("nodes") or []
        read += len(nodes)
        kept += [p for p in (_node_product(node) for node in nodes) if p is not None]
        page = products.get("pageInfo") or {}
        if not nodes or not page.get("hasNextPage") or not page.get("endCursor"):
            break
        after = str(page["endCursor"])
    storefront_redis().set(_key(shop.pk), json.dumps(kept).encode(), ex=CATALOGUE_TTL_SECONDS)
    logger.info(
        "returns.catalogue.refreshed",
        extra={"shop": shop.myshopify_domain, "read": read, "kept": len(kept)},
    )
    return len(kept)


def exchange_catalogue_drop(*, shop: Shop) -> None:
    try:
        storefront_redis().delete(_key(shop.pk))
    except redis.RedisError as exc:
        logger.warning("returns.catalogue.unavailable", extra={"error": type(exc).__name__})


def exchange_catalogue_cached(*, shop: Shop) -> list[CatalogueProduct]:
    """The shop's kept catalogue; [] when there is none or Redis does not answer. One Redis
    GET, no Admin API call. Rows that do not read back as expected are skipped."""
    try:
        raw = storefront_redis().get(_key(shop.pk))
    except redis.RedisError as exc:
        logger.warning("returns.catalogue.unavailable", extra={"error": type(exc).__name__})
        return []
    if not isinstance(raw, bytes):
        return []
    try:
        rows = json.loads(raw)
    except ValueError:
        return []
    products = []
    for row in rows if isinstance(rows, list) else []:
        try:
            products.append(
                CatalogueProduct(
                    product_id=int(row["product_id"]),
                    title=str(row["title"]),
                    image_url=image_url_clean(str(row.get("image_url") or "")),
                    image_alt=str(row.get("image_alt") or ""),
                    variants=tuple(
                        CatalogueVariant(
                            variant_id=int(v["variant_id"]),
                            title=str(v["title"]),
                            price=Decimal(str(v["price"])),
                        )
                        for v in row["variants"]
                    ),
                )
            )
        except (KeyError, TypeError, ValueError, InvalidOperation):
            continue
    return products


@dataclass(frozen=True)
class LiveVariant:
    variant_id: int
    product_id: int
    is_available: bool
    price: Decimal


def _variants_live_query(count: int) -> str:
    params = ", ".join(f"$v{i}: ID!" for i in range(count))
    aliases = "\n".join(
        f"  v{i}: productVariant(id: $v{i}) {{ legacyResourceId availableForSale price "
        "product { legacyResourceId status } }"
        for i in range(count)
    )
    return f"query ReturnExchangeVariantsLive({params}) {{\n{aliases}\n}}"


def exchange_variants_live(*, shop: Shop, variant_ids: list[int]) -> dict[int, LiveVariant]:
    """{variant id: what Shopify says of it now}, one query per VARIANTS_PER_LIVE_QUERY; a
    variant Shopify does not have (deleted, another shop's) is left out, and one of a product
    no longer active reads as unavailable. Shopify errors propagate (AdminApiError)."""
    ids = sorted(set(variant_ids))
    found: dict[int, LiveVariant] = {}
    if not ids:
        return found
    client = admin_client_for_shop(shop)
    for start in range(0, len(ids), VARIANTS_PER_LIVE_QUERY):
        chunk = ids[start : start + VARIANTS_PER_LIVE_QUERY]
        variables = {f"v{i}": f"gid://shopify/ProductVariant/{vid}" for i, vid in enumerate(chunk)}
        data = client.execute(_variants_live_query(len(chunk)), variables) or {}
        for i, variant_id in enumerate(chunk):
            node = data.get(f"v{i}")
            if not isinstance(node, dict):
                continue
            product = node.get("product") or {}
            try:
                found[variant_id] = LiveVariant(
                    variant_id=variant_id,
                    product_id=int(product.get("legacyResourceId") or 0),
                    is_available=bool(node.get("availableForSale"))
                    and product.get("status") == "ACTIVE",
                    price=Decimal(str(node.get("price"))),
                )
            except (TypeError, ValueError, InvalidOperation):
                continue
    return found

"""Product pictures of an order's lines, read from the Admin API in the background.

Shopify's orders webhooks (REST-shaped) carry no image, so a line's picture is read once the
order is here:

    order_upsert ─ new order, or new lines on one ─ order_line_images_defer ─▶ Task (syncs)
        one pending read per order, however often the order is delivered again
    worker ─ order_line_images_refresh_job(order_id) ─ order_line_images_refresh
        order(id) { lineItems { id image { url(transform: 128 px) } } }, 50 lines a page
        └▶ LineItem.image_url, written only where it changed

The orders webhooks never write ``image_url`` (shopapp.orders.services._line_item_fields has
no such field), so a redelivered orders/updated keeps it; each read stores what Shopify says
now (a picture the merchant removed is cleared). A written line moves ``Order.version``
(PostgreSQL trigger, shopapp migration 0007), so the cached tracking page shows the picture.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from shopapp.admin_api.client import admin_client_for_shop
from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import LineItem, Order, Shop

logger = logging.getLogger(__name__)

# The size asked of Shopify's CDN, in pixels: twice the largest box a picture is shown in
# (64 CSS px in emails, 56 on the tracking page), for HiDPI screens.
IMAGE_TRANSFORM_PX = 128
# Lines per page: line item 1 + image 1 (Shopify's cost rules: an object 1), so a page
# requests 2 + 50 × 2 + the order = 103 points.
LINE_ITEMS_PAGE_SIZE = 50
# Longer than any CDN URL Shopify hands out; LineItem.image_url's column holds 2,048.
IMAGE_URL_MAX = 2048

LINE_ITEM_IMAGES_QUERY = """
query LineItemImages($id: ID!, $first: Int!, $after: String, $transform: ImageTransformInput) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id image { url(transform: $transform) } }
    }
  }
}
"""


def image_url_clean(value: Any) -> str:
    """Shopify's image URL fit for ``src`` in a page and an email: absolute http(s) only
    (a protocol-relative ``//cdn…`` becomes https), else ""."""
    url = str(value or "").strip()
    if url.startswith("//"):
        url = "https:" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in {"http", "https"} or not parts.netloc or len(url) > IMAGE_URL_MAX:
        return ""
    if any(c in url for c in "\"'<> \t\r\n"):
        return ""
    return url


def _numeric_id(gid: Any) -> int | None:
    tail = str(gid or "").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def line_images_fetch(client: Any, *, order: Order) -> dict[int, str]:
    """{line item id: image URL or ""} for every line of the order Shopify still has."""
    order_gid = order.admin_graphql_api_id or f"gid://shopify/Order/{order.shopify_id}"
    found: dict[int, str] = {}
    after = None
    while True:
        data = client.execute(
            LINE_ITEM_IMAGES_QUERY,
            {
                "id": order_gid,
                "first": LINE_ITEMS_PAGE_SIZE,
                "after": after,
                "transform": {"maxWidth": IMAGE_TRANSFORM_PX, "maxHeight": IMAGE_TRANSFORM_PX},
            },
        )
        lines = (data.get("order") or {}).get("lineItems") or {}
        for node in lines.get("nodes") or []:
            line_id = _numeric_id(node.get("id"))
            if line_id is not None:
                found[line_id] = image_url_clean((node.get("image") or {}).get("url"))
        page = lines.get("pageInfo") or {}
        if not page.get("hasNextPage") or not page.get("endCursor"):
            return found
        after = page["endCursor"]


def order_line_images_refresh(*, shop: Shop, order: Order) -> int:
    """Read the order's line pictures from Shopify and store them; returns how many lines
    changed. A line Shopify no longer lists keeps what it had."""
    if order.shop_id != shop.pk:
        raise ValueError("order does not belong to shop")
    images = line_images_fetch(admin_client_for_shop(shop), order=order)
    changed = [
        line
        for line in LineItem.objects.filter(shop=shop, order=order, shopify_id__in=list(images))
        if line.image_url != images[line.shopify_id]
    ]
    for line in changed:
        line.image_url = images[line.shopify_id]
    if changed:
        # Only what changed: each written line moves the order's version (the page cache).
        LineItem.objects.bulk_update(changed, ["image_url"])
    logger.info(
        "orders.line_images.refreshed",
        extra={
            "shop": shop.myshopify_domain,
            "order_id": order.shopify_id,
            "lines": len(images),
            "changed": len(changed),
        },
    )
    return len(changed)


def order_line_images_defer(*, shop: Shop, order: Order) -> None:
    """Read the order's line pictures after this transaction commits (one pending read per
    order)."""
    from shopapp.orders.jobs import order_line_images_refresh_job

    task_defer(
        order_line_images_refresh_job,
        shop=shop,
        kwargs={"order_id": order.pk},
        key=f"orders.line-images:{order.pk}",
        queue=Queues.SYNCS,
    )

"""The variables a message template sees: built at send time from the current rows.

This dict is the contract with the templates (notifications/rendering.py and the merchant's
Liquid). Exactly these keys, nothing else (no model objects: templates are sandboxed):

    shop            {name, email, domain}             domain = the myshopify domain
    order           {name, number, created_at, total_price, currency,
                     line_items: [{title, variant_title, quantity}]}
    customer        {first_name}
    shipment        {carrier, tracking_number, tracking_url, stage,
                     estimated_delivery_at, delivered_at}     or None (order-level news)
    tracking_url    the storefront tracking page https://<shop>/<prefix>/<subpath>/track/<token>
    return_url      the storefront returns portal https://<shop>/<prefix>/<subpath>/returns
    unsubscribe_url the signed one-click unsubscribe URL for this recipient and channel

Types: strings everywhere ("" when unknown), except ``order.number`` (int or None),
``line_items[].quantity`` (int) and the datetimes (``order.created_at``,
``shipment.estimated_delivery_at``, ``shipment.delivered_at``): timezone-aware ``datetime``
in the recipient's timezone, or None. Money is a string with two decimals ("49.90") plus
``order.currency`` (ISO 4217). ``shipment.stage`` is a tracking.models.Stage value.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from django.core import signing

from notifications.unsubscribe import unsubscribe_url
from shopapp.models import Order, Shop

# Same salt and payload as tracking.tokens, so a link built here opens the same page.
_TRACKING_LINK_SALT = "tracking.link.v1"


def _proxy_base(shop: Shop) -> str:
    from shopapp.storefront import storefront_proxy_url

    return storefront_proxy_url(shop)


def order_tracking_url(*, shop: Shop, order: Order) -> str:
    """The storefront tracking page of ``order``: tracking's own helper when it is there."""
    try:
        from tracking.tokens import tracking_page_url
    except ImportError:
        # tracking.tokens not present: the same token shape (signed [shop id, order id]).
        token = signing.dumps([order.shop_id, order.pk], salt=_TRACKING_LINK_SALT, compress=False)
        return f"{_proxy_base(shop)}/track/{token}"
    return tracking_page_url(order, shop=shop)


def order_return_url(*, shop: Shop) -> str:
    return f"{_proxy_base(shop)}/returns"


def _local(value: datetime | None, zone: tzinfo) -> datetime | None:
    return value.astimezone(zone) if value else None


def _shipment_context(shipment: Any, zone: tzinfo) -> dict[str, Any] | None:
    if shipment is None:
        return None
    numbers = shipment.tracking_numbers or []
    urls = shipment.tracking_urls or []
    return {
        "carrier": shipment.tracking_company or "",
        "tracking_number": str(numbers[0]) if numbers else "",
        "tracking_url": str(urls[0]) if urls else "",
        "stage": shipment.stage or "",
        "estimated_delivery_at": _local(shipment.estimated_delivery_at, zone),
        "delivered_at": _local(shipment.delivered_at, zone),
    }


def message_context_build(
    *,
    shop: Shop,
    order: Order,
    shipment: Any | None,
    channel: str,
    recipient: str,
    zone: tzinfo,
) -> dict[str, Any]:
    """The template context for one message; ``zone`` is the recipient's timezone."""
    line_items = [
        {
            "title": item.title or "",
            "variant_title": item.variant_title or "",
            "quantity": int(item.quantity or 0),
        }
        for item in order.line_items.all().order_by("id")
    ]
    return {
        "shop": {
            "name": shop.name or shop.myshopify_domain,
            "email": shop.email or "",
            "domain": shop.myshopify_domain,
        },
        "order": {
            "name": order.name or "",
            "number": order.order_number,
            "created_at": _local(order.shopify_created_at or order.created_at, zone),
            "total_price": f"{order.total_price:.2f}",
            "currency": order.currency or shop.currency or "",
            "line_items": line_items,
        },
        "customer": {"first_name": order.customer_first_name or ""},
        "shipment": _shipment_context(shipment, zone),
        "tracking_url": order_tracking_url(shop=shop, order=order),
        "return_url": order_return_url(shop=shop),
        "unsubscribe_url": unsubscribe_url(shop_id=shop.pk, channel=channel, address=recipient)
        if recipient
        else "",
    }

"""The variables a message template sees: the message's snapshot of the news, the order.

This dict is the contract with the templates (notifications/rendering.py and the merchant's
Liquid). Exactly these keys, nothing else (no model objects: templates are sandboxed):

    shop            {name, email, domain}             domain = the myshopify domain
    order           {name, number, created_at, total_price, currency,
                     line_items: [item]}              every line of the order
    customer        {first_name}
    items           [item]   what this message is about: its parcels' items, the return's
                             items, else the order's lines
    shipment        the message's first parcel, or None (order-level news)
    shipments       [parcel] every parcel of the message (split shipments share one message)
                    parcel = {carrier, tracking_number, tracking_url, tracking_numbers:
                              [{number, url}], stage, estimated_delivery_at, delivered_at,
                              estimate, items: [item], is_replacement}
                    estimate = None when ``estimated_delivery_at`` is Shopify's (or there is
                              none), else the one predicted from the shop's deliveries:
                              {earliest, latest (dates), is_range, deliveries (≥ 20), carrier
                              ("" for every carrier), place (the region, or the country in
                              the recipient's language)}: "Based on {deliveries} deliveries to
                              {place} by {carrier}"
    delay           {kind} or None
    return          {name, status, status_url, instructions, label_url, resolution
                     ("refund", "store_credit", "exchange", "mixed"), refund_amount,
                     store_credit_amount, currency, decline_reason, items: [item]} or None
    tracking_url    the storefront tracking page https://<shop>/<prefix>/<subpath>/track/<token>
    return_url      the return's own status page when the message is about a return, else
                    the storefront returns portal
    unsubscribe_url the signed one-click unsubscribe URL for this recipient and channel
    review_url      a review request's rating page on the storefront, signed for this order
                    and message: https://<shop>/<prefix>/<subpath>/review/<token>; append
                    ``?rating=1`` … ``?rating=5`` for a star chosen in advance (the shopper
                    confirms it on the page: notifications.reviews). "" in other messages
    brand           the shop's look (shopapp.branding.look.BrandLook): {accent, accent_ink,
                    accent_text, text, muted, background, soft, line, font, font_stack,
                    logo_url, logo_width, logo_height, logo_display_width, support_email,
                    support_phone, footer}; colours are validated #rrggbb
    problem         {kind ("not_received", "damaged", "wrong_item"), description, carrier,
                     tracking_numbers: [str]} when the message is about a problem the shopper
                    reported, else None
    progress        {rank, stage, is_issue} for news about parcels, else None: ``rank`` is the
                    main line's step (0 ordered … 4 delivered) of the message's least advanced
                    parcel; ``is_issue`` when that parcel is delayed or has a problem

    item = {title, variant_title, quantity, image_url, replaces}
                    image_url: Shopify's picture of the product (absolute http(s), 128 px), or ""

Types: strings everywhere ("" when unknown), except ``order.number`` (int or None),
``quantity`` and ``deliveries`` (int), ``is_replacement`` and ``is_range`` (bool), the
datetimes (``order.created_at``, ``estimated_delivery_at``, ``delivered_at``): timezone-aware
``datetime`` in the recipient's timezone, or None; and ``estimate.earliest``/``latest``: calendar
dates (the shop's days, as the tracking page shows them). Money is a string with two
decimals ("49.90") plus a currency (ISO 4217).
``stage`` is a notifications.news.ShipmentStage value.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from babel import Locale, UnknownLocaleError

from notifications.news import MAIN_LINE_RANK, ShipmentStage, predicted_from_snapshot
from notifications.reviews import review_url
from notifications.unsubscribe import unsubscribe_url
from shopapp.branding.look import BrandLook
from shopapp.branding.selectors import brand_look_or_default
from shopapp.models import Order, Shop
from shopapp.storefront import order_page_url, storefront_proxy_url


def _local(value: Any, zone: tzinfo) -> datetime | None:
    if isinstance(value, str) and value:
        value = datetime.fromisoformat(value)
    return value.astimezone(zone) if isinstance(value, datetime) else None


def _item(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": str(data.get("title") or ""),
        "variant_title": str(data.get("variant_title") or ""),
        "quantity": int(data.get("quantity") or 0),
        "image_url": str(data.get("image_url") or ""),
        "replaces": str(data.get("replaces") or ""),
    }


def _country_name(code: str, language: str) -> str:
    try:
        locale = Locale.parse((language or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        locale = Locale("en")
    return str(locale.territories.get(code.upper(), code.upper()))


def _estimate(data: Any, language: str) -> dict[str, Any] | None:
    """The parcel's predicted estimate for the templates, or None (Shopify's, or none)."""
    predicted = predicted_from_snapshot(data)
    if predicted is None:
        return None
    return {
        "earliest": predicted.earliest,
        "latest": predicted.latest,
        "is_range": predicted.earliest != predicted.latest,
        "deliveries": predicted.deliveries,
        "carrier": predicted.carrier,
        "place": predicted.region or _country_name(predicted.country_code, language),
    }


def _parcel(data: dict[str, Any], zone: tzinfo, language: str = "en") -> dict[str, Any]:
    numbers = [str(n) for n in data.get("tracking_numbers") or []]
    urls = [str(u) for u in data.get("tracking_urls") or []]
    items = [_item(i) for i in data.get("items") or []]
    return {
        "carrier": str(data.get("carrier") or ""),
        "tracking_number": numbers[0] if numbers else "",
        "tracking_url": urls[0] if urls else "",
        "tracking_numbers": [
            {"number": number, "url": urls[index] if index < len(urls) else ""}
            for index, number in enumerate(numbers)
        ],
        "stage": str(data.get("stage") or ""),
        "estimated_delivery_at": _local(data.get("estimated_delivery_at"), zone),
        "delivered_at": _local(data.get("delivered_at"), zone),
        "estimate": _estimate(data.get("predicted"), language),
        "items": items,
        "is_replacement": bool(items) and all(i["replaces"] for i in items),
    }


def _return(data: dict[str, Any]) -> dict[str, Any] | None:
    if data.get("type") != "return":
        return None
    return {
        "name": str(data.get("name") or ""),
        "status": str(data.get("status") or ""),
        "status_url": str(data.get("status_url") or ""),
        "instructions": str(data.get("instructions") or ""),
        "label_url": str(data.get("label_url") or ""),
        "resolution": str(data.get("resolution") or "refund"),
        "refund_amount": str(data.get("refund_amount") or ""),
        "store_credit_amount": str(data.get("store_credit_amount") or ""),
        "currency": str(data.get("currency") or ""),
        "decline_reason": str(data.get("decline_reason") or ""),
        "items": [_item(i) for i in data.get("items") or []],
    }


def _problem(data: dict[str, Any]) -> dict[str, Any] | None:
    if data.get("type") != "problem":
        return None
    return {
        "kind": str(data.get("kind") or ""),
        "description": str(data.get("description") or ""),
        "carrier": str(data.get("carrier") or ""),
        "tracking_numbers": [str(n) for n in data.get("tracking_numbers") or []],
    }


def _order_lines(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "title": item.title or "",
            "variant_title": item.variant_title or "",
            "quantity": int(item.current_quantity or item.quantity or 0),
            "image_url": item.image_url or "",
            "replaces": "",
        }
        for item in order.line_items.all().order_by("id")
    ]


# Stages off the main line, placed on it: an attempt or a pickup point is the last step before
# delivery; a delay or a problem holds the parcel where it travels.
_OFF_LINE_RANK: dict[str, int] = {
    ShipmentStage.ATTEMPTED_DELIVERY: 3,
    ShipmentStage.READY_FOR_PICKUP: 3,
    ShipmentStage.DELAYED: 2,
    ShipmentStage.PROBLEM: 2,
}
_ISSUES = frozenset({ShipmentStage.DELAYED, ShipmentStage.PROBLEM})
# The logo's box in an email header, in CSS pixels (its stored size is twice that for HiDPI).
LOGO_MAX_WIDTH_PX = 200
LOGO_MAX_HEIGHT_PX = 56


def _rank(parcel: dict[str, Any]) -> int:
    if parcel["delivered_at"] is not None:
        return MAIN_LINE_RANK[ShipmentStage.DELIVERED]
    stage = parcel["stage"]
    return MAIN_LINE_RANK.get(stage, _OFF_LINE_RANK.get(stage, MAIN_LINE_RANK["shipped"]))


def progress_build(shipments: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Where the message's parcels are on the main line: as far as the least advanced one."""
    if not shipments:
        return None
    slowest = min(shipments, key=_rank)
    return {
        "rank": _rank(slowest),
        "stage": slowest["stage"],
        "is_issue": slowest["stage"] in _ISSUES and slowest["delivered_at"] is None,
    }


def brand_context(look: BrandLook) -> dict[str, Any]:
    brand = look.as_context()
    width, height = look.logo_width // 2 or look.logo_width, look.logo_height // 2
    if width and height:
        scale = min(1.0, LOGO_MAX_WIDTH_PX / width, LOGO_MAX_HEIGHT_PX / max(height, 1))
        width = max(1, round(width * scale))
    brand["logo_display_width"] = width
    return brand


def message_context_build(
    *,
    shop: Shop,
    order: Order,
    snapshot: dict[str, Any],
    channel: str,
    recipient: str,
    zone: tzinfo,
    language: str = "en",
    review_message_id: int | None = None,
) -> dict[str, Any]:
    """The template context for one message; ``zone`` is the recipient's timezone,
    ``language`` the message's (places are named in it); ``review_message_id``: the message
    is a review request, whose rating page ``review_url`` names."""
    news = snapshot.get("news") or {}
    shipments = [_parcel(s, zone, language) for s in snapshot.get("shipments") or []]
    return_ = _return(news)
    line_items = _order_lines(order)
    if shipments:
        items = [item for parcel in shipments for item in parcel["items"]] or line_items
    elif return_ is not None and return_["items"]:
        items = return_["items"]
    else:
        items = line_items
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
        "items": items,
        "shipment": shipments[0] if shipments else None,
        "shipments": shipments,
        "delay": {"kind": str(news.get("kind") or "")} if news.get("type") == "delay" else None,
        "return": return_,
        "problem": _problem(news),
        "tracking_url": order_page_url(shop=shop, order=order),
        "return_url": (return_ or {}).get("status_url") or storefront_proxy_url(shop, "returns"),
        "review_url": review_url(shop=shop, order_id=order.pk, message_id=review_message_id)
        if review_message_id is not None
        else "",
        "unsubscribe_url": unsubscribe_url(shop_id=shop.pk, channel=channel, address=recipient)
        if recipient
        else "",
        "brand": brand_context(brand_look_or_default(shop=shop)),
        "progress": progress_build(shipments),
    }

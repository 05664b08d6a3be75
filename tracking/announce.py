"""Tracking's side of the seam to notifications: timeline lines, and the news they announce.

    a new timeline line ─ may announce, not stale ─▶ notification_trigger(trigger, news)
                        └ otherwise ──────────────▶ notification_news_record(news)
    news = ShipmentNews built from the shipment as it now is: Shopify's fulfillment id, the
           stage, carrier, tracking numbers and links, the estimate (Shopify's, else the one
           predicted from the shop's deliveries), and only the items that
           travel in this parcel (an exchange's replacement says what it replaces)

Notifications keeps the facts either way, so a message due later checks the parcel's real
stage; only news that is new and fresh starts a sequence.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from notifications.news import (
    DelayNews,
    Item,
    News,
    OrderNews,
    PredictedEstimate,
    ShipmentNews,
    ShipmentStage,
)
from notifications.services import notification_news_record, notification_trigger
from shopapp.models import LineItem, Order, Shop
from shopapp.orders.selectors import line_item_replacements
from shopapp.orders.services import order_event_record
from tracking.branding import safe_url
from tracking.common import jsonable
from tracking.estimates import DeliveryEstimate, delivery_estimate_at, delivery_estimate_predict
from tracking.models import Shipment, ShipmentLineItem
from tracking.stages import FULFILLMENT_FAILED_STATUSES

logger = logging.getLogger(__name__)


def shipment_detail(shipment: Shipment) -> dict[str, Any]:
    """What the timeline line about this shipment keeps; no shopper data."""
    return {
        "shipment_id": shipment.pk,
        "fulfillment_id": shipment.fulfillment_id,
        "stage": shipment.stage,
        "tracking_company": shipment.tracking_company,
        "tracking_numbers": list(shipment.tracking_numbers or []),
        "tracking_urls": list(shipment.tracking_urls or []),
        "estimated_delivery_at": jsonable(shipment.estimated_delivery_at),
        "delivered_at": jsonable(shipment.delivered_at),
    }


def _shipped_quantities(shipment: Shipment) -> dict[int, int]:
    return dict(
        ShipmentLineItem.objects.filter(shipment=shipment).values_list(
            "line_item_shopify_id", "quantity"
        )
    )


def _items(shipment: Shipment, shipped: dict[int, int]) -> tuple[Item, ...]:
    lines = {
        line.shopify_id: line
        for line in LineItem.objects.filter(
            shop_id=shipment.shop_id, order_id=shipment.order_id, shopify_id__in=list(shipped)
        )
    }
    replaces = line_item_replacements(
        shop_id=shipment.shop_id, order_id=shipment.order_id, line_item_ids=list(shipped)
    )
    return tuple(
        Item(
            title=lines[line_id].title,
            variant_title=lines[line_id].variant_title,
            quantity=quantity,
            image_url=safe_url(lines[line_id].image_url),
            replaces=replaces.get(line_id, ""),
        )
        for line_id, quantity in sorted(shipped.items())
        if line_id in lines and quantity > 0
    )


def _is_whole_order(shipment: Shipment, shipped: dict[int, int]) -> bool:
    """Whether this parcel carries everything the order ships: no other parcel exists, and
    none is to come (every line that needs shipping is in it)."""
    others = (
        Shipment.objects.filter(shop_id=shipment.shop_id, order_id=shipment.order_id)
        .exclude(pk=shipment.pk)
        .exclude(status__in=FULFILLMENT_FAILED_STATUSES)
    )
    if not shipped or others.exists():
        return False
    to_ship = LineItem.objects.filter(
        shop_id=shipment.shop_id,
        order_id=shipment.order_id,
        requires_shipping=True,
        current_quantity__gt=0,
    ).values_list("shopify_id", "current_quantity")
    return all(shipped.get(line_id, 0) >= quantity for line_id, quantity in to_ship)


def _predicted(estimate: DeliveryEstimate | None) -> PredictedEstimate | None:
    if estimate is None:
        return None
    return PredictedEstimate(
        earliest=estimate.earliest,
        latest=estimate.latest,
        deliveries=estimate.deliveries,
        carrier=estimate.carrier_label,
        country_code=estimate.country_code,
        # Named as the page names it (DeliveryEstimate.place); a country is named by the
        # recipient's language in notifications.
        region=estimate.place() if estimate.province_code else "",
    )


def shipment_news(shipment: Shipment, *, happened_at: datetime, is_stale: bool) -> ShipmentNews:
    """The parcel as it is now, for notifications."""
    shipped = _shipped_quantities(shipment)
    # None when Shopify gave an estimate: the emails then show Shopify's one date.
    predicted = delivery_estimate_predict(shop=shipment.shop, shipment=shipment)
    estimated = shipment.estimated_delivery_at
    if estimated is None and predicted is not None:
        estimated = delivery_estimate_at(shop=shipment.shop, shipment=shipment, predicted=predicted)
    return ShipmentNews(
        fulfillment_id=shipment.fulfillment_id,
        stage=ShipmentStage(shipment.stage),
        happened_at=happened_at,
        carrier=shipment.tracking_company,
        tracking_numbers=tuple(str(n) for n in shipment.tracking_numbers or ()),
        tracking_urls=tuple(str(u) for u in shipment.tracking_urls or ()),
        # Shopify's, else the last day of ours from the shop's history (tracking.estimates).
        estimated_delivery_at=estimated,
        predicted=_predicted(predicted),
        delivered_at=shipment.delivered_at,
        items=_items(shipment, shipped),
        is_stale=is_stale,
        is_whole_order=_is_whole_order(shipment, shipped),
    )


def delay_news(
    *, kind: str, detected_at: datetime, shipment: Shipment | None, is_stale: bool
) -> DelayNews:
    parcel = (
        shipment_news(shipment, happened_at=detected_at, is_stale=is_stale) if shipment else None
    )
    return DelayNews(kind=kind, detected_at=detected_at, shipment=parcel)


def all_delivered_news(*, delivered_at: datetime, shipments: list[Shipment]) -> OrderNews:
    return OrderNews(
        happened_at=delivered_at, fulfillment_ids=tuple(s.fulfillment_id for s in shipments)
    )


def timeline_and_announce(
    *,
    shop: Shop,
    order: Order,
    kind: str,
    occurred_at: datetime,
    source: str,
    summary: str,
    dedupe_key: str,
    trigger: str,
    detail: dict[str, Any],
    news: News,
    is_stale: bool,
    may_trigger: bool = True,
) -> bool:
    """One timeline line, and the news announced once, for a new line only (a correction or
    stale news only updates what notifications knows). Returns whether the line is new."""
    recorded = order_event_record(
        shop=shop,
        order=order,
        kind=kind,
        occurred_at=occurred_at,
        source=source,
        summary=summary + (" (late update, no message sent)" if is_stale else ""),
        detail=jsonable({**detail, "stale": is_stale}),
        dedupe_key=dedupe_key,
    )
    if recorded is None:
        return False
    if may_trigger and not is_stale:
        notification_trigger(shop=shop, order=order, trigger=trigger, news=news)
    else:
        notification_news_record(shop=shop, order=order, news=news)
    logger.info(
        "tracking.timeline.recorded",
        extra={
            "shop": shop.myshopify_domain,
            "order_id": order.shopify_id,
            "kind": kind,
            "stale": is_stale,
        },
    )
    return True

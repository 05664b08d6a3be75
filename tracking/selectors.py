"""Read queries for the storefront tracking page. Every function takes ``shop`` first and
scopes every query by it (DESIGN: a request signed for shop A never reads shop B's data).

The page's queries are a fixed set whatever an order holds (prefetches, no per-row queries):
the order, its line items, its shipments, their line items, their visible events, its open
delays. ``bench/tracking.py`` and the tests count them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model, Prefetch, QuerySet

from shopapp.branding.selectors import brand_look
from shopapp.models import LineItem, Order, Shop, ShopBranding
from shopapp.rawsql import (
    column_count,
    columns_of,
    db_datetime,
    instance_from_row,
    row_fetch_one,
    rows_fetch_together,
)
from shopapp.storefront.lookup import storefront_orders
from tracking.branding import Branding, tracking_branding
from tracking.forms import normalise_tracking_number
from tracking.models import (
    Delay,
    ProblemCase,
    Shipment,
    ShipmentLineItem,
    TrackingEvent,
    TrackingSettings,
)
from tracking.stages import FULFILLMENT_FAILED_STATUSES

# A logged-in customer's list: the orders a shopper could still be waiting for.
CUSTOMER_RECENT_ORDERS = 10
# Tracking numbers compared per typed number (a number is reused across carriers rarely).
MAX_LOOKUP_CANDIDATES = 5


def _visible_events() -> QuerySet[TrackingEvent]:
    # fulfillment_events/delete: the merchant withdrew the event; it stays for the admin only.
    return TrackingEvent.objects.filter(deleted_at__isnull=True).order_by("-happened_at", "-id")


def order_page_head(*, shop: Shop, order_id: int) -> Order | None:
    """The order row alone (one query, plain SQL: shopapp.rawsql): its ``version`` names the
    cached page, so a page served from the cache reads nothing more. The filters are
    ``storefront_orders``': this shop's, not deleted, not redacted."""
    return row_fetch_one(
        Order,
        "id = %s AND shop_id = %s AND deleted_at IS NULL AND redacted_at IS NULL",
        [order_id, shop.pk],
    )


# The order's shipments, for the statements that read their rows (plain SQL, below).
_ORDER_SHIPMENTS = (
    'SELECT s."id" FROM "tracking_shipment" s WHERE s."order_id" = %s AND s."shop_id" = %s'
)


def order_page_load(*, shop: Shop, order: Order) -> Order:
    """Fetch what ``order``'s tracking page shows: its line items, its shipments with their
    line items and visible events, its open delays and open problem cases. Six SELECTs whatever
    the order holds, sent as one round trip (shopapp.rawsql.rows_fetch_together: plain SQL, no
    queryset compiled on a page view), then attached as ``prefetch_related`` attaches them, so
    ``order.shipments.all()``, ``shipment.events.all()`` … read them."""
    ids = [order.pk, shop.pk]
    line_items, shipments, shipment_items, events, delays, cases = rows_fetch_together(
        [
            (LineItem, '"order_id" = %s AND "shop_id" = %s ORDER BY "id"', ids),
            (
                Shipment,
                '"order_id" = %s AND "shop_id" = %s ORDER BY "shopify_created_at", "id"',
                ids,
            ),
            (
                ShipmentLineItem,
                f'"shipment_id" IN ({_ORDER_SHIPMENTS}) AND "shop_id" = %s ORDER BY "id"',
                [*ids, shop.pk],
            ),
            (
                TrackingEvent,
                # fulfillment_events/delete: the merchant withdrew the event (admin only).
                f'"shipment_id" IN ({_ORDER_SHIPMENTS}) AND "shop_id" = %s'
                ' AND "deleted_at" IS NULL ORDER BY "happened_at" DESC, "id" DESC',
                [*ids, shop.pk],
            ),
            (
                Delay,
                '"order_id" = %s AND "shop_id" = %s AND "resolved_at" IS NULL'
                ' ORDER BY "detected_at", "id"',
                ids,
            ),
            (
                ProblemCase,
                '"order_id" = %s AND "shop_id" = %s AND "status" = %s ORDER BY "created_at", "id"',
                [*ids, ProblemCase.Status.OPEN],
            ),
        ]
    )
    items_by_shipment: dict[int, list[ShipmentLineItem]] = defaultdict(list)
    for row in shipment_items:
        items_by_shipment[row.shipment_id].append(row)
    events_by_shipment: dict[int, list[TrackingEvent]] = defaultdict(list)
    for event in events:
        events_by_shipment[event.shipment_id].append(event)
    for shipment in shipments:
        _prefetched(shipment, "line_items", ShipmentLineItem, items_by_shipment[shipment.pk])
        _prefetched(shipment, "events", TrackingEvent, events_by_shipment[shipment.pk])
        # Each row's parent, as prefetching leaves it (``event.shipment`` reads no row).
        for item in items_by_shipment[shipment.pk]:
            item.shipment = shipment
        for event in events_by_shipment[shipment.pk]:
            event.shipment = shipment
    for child in (*line_items, *shipments, *delays, *cases):
        child.order = order
    _prefetched(order, "line_items", LineItem, line_items)
    _prefetched(order, "shipments", Shipment, shipments)
    _prefetched(order, "delays", Delay, delays)
    _prefetched(order, "problem_cases", ProblemCase, cases)
    return order


def _prefetched(instance: Model, name: str, model: type[Model], rows: list[Any]) -> None:
    """What ``prefetch_related`` leaves behind: ``instance.<name>.all()`` answers ``rows``."""
    queryset: Any = QuerySet(model=model)
    queryset._result_cache = rows
    queryset._prefetch_done = True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


def order_for_page(*, shop: Shop, order_id: int) -> Order | None:
    """The order with everything its tracking page shows, in a constant number of queries."""
    order = order_page_head(shop=shop, order_id=order_id)
    return order_page_load(shop=shop, order=order) if order is not None else None


def customer_order_list(*, shop: Shop, customer_id: int) -> list[Order]:
    """A logged-in customer's recent orders in this shop, newest first, with their shipments.

    Only ``Order.customer_id`` ties an order to the customer: Shopify signs
    ``logged_in_customer_id``, and a valid signature is all it proves (shopify.dev,
    "Authenticate app proxies": check the customer owns the data).
    """
    return list(
        storefront_orders(shop)
        .filter(customer_id=customer_id)
        .order_by("-shopify_created_at", "-id")
        .prefetch_related(
            Prefetch("shipments", queryset=Shipment.objects.filter(shop=shop).order_by("id"))
        )[:CUSTOMER_RECENT_ORDERS]
    )


def shipment_by_tracking_number(*, shop: Shop, tracking_number: str) -> Shipment | None:
    """The shop's shipment carrying ``tracking_number`` (normalised), with its visible events.

    ``tracking_numbers`` is a JSON list, so the database narrows by text and the exact match
    is made here on normalised numbers (a substring of a longer number must not match).
    """
    candidates = (
        Shipment.objects.filter(
            shop=shop,
            order__deleted_at__isnull=True,
            order__redacted_at__isnull=True,
            tracking_numbers__icontains=tracking_number,
        )
        .prefetch_related(Prefetch("events", queryset=_visible_events()))
        .order_by("-id")[:MAX_LOOKUP_CANDIDATES]
    )
    for shipment in candidates:
        numbers = {normalise_tracking_number(str(n)) for n in shipment.tracking_numbers or []}
        if tracking_number in numbers:
            return shipment
    return None


def shipment_for_parcel_page(*, shop: Shop, shipment_id: int) -> Shipment | None:
    """One of the shop's shipments (of an order neither deleted nor redacted) with its visible
    events: the parcel page behind a signed parcel link."""
    return (
        Shipment.objects.filter(
            shop=shop,
            pk=shipment_id,
            order__deleted_at__isnull=True,
            order__redacted_at__isnull=True,
        )
        .prefetch_related(Prefetch("events", queryset=_visible_events().filter(shop=shop)))
        .first()
    )


def tracking_settings_for_shop(*, shop: Shop) -> TrackingSettings:
    """The shop's page settings, or the defaults (unsaved) when the merchant never set any."""
    found = row_fetch_one(TrackingSettings, "shop_id = %s", [shop.pk])
    if found is None:
        return TrackingSettings(shop=shop)
    found.shop = shop  # the caller's instance: no second query for it
    return found


@dataclass(frozen=True)
class StorefrontHead:
    """What every storefront page reads first: the shop's page settings (the defaults, unsaved,
    when the merchant never set any), its branding row (None when never set), and the order a
    page is about (None when not asked for, or not this shop's, deleted or redacted)."""

    tracking_settings: TrackingSettings
    brand_row: ShopBranding | None
    order: Order | None = None

    @property
    def branding(self) -> Branding:
        shop = self.tracking_settings.shop
        return tracking_branding(
            self.tracking_settings,
            brand_look(shop=shop, row=self.brand_row) if self.brand_row else None,
        )


# The logo's bytes stay unread: pages only need its URL (shopapp.branding.selectors).
_BRANDING_DEFERRED = ("logo",)


def storefront_head(*, shop: Shop, order_id: int | None = None) -> StorefrontHead:
    """The shop's settings and branding, and with ``order_id`` the order's row (its
    ``version`` names a cached page), in one statement: a cached tracking page reads nothing
    else but the shop. Plain SQL (shopapp.rawsql): every storefront page reads this. The
    order's filters are ``order_page_head``'s."""
    sql, params = storefront_head_query(shop=shop, order_id=order_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return storefront_head_from_row(shop=shop, row=row, with_order=order_id is not None)


def storefront_head_query(*, shop: Shop, order_id: int | None) -> tuple[str, list[Any]]:
    """``storefront_head``'s statement and parameters (for a caller that sends it along with
    another in one round trip); its one row goes to ``storefront_head_from_row``."""
    columns = (
        f"{columns_of(TrackingSettings, 'ts')}, {columns_of(ShopBranding, 'b', _BRANDING_DEFERRED)}"
    )
    # One row whatever is missing: each part joined to a constant row.
    joins = (
        ' LEFT JOIN "tracking_trackingsettings" ts ON ts."shop_id" = %s'
        ' LEFT JOIN "shopapp_shopbranding" b ON b."shop_id" = %s'
    )
    params: list[Any] = [shop.pk, shop.pk]
    if order_id is not None:
        columns += f", {columns_of(Order, 'o')}"
        joins += (
            ' LEFT JOIN "shopapp_order" o ON o."id" = %s AND o."shop_id" = %s'
            ' AND o."deleted_at" IS NULL AND o."redacted_at" IS NULL'
        )
        params += [order_id, shop.pk]
    return f"SELECT {columns} FROM (SELECT 1) AS one{joins}", params  # noqa: S608


def storefront_head_from_row(*, shop: Shop, row: Sequence[Any], with_order: bool) -> StorefrontHead:
    values = list(row)
    settings_end = column_count(TrackingSettings)
    branding_end = settings_end + column_count(ShopBranding, _BRANDING_DEFERRED)
    tracking_settings = instance_from_row(TrackingSettings, values[:settings_end])
    if tracking_settings is None:
        tracking_settings = TrackingSettings(shop=shop)
    tracking_settings.shop = shop  # the caller's instance: no second query for it
    brand_row = instance_from_row(
        ShopBranding, values[settings_end:branding_end], deferred=_BRANDING_DEFERRED
    )
    if brand_row is not None:
        brand_row.shop = shop
    order = instance_from_row(Order, values[branding_end:]) if with_order else None
    if order is not None:
        order.shop = shop
    return StorefrontHead(tracking_settings=tracking_settings, brand_row=brand_row, order=order)


def storefront_branding(*, shop: Shop) -> Branding:
    """The shop's storefront look (the tracking page's settings), for every storefront page."""
    return storefront_head(shop=shop).branding


@dataclass(frozen=True)
class LineItemShipping:
    """Per line item (Shopify id): the latest delivery and fulfillment dates among the order's
    shipments carrying it, and the units its live shipments carry (cancelled, failed or
    errored fulfillments left out: Shopify's returnable units count only live ones). One
    query for all lines, so a page's query count does not grow with the order's size."""

    delivered: dict[int, datetime]
    shipped: dict[int, datetime]
    quantities: dict[int, int] = field(default_factory=dict)


# Plain SQL: the returns portal reads this on every page, and compiling the queryset cost
# more CPU than PostgreSQL's work for it (shopapp.rawsql). Through the shipment's order index.
_LINE_ITEM_SHIPPING_SQL = """
SELECT sli."line_item_shopify_id", sli."quantity", s."status", s."delivered_at",
       s."shopify_created_at"
FROM "tracking_shipmentlineitem" sli
INNER JOIN "tracking_shipment" s ON s."id" = sli."shipment_id"
WHERE sli."shop_id" = %s AND s."shop_id" = %s AND s."order_id" = %s
"""


def line_item_shipping(*, shop: Shop, order: Order) -> LineItemShipping:
    with connection.cursor() as cursor:
        cursor.execute(_LINE_ITEM_SHIPPING_SQL, [shop.pk, shop.pk, order.pk])
        rows = cursor.fetchall()
    delivered: dict[int, datetime] = {}
    shipped: dict[int, datetime] = {}
    quantities: dict[int, int] = {}
    for line_id, quantity, status, raw_delivered, raw_created in rows:
        delivered_at, created_at = db_datetime(raw_delivered), db_datetime(raw_created)
        if (status or "").strip().lower() not in FULFILLMENT_FAILED_STATUSES:
            quantities[line_id] = quantities.get(line_id, 0) + quantity
        if delivered_at and (line_id not in delivered or delivered_at > delivered[line_id]):
            delivered[line_id] = delivered_at
        if created_at and (line_id not in shipped or created_at > shipped[line_id]):
            shipped[line_id] = created_at
    return LineItemShipping(delivered=delivered, shipped=shipped, quantities=quantities)


def line_items_shipped(*, shop: Shop, line_item_ids: list[int]) -> set[int]:
    """Which of these line items (Shopify ids) any shipment of the shop carried."""
    return set(
        ShipmentLineItem.objects.filter(
            shop=shop, line_item_shopify_id__in=line_item_ids
        ).values_list("line_item_shopify_id", flat=True)
    )

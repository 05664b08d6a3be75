"""Read queries for tracking in the embedded admin. Every function takes ``shop`` first and
scopes every query by it (DESIGN: a request signed for shop A never reads shop B's data).

    orders list ── order_list_for_admin (search + tracking number, stage, delayed) ─┐
                   order_rows (one stage badge per order, from prefetched shipments) ┘
    order page  ── order_tracking: shipments, their items and events, open delays, page views
    delayed tab ── delay_list_open → delay_rows (days since the parcel last moved)

The order page's tracking part is a fixed set of queries whatever the order holds (shipments,
their line items, their events, the open delays, the page-view counter); the tests count them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext

from shopapp.models import LineItem, Order, Shop
from shopapp.orders import selectors as order_selectors
from tracking.forms import MAX_TRACKING_NUMBER_LENGTH, normalise_tracking_number
from tracking.models import (
    Delay,
    Shipment,
    ShipmentLineItem,
    Stage,
    TrackingEvent,
    TrackingPageView,
)
from tracking.stages import STAGE_PROGRESS, stage_is_branch, stage_position

# Which stage an order's badge shows when its shipments differ: a branch needs a person more
# than progress does, the worst branch first; otherwise the furthest main-line step.
_URGENCY: tuple[Stage, ...] = (
    Stage.PROBLEM,
    Stage.DELAYED,
    Stage.ATTEMPTED_DELIVERY,
    Stage.READY_FOR_PICKUP,
)
_SECONDS_PER_DAY = 86_400


# -- display rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class StageBadge:
    stage: str
    label: str
    # Polaris badge tone: "critical" and "warning" for branches, "success" once delivered.
    tone: str


@dataclass(frozen=True)
class ProgressStep:
    label: str
    state: str  # "done", "current" or "upcoming"


@dataclass(frozen=True)
class TrackingLink:
    number: str
    url: str  # empty when Shopify gave none, or one that is not http(s)


@dataclass(frozen=True)
class ItemRow:
    title: str
    quantity: int


@dataclass(frozen=True)
class EventRow:
    happened_at: datetime
    label: str
    status: str
    message: str
    place: str
    is_stale: bool
    is_deleted: bool


@dataclass(frozen=True)
class DelayRow:
    kind: str
    kind_label: str
    detected_at: datetime


@dataclass(frozen=True)
class ShipmentRow:
    shipment: Shipment
    badge: StageBadge
    steps: list[ProgressStep]
    links: list[TrackingLink]
    items: list[ItemRow]
    events: list[EventRow]
    delays: list[DelayRow]
    delivered_at: datetime | None
    estimated_delivery_at: datetime | None


@dataclass(frozen=True)
class OrderTracking:
    shipments: list[ShipmentRow]
    # Findings about the order itself (not shipped in time), not tied to a shipment.
    order_delays: list[DelayRow] = field(default_factory=list)
    page_views: int = 0
    last_viewed_at: datetime | None = None

    @property
    def last_viewed_ago(self) -> str:
        """ "2 hours ago", "3 days ago" (one unit, as the Shopify admin words recent times)."""
        if self.last_viewed_at is None:
            return ""
        if timezone.now() - self.last_viewed_at < timedelta(minutes=1):
            return gettext("just now")
        return gettext("%(time)s ago") % {"time": timesince(self.last_viewed_at, depth=1)}


@dataclass(frozen=True)
class OrderRow:
    order: Order
    badge: StageBadge | None
    shipment_count: int
    has_open_delay: bool


@dataclass(frozen=True)
class DelayListRow:
    delay: Delay
    kind_label: str
    # Whole days since the last carrier scan (or since the shipment was created, when it was
    # never scanned); None for an order that has not shipped.
    days_since_movement: int | None


# -- stages ----------------------------------------------------------------------------------


def _as_stage(value: str) -> Stage | None:
    try:
        return Stage(value)
    except ValueError:
        return None


def stage_badge(stage: str) -> StageBadge:
    known = _as_stage(stage)
    if known is None:
        # A value this code does not know (never written by tracking.services): show it raw.
        return StageBadge(stage=stage, label=stage, tone="")
    if known == Stage.PROBLEM:
        tone = "critical"
    elif stage_is_branch(known):
        tone = "warning"
    elif known == Stage.DELIVERED:
        tone = "success"
    else:
        tone = "info"
    # The model's choice labels are the admin's words (tracking.stages has the shopper's).
    return StageBadge(stage=known.value, label=str(known.label), tone=tone)


def stage_headline(stages: Iterable[str]) -> str | None:
    """The one stage an order's row shows: the most urgent branch, else the furthest step."""
    values = [s for s in stages if _as_stage(s) is not None]
    if not values:
        return None
    for urgent in _URGENCY:
        if urgent in values:
            return urgent.value
    return max(values, key=stage_position)


def stage_choices() -> list[tuple[str, str]]:
    return [(value, str(label)) for value, label in Stage.choices]


# -- the orders list -------------------------------------------------------------------------


def _open_delays(shop: Shop) -> QuerySet[Delay]:
    return Delay.objects.filter(shop=shop, resolved_at__isnull=True)


# A search matching more parcels than this is not a tracking number (the orders list shows
# 25 a page; this bounds the id list handed back to the orders query).
SEARCH_MAX_ORDERS = 200


def _tracking_number_forms(query: str) -> list[str]:
    """The spellings of ``query`` worth looking up: as typed, upper- and lower-cased (carriers
    print upper case; Shopify's own sample stores lower case), and normalised as the
    storefront compares (spaces and dashes removed); numbers are stored as Shopify sent
    them."""
    if "@" in query or len(query) > MAX_TRACKING_NUMBER_LENGTH + 20:
        return []
    forms = []
    for number in (query, normalise_tracking_number(query)):
        for spelling in (number, number.upper(), number.lower()):
            if spelling and spelling not in forms:
                forms.append(spelling)
    return forms


def order_ids_by_tracking_number(*, shop: Shop, query: str) -> list[int]:
    """Local ids of the shop's orders with a shipment carrying ``query`` as one whole tracking
    number (listed in shopapp.subscribers.ORDER_SEARCH).

    On PostgreSQL, jsonb containment (``tracking_numbers @> '["1Z…"]'``) served by a GIN
    index (tracking migration 0004): an exact element match. SQLite has no JSON containment,
    so there the JSON *text* is matched for the number with its quotes: ``"1Z…"`` occurs in
    ``["…", "1Z…"]`` only as a whole element, never as part of a longer number.
    """
    forms = _tracking_number_forms(query)
    if not forms:
        return []
    condition = Q()
    for number in forms:
        if connection.vendor == "postgresql":
            condition |= Q(tracking_numbers__contains=[number])
        else:
            condition |= Q(tracking_numbers__icontains=json.dumps(number))
    return list(
        Shipment.objects.filter(shop=shop)
        .filter(condition)
        .order_by("order_id")
        .values_list("order_id", flat=True)
        .distinct()[:SEARCH_MAX_ORDERS]
    )


def order_list_for_admin(
    *, shop: Shop, query: str = "", stage: str = "", is_delayed: bool = False
) -> QuerySet[Order]:
    """The shop's orders for the admin list, newest first, with shipments' stages prefetched.

    ``query`` is the orders search (name, email, phone) or a whole tracking number or return
    name (``order_search_condition``); ``stage`` keeps
    orders with any shipment at that stage (an unknown value filters nothing); ``is_delayed``
    keeps orders with an open delay. All three combine.
    """
    orders = order_selectors.order_list(shop=shop)
    query = query.strip()
    if query:
        orders = orders.filter(order_selectors.order_search_condition(shop=shop, query=query))
    if _as_stage(stage) is not None:
        orders = orders.filter(
            Exists(Shipment.objects.filter(shop=shop, order=OuterRef("pk"), stage=stage))
        )
    open_delay = Exists(_open_delays(shop).filter(order=OuterRef("pk")))
    if is_delayed:
        orders = orders.filter(open_delay)
    return orders.annotate(has_open_delay=open_delay).prefetch_related(
        Prefetch(
            "shipments",
            queryset=Shipment.objects.filter(shop=shop).only("id", "order_id", "stage"),
        )
    )


def order_rows(orders: Iterable[Order]) -> list[OrderRow]:
    """Rows for a page of ``order_list_for_admin`` (uses its prefetch; no query per row)."""
    rows = []
    for order in orders:
        stages = [s.stage for s in order.shipments.all()]
        headline = stage_headline(stages)
        rows.append(
            OrderRow(
                order=order,
                badge=stage_badge(headline) if headline else None,
                shipment_count=len(stages),
                has_open_delay=bool(getattr(order, "has_open_delay", False)),
            )
        )
    return rows


# -- the order page --------------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """A carrier URL fit for ``href``: http(s) with a host, else nothing (never javascript:)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return url.strip()


def _place(event: TrackingEvent) -> str:
    return ", ".join(p for p in (event.city, event.province, event.country) if p)


def _progress(stage: str) -> list[ProgressStep]:
    position = stage_position(stage)
    return [
        ProgressStep(
            label=str(step.label),
            state="done" if i < position else "current" if i == position else "upcoming",
        )
        for i, step in enumerate(STAGE_PROGRESS)
    ]


def _delay_row(delay: Delay) -> DelayRow:
    return DelayRow(
        kind=delay.kind, kind_label=delay.get_kind_display(), detected_at=delay.detected_at
    )


def _shipment_row(
    shipment: Shipment, *, titles: dict[int, str], delays: list[DelayRow]
) -> ShipmentRow:
    numbers = [str(n) for n in shipment.tracking_numbers or []]
    urls = [str(u) for u in shipment.tracking_urls or []]
    return ShipmentRow(
        shipment=shipment,
        badge=stage_badge(shipment.stage),
        steps=_progress(shipment.stage),
        links=[
            TrackingLink(number=n, url=_safe_url(urls[i]) if i < len(urls) else "")
            for i, n in enumerate(numbers)
        ],
        items=[
            ItemRow(
                title=titles.get(row.line_item_shopify_id)
                or gettext("Line item %(id)s") % {"id": row.line_item_shopify_id},
                quantity=row.quantity,
            )
            for row in shipment.line_items.all()
        ],
        events=[
            EventRow(
                happened_at=event.happened_at,
                label=stage_badge(event.stage).label if event.stage else event.status,
                status=event.status,
                message=event.message,
                place=_place(event),
                is_stale=event.is_stale,
                is_deleted=event.deleted_at is not None,
            )
            for event in shipment.events.all()
        ],
        delays=delays,
        delivered_at=shipment.delivered_at,
        estimated_delivery_at=(
            None if shipment.stage == Stage.DELIVERED else shipment.estimated_delivery_at
        ),
    )


def order_tracking(
    *, shop: Shop, order: Order, line_items: Iterable[LineItem] = ()
) -> OrderTracking:
    """Everything the order page shows about tracking, in five queries whatever the order holds.

    ``line_items`` are the order's own (already loaded by the page) and only name the items in
    each shipment. Events come newest first, stale and deleted ones included and marked: the
    admin is where staff see what the storefront hides.
    """
    titles = {
        item.shopify_id: f"{item.title} – {item.variant_title}"
        if item.variant_title
        else item.title
        for item in line_items
    }
    shipments = list(
        Shipment.objects.filter(shop=shop, order=order)
        .order_by("shopify_created_at", "id")
        .prefetch_related(
            Prefetch(
                "line_items", queryset=ShipmentLineItem.objects.filter(shop=shop).order_by("id")
            ),
            Prefetch(
                "events",
                queryset=TrackingEvent.objects.filter(shop=shop).order_by("-happened_at", "-id"),
            ),
        )
    )
    delays = list(_open_delays(shop).filter(order=order).order_by("detected_at", "id"))
    views = TrackingPageView.objects.filter(shop=shop, order=order).first()

    by_shipment: dict[int | None, list[DelayRow]] = {}
    for delay in delays:
        by_shipment.setdefault(delay.shipment_id, []).append(_delay_row(delay))

    rows = [
        _shipment_row(shipment, titles=titles, delays=by_shipment.get(shipment.pk, []))
        for shipment in shipments
    ]
    return OrderTracking(
        shipments=rows,
        order_delays=by_shipment.get(None, []),
        page_views=views.views if views else 0,
        last_viewed_at=views.last_viewed_at if views else None,
    )


# -- the delayed tab -------------------------------------------------------------------------


def delay_list_open(*, shop: Shop) -> QuerySet[Delay]:
    """The shop's open delays, newest finding first, with their order and shipment joined.

    Orders deleted in Shopify are left out, as on the orders list.
    """
    return (
        _open_delays(shop)
        .filter(order__shop=shop, order__deleted_at__isnull=True)
        .select_related("order", "shipment")
        .order_by("-detected_at", "-id")
    )


def delay_open_count(*, shop: Shop) -> int:
    return delay_list_open(shop=shop).count()


def delay_rows(delays: Iterable[Delay], *, now: datetime | None = None) -> list[DelayListRow]:
    """Rows for a page of ``delay_list_open`` (uses its join; no query per row)."""
    now = now or timezone.now()
    rows = []
    for delay in delays:
        days = None
        shipment = delay.shipment
        if shipment is not None:
            moved_at = shipment.last_event_at or shipment.shopify_created_at or shipment.created_at
            if moved_at is not None:
                days = max(0, int((now - moved_at).total_seconds() // _SECONDS_PER_DAY))
        rows.append(
            DelayListRow(delay=delay, kind_label=delay.get_kind_display(), days_since_movement=days)
        )
    return rows

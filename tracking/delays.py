"""Delay detection, run per shop by cron (tracking.jobs.delays_detect_all_job, every 15 min).

    unfulfilled     paid (processed_at) N business days ago, items still to ship
    no_movement     last carrier scan N days ago (domestic / international thresholds)
    past_estimate   the estimated delivery date is over and it is not delivered
    never_scanned   a label exists (label_printed, label_purchased, confirmed), no scan in N days
    carrier_delayed a DELAYED fulfillment event (opened by tracking.services, not here)

Each finding is opened once through ``delay_open`` (unique ``dedupe_key`` per shop), which
writes the timeline line and calls the "delayed" trigger; open findings whose condition has
cleared are resolved. Every query is scoped by shop and narrowed in SQL (indexes on
(shop, stage), (shop, resolved_at)); Python only sees the findings, plus, for "unfulfilled",
orders already N calendar days old, for the exact business-day check.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from shopapp.auth.selectors import shop_zone
from shopapp.models import LineItem, Order, Shop
from tracking.common import LABEL_STATUSES, tracking_settings_get
from tracking.models import Delay, Shipment, Stage, TrackingSettings
from tracking.recompute import delay_open
from tracking.stages import FULFILLMENT_FAILED_STATUSES

logger = logging.getLogger(__name__)

# Orders paid longer ago than this are not checked for "unfulfilled" any more: a merchant who
# has not shipped in a month knows, and the shopper has long been told.
UNFULFILLED_LOOKBACK = timedelta(days=30)
# Shipments untouched for longer than this are not watched (trackers "expire" after 30 days
# at AfterShip and ParcelPanel).
SHIPMENT_WATCH_WINDOW = timedelta(days=45)
PAID_STATUSES = ("paid", "partially_paid")
# Stages where waiting is not a delay: done, or the parcel waits for the shopper.
_QUIET_STAGES = (Stage.DELIVERED, Stage.READY_FOR_PICKUP, Stage.PROBLEM)


def business_deadline(start: datetime, business_days: int, zone: ZoneInfo) -> datetime:
    """``start`` plus N business days (Monday to Friday) on the shop's wall clock.

    Paid on a Friday at 10:00 with N=3: Wednesday 10:00. Paid on a weekend: counting starts
    Monday 00:00, so N=3 ends Thursday 00:00 (Monday, Tuesday, Wednesday). Wall-clock
    arithmetic keeps the hour across a DST change.
    """
    local = start.astimezone(zone)
    if local.weekday() >= 5:
        monday = local.date() + timedelta(days=7 - local.weekday())
        local = datetime.combine(monday, time.min, tzinfo=zone)
    remaining = business_days
    while remaining > 0:
        local = local + timedelta(days=1)
        if local.weekday() < 5:
            remaining -= 1
    return local


def _origin_country(shop: Shop, configured: str) -> str:
    # Shop has no country column yet; use one when the shop sync adds it.
    return (configured or getattr(shop, "country_code", "") or "").upper()


def _unfulfilled_detect(
    *, shop: Shop, settings: TrackingSettings, zone: ZoneInfo, now: datetime
) -> int:
    """Paid N business days ago, items still to ship."""
    days = settings.unfulfilled_business_days
    to_ship = LineItem.objects.filter(
        shop=shop, order=OuterRef("pk"), requires_shipping=True, fulfillable_quantity__gt=0
    )
    already = Delay.objects.filter(shop=shop, order=OuterRef("pk"), kind=Delay.Kind.UNFULFILLED)
    orders = (
        Order.objects.filter(
            shop=shop,
            financial_status__in=PAID_STATUSES,
            processed_at__lte=now - timedelta(days=days),
            processed_at__gte=now - UNFULFILLED_LOOKBACK,
            cancelled_at__isnull=True,
            deleted_at__isnull=True,
        )
        .exclude(fulfillment_status__in=["fulfilled", "restocked"])
        .filter(Exists(to_ship))
        .exclude(Exists(already))
        .only("pk", "shop_id", "shopify_id", "processed_at")
    )
    found = 0
    for order in orders:
        # Filtered on processed_at above: never None here.
        paid_at = order.processed_at or now
        if business_deadline(paid_at, days, zone) > now:
            continue
        if delay_open(
            shop=shop,
            order=order,
            shipment=None,
            kind=Delay.Kind.UNFULFILLED,
            dedupe_key=f"order:{order.pk}:unfulfilled",
            detected_at=now,
            detail={"business_days": days, "paid_at": paid_at.isoformat()},
        ):
            found += 1
    return found


def _open_of(shop: Shop, kind: str) -> QuerySet[Delay]:
    return Delay.objects.filter(
        shop=shop, shipment=OuterRef("pk"), kind=kind, resolved_at__isnull=True
    )


def _no_movement_detect(
    *, shop: Shop, settings: TrackingSettings, watched: QuerySet[Shipment], now: datetime
) -> int:
    """The last carrier scan N days ago (domestic and international thresholds)."""
    origin = _origin_country(shop, settings.origin_country_code)
    domestic_days = settings.no_movement_days_domestic
    international_days = settings.no_movement_days_international
    if origin:
        domestic = Q(destination_country_code=origin)
        stalled = (domestic & Q(last_event_at__lt=now - timedelta(days=domestic_days))) | (
            ~domestic & Q(last_event_at__lt=now - timedelta(days=international_days))
        )
    else:
        # Origin unknown: the longer, international threshold; a false "delayed" message to
        # a shopper costs more than a late one.
        stalled = Q(last_event_at__lt=now - timedelta(days=international_days))
    found = 0
    open_delays = _open_of(shop, Delay.Kind.NO_MOVEMENT)
    for shipment in watched.filter(stalled).exclude(Exists(open_delays)):
        is_domestic = bool(origin) and shipment.destination_country_code == origin
        # Filtered on last_event_at above: never None here.
        last_event_at = shipment.last_event_at or now
        if delay_open(
            shop=shop,
            order=shipment.order,
            shipment=shipment,
            kind=Delay.Kind.NO_MOVEMENT,
            # One finding per quiet spell: a new scan resolves it, a later stall is new.
            dedupe_key=(f"shipment:{shipment.pk}:no_movement:{int(last_event_at.timestamp())}"),
            detected_at=now,
            detail={
                "last_event_at": last_event_at.isoformat(),
                "is_domestic": is_domestic,
                "days": domestic_days if is_domestic else international_days,
            },
        ):
            found += 1
    return found


def _past_estimate_detect(
    *, shop: Shop, watched: QuerySet[Shipment], zone: ZoneInfo, midnight: datetime, now: datetime
) -> int:
    """Past the date on the shop's calendar: the estimate falls before today's midnight."""
    found = 0
    for shipment in watched.filter(estimated_delivery_at__lt=midnight).exclude(
        Exists(_open_of(shop, Delay.Kind.PAST_ESTIMATE))
    ):
        estimate = shipment.estimated_delivery_at or midnight  # filtered above: never None
        estimate_date = estimate.astimezone(zone).date()
        if delay_open(
            shop=shop,
            order=shipment.order,
            shipment=shipment,
            kind=Delay.Kind.PAST_ESTIMATE,
            # A new, later estimate that passes in turn is a new finding.
            dedupe_key=f"shipment:{shipment.pk}:past_estimate:{estimate_date.isoformat()}",
            detected_at=now,
            detail={"estimated_delivery_date": estimate_date.isoformat()},
        ):
            found += 1
    return found


def _never_scanned_detect(
    *, shop: Shop, settings: TrackingSettings, watched: QuerySet[Shipment], now: datetime
) -> int:
    """A label exists and no carrier scanned it in N days."""
    scan_days = settings.never_scanned_days
    never_scanned = watched.filter(
        last_event_at__isnull=True,
        shipment_status__in=LABEL_STATUSES,
    ).filter(
        Q(shopify_created_at__lt=now - timedelta(days=scan_days))
        | Q(shopify_created_at__isnull=True, created_at__lt=now - timedelta(days=scan_days))
    )
    found = 0
    for shipment in never_scanned.exclude(Exists(_open_of(shop, Delay.Kind.NEVER_SCANNED))):
        if delay_open(
            shop=shop,
            order=shipment.order,
            shipment=shipment,
            kind=Delay.Kind.NEVER_SCANNED,
            dedupe_key=f"shipment:{shipment.pk}:never_scanned",
            detected_at=now,
            detail={"shipment_status": shipment.shipment_status, "days": scan_days},
        ):
            found += 1
    return found


def delays_detect(*, shop: Shop, now: datetime | None = None) -> dict[str, int]:
    """Open every new delay of the shop and resolve cleared ones; returns counts by kind."""
    now = now or timezone.now()
    settings = tracking_settings_get(shop=shop)
    zone = shop_zone(shop)
    midnight = datetime.combine(now.astimezone(zone).date(), time.min, tzinfo=zone)
    watched = (
        Shipment.objects.filter(shop=shop, updated_at__gte=now - SHIPMENT_WATCH_WINDOW)
        .exclude(stage__in=_QUIET_STAGES)
        .exclude(status__in=FULFILLMENT_FAILED_STATUSES)
        .select_related("order")
    )
    found = {kind: 0 for kind in Delay.Kind.values}
    found[Delay.Kind.UNFULFILLED] = _unfulfilled_detect(
        shop=shop, settings=settings, zone=zone, now=now
    )
    found[Delay.Kind.NO_MOVEMENT] = _no_movement_detect(
        shop=shop, settings=settings, watched=watched, now=now
    )
    found[Delay.Kind.PAST_ESTIMATE] = _past_estimate_detect(
        shop=shop, watched=watched, zone=zone, midnight=midnight, now=now
    )
    found[Delay.Kind.NEVER_SCANNED] = _never_scanned_detect(
        shop=shop, settings=settings, watched=watched, now=now
    )
    resolved = delays_resolve_cleared(shop=shop, now=now, midnight=midnight)
    logger.info(
        "tracking.delays.detected",
        extra={"shop": shop.myshopify_domain, "found": found, "resolved": resolved},
    )
    return found


def delays_resolve_cleared(*, shop: Shop, now: datetime, midnight: datetime) -> int:
    """Resolve open delays whose condition no longer holds (the services resolve the ones a
    webhook clears: delivered, a new scan)."""
    open_delays = Delay.objects.filter(shop=shop, resolved_at__isnull=True)
    to_ship = LineItem.objects.filter(
        shop=shop, order=OuterRef("order"), requires_shipping=True, fulfillable_quantity__gt=0
    )
    count = (
        open_delays.filter(kind=Delay.Kind.UNFULFILLED)
        .filter(
            Q(order__cancelled_at__isnull=False)
            | Q(order__fulfillment_status="fulfilled")
            | ~Exists(to_ship)
        )
        .update(resolved_at=now)
    )
    count += (
        open_delays.filter(shipment__isnull=False)
        .filter(
            Q(shipment__stage=Stage.DELIVERED) | Q(shipment__status__in=FULFILLMENT_FAILED_STATUSES)
        )
        .update(resolved_at=now)
    )
    count += (
        open_delays.filter(kind=Delay.Kind.PAST_ESTIMATE)
        .filter(shipment__estimated_delivery_at__gte=midnight)
        .update(resolved_at=now)
    )
    return count

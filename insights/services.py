"""The daily rollup: what happened on each day of a shop, counted once and kept in ``ShopDay``.

    cron, every 10 min ─ insights_rollup_all_job ─ per active shop ─ insights_rollup_job
        └─ shop_days_refresh(shop, days=2)      today and yesterday: the page stays current
    cron, hourly ─ … ─ shop_days_refresh(shop, days=ROLLUP_WINDOW_DAYS)
        └─ figures that keep moving after their day (an order's stage, page views, a later
           purchase) are counted again while they still move
    a shop without rows yet ─ shop_days_refresh ─ every day since its first order

Every figure hangs on one date, in the shop's zone:

    orders      placed that day: how many, by their stage now, page views, units per product
    shipments   created that day, by their stage now
    delivery    delivered that day, per carrier: hours from fulfilment to delivery (a
                histogram, so medians and percentiles of any period are exact to the hour)
                and whether it came by the estimated day
    messages    due that day, by channel, trigger and status; review requests sent, and of
                those the ones answered: how many, their ratings' sum and count per star
                (on the request's day, so "answered" is a share of "sent"; an answer days
                later is counted by the hourly recount of the last ROLLUP_WINDOW_DAYS)
    suppressed  unsubscribes, bounces and complaints recorded that day, by channel
    returns     requested that day: by resolution, units by product and by reason;
                processed that day: refunded, kept (store credit, exchanges), request→refund
    repeat      orders whose first delivery / delay / return / exchange fell that day, and
                how many of their shoppers (same email) ordered again afterwards
    problems    problems reported that day (not received, damaged, wrong item), by who
                reported them: the shopper on the tracking page, or staff on their behalf

The queries group by day in the database; the few figures that need a per-row look (hours,
histograms) read a day-bounded slice in chunks of ``CHUNK_DAYS``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from insights.models import ShopDay
from notifications.models import Message, ReviewAnswer, Suppression
from returns.models import Resolution, ReturnLineItem, ReturnRequest
from shopapp.auth.selectors import shop_zone
from shopapp.models import LineItem, Order, Shop
from tracking.models import Delay, ProblemCase, Shipment, Stage, TrackingPageView

logger = logging.getLogger(__name__)

# Figures that move after their day (an order's stage, its page views, a later purchase, a
# return requested weeks after delivery) are counted again this many days back, hourly. Two
# months covers a parcel's life and most return windows (30 days from delivery by default).
ROLLUP_WINDOW_DAYS = 60
# Days read at once by the per-row figures: bounds the rows in memory for a big shop's backfill.
CHUNK_DAYS = 31
# The order stage: the worst news among its parcels first, as a support agent reads it.
ORDER_STAGES = ("cancelled", "unfulfilled", "problem", "delayed", "on_the_way", "delivered")
REVIEW_TEMPLATE_KEY = "review_request"
# Emails looked up at once for "ordered again" (bounds the IN list).
EMAIL_BATCH = 1000


def _day_bounds(zone: ZoneInfo, first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _chunks(first: date, last: date) -> Iterator[tuple[date, date]]:
    while first <= last:
        chunk_last = min(last, first + timedelta(days=CHUNK_DAYS - 1))
        yield first, chunk_last
        first = chunk_last + timedelta(days=1)


def _tree() -> defaultdict:
    return defaultdict(_tree)


def _add(node: dict, keys: tuple[str, ...], amount: int | float) -> None:
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = node.get(keys[-1], 0) + amount


def _money(value: Decimal | None) -> float:
    return float(round(value or Decimal(0), 2))


def _local_day(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).date().isoformat()


def _hours(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 3600))


# ---------------------------------------------------------------------------------------------
# One figure family each: (shop, zone, start, end, days) → adds to days[iso day][...]


def _orders(shop: Shop, zone: ZoneInfo, start: datetime, end: datetime, days: dict) -> None:
    live = Shipment.objects.filter(shop=shop, order=OuterRef("pk")).exclude(status="cancelled")
    grouped = (
        Order.objects.filter(
            shop=shop,
            deleted_at__isnull=True,
            shopify_created_at__gte=start,
            shopify_created_at__lt=end,
        )
        .annotate(
            day=TruncDate("shopify_created_at", tzinfo=zone),
            is_cancelled=ExpressionWrapper(
                Q(cancelled_at__isnull=False), output_field=BooleanField()
            ),
            has_shipment=Exists(live),
            has_problem=Exists(live.filter(stage=Stage.PROBLEM)),
            has_delay=Exists(live.filter(stage=Stage.DELAYED)),
            has_undelivered=Exists(live.exclude(stage=Stage.DELIVERED)),
        )
        # The flags are few and boolean: group by them in SQL, name the stage here.
        .values(
            "day",
            "is_cancelled",
            "has_shipment",
            "has_problem",
            "has_delay",
            "has_undelivered",
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in grouped:
        if row["is_cancelled"]:
            stage = "cancelled"
        elif not row["has_shipment"]:
            stage = "unfulfilled"
        elif row["has_problem"]:
            stage = "problem"
        elif row["has_delay"]:
            stage = "delayed"
        elif row["has_undelivered"]:
            stage = "on_the_way"
        else:
            stage = "delivered"
        day = row["day"].isoformat()
        _add(days, (day, "orders", "placed"), row["n"])
        _add(days, (day, "orders", "by_stage", stage), row["n"])

    views = (
        TrackingPageView.objects.filter(
            shop=shop,
            order__deleted_at__isnull=True,
            order__shopify_created_at__gte=start,
            order__shopify_created_at__lt=end,
        )
        .annotate(day=TruncDate("order__shopify_created_at", tzinfo=zone))
        .values("day")
        .annotate(total=Sum("views"), looked=Count("id", filter=Q(views__gt=0)))
        .order_by()
    )
    for row in views:
        day = row["day"].isoformat()
        _add(days, (day, "tracking", "views"), row["total"] or 0)
        _add(days, (day, "tracking", "orders_viewed"), row["looked"])

    sold = (
        LineItem.objects.filter(
            shop=shop,
            order__deleted_at__isnull=True,
            order__cancelled_at__isnull=True,
            order__shopify_created_at__gte=start,
            order__shopify_created_at__lt=end,
            is_gift_card=False,
        )
        .annotate(day=TruncDate("order__shopify_created_at", tzinfo=zone))
        .values("day", "title")
        .annotate(units=Sum("quantity"))
        .order_by()
    )
    for row in sold:
        _add(days, (row["day"].isoformat(), "products", row["title"] or "—", "sold"), row["units"])


def _shipments(shop: Shop, zone: ZoneInfo, start: datetime, end: datetime, days: dict) -> None:
    created = (
        Shipment.objects.filter(
            shop=shop,
            shopify_created_at__gte=start,
            shopify_created_at__lt=end,
            order__deleted_at__isnull=True,
        )
        .exclude(status="cancelled")
        .annotate(day=TruncDate("shopify_created_at", tzinfo=zone))
        .values("day", "stage")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in created:
        day = row["day"].isoformat()
        _add(days, (day, "shipments", "created"), row["n"])
        _add(days, (day, "shipments", "by_stage", row["stage"] or "shipped"), row["n"])

    delivered = Shipment.objects.filter(
        shop=shop, delivered_at__gte=start, delivered_at__lt=end, order__deleted_at__isnull=True
    ).values_list("tracking_company", "shopify_created_at", "delivered_at", "estimated_delivery_at")
    for carrier, shipped_at, delivered_at, estimate in delivered.iterator(chunk_size=5000):
        assert delivered_at is not None  # filtered on it above
        day = _local_day(delivered_at, zone)
        name = carrier or "Other"
        _add(days, (day, "delivery", name, "n"), 1)
        if shipped_at is not None:
            _add(days, (day, "delivery", name, "hours", str(_hours(shipped_at, delivered_at))), 1)
        if estimate is not None:
            # On time: delivered on or before the estimated day, both read in the shop's zone
            # (an estimate is a day promised to the shopper, not an instant).
            _add(days, (day, "delivery", name, "with_estimate"), 1)
            if delivered_at.astimezone(zone).date() <= estimate.astimezone(zone).date():
                _add(days, (day, "delivery", name, "on_time"), 1)


def _messages(shop: Shop, zone: ZoneInfo, start: datetime, end: datetime, days: dict) -> None:
    due = (
        Message.objects.filter(shop=shop, due_at__gte=start, due_at__lt=end)
        .annotate(day=TruncDate("due_at", tzinfo=zone))
        .values("day", "channel", "trigger", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in due:
        _add(
            days,
            (row["day"].isoformat(), "messages", row["channel"], row["trigger"], row["status"]),
            row["n"],
        )
    reviews = (
        Message.objects.filter(
            shop=shop,
            due_at__gte=start,
            due_at__lt=end,
            step__template_key=REVIEW_TEMPLATE_KEY,
            status=Message.Status.SENT,
        )
        .annotate(day=TruncDate("due_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in reviews:
        _add(days, (row["day"].isoformat(), "reviews", "requested"), row["n"])
    # Answers hang on their request's day (not the answer's): the figure is "requests sent in
    # the period that were answered", a share of the requests counted just above.
    answered = (
        ReviewAnswer.objects.filter(
            shop=shop,
            message__due_at__gte=start,
            message__due_at__lt=end,
            message__step__template_key=REVIEW_TEMPLATE_KEY,
            message__status=Message.Status.SENT,
        )
        .annotate(day=TruncDate("message__due_at", tzinfo=zone))
        .values("day", "rating")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in answered:
        day = row["day"].isoformat()
        _add(days, (day, "reviews", "answered"), row["n"])
        _add(days, (day, "reviews", "rating_sum"), row["rating"] * row["n"])
        _add(days, (day, "reviews", "ratings", str(row["rating"])), row["n"])
    suppressed = (
        Suppression.objects.filter(shop=shop, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "reason", "channel")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in suppressed:
        _add(days, (row["day"].isoformat(), "suppressed", row["reason"], row["channel"]), row["n"])


def _returns(shop: Shop, zone: ZoneInfo, start: datetime, end: datetime, days: dict) -> None:
    requested = (
        ReturnRequest.objects.filter(shop=shop, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "resolution", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in requested:
        day = row["day"].isoformat()
        _add(days, (day, "returns", "requested"), row["n"])
        _add(days, (day, "returns", "by_resolution", row["resolution"], "requested"), row["n"])
        _add(days, (day, "returns", "by_status", row["status"]), row["n"])
    lines = (
        ReturnLineItem.objects.filter(
            shop=shop,
            return_request__created_at__gte=start,
            return_request__created_at__lt=end,
        )
        .annotate(day=TruncDate("return_request__created_at", tzinfo=zone))
        .values("day", "line_item__title", "reason")
        .annotate(units=Sum("quantity"))
        .order_by()
    )
    for row in lines:
        day = row["day"].isoformat()
        title = row["line_item__title"] or "—"
        _add(days, (day, "products", title, "returned"), row["units"])
        _add(days, (day, "returns", "by_reason", row["reason"] or "UNKNOWN"), row["units"])

    processed = list(
        ReturnRequest.objects.filter(shop=shop, processed_at__gte=start, processed_at__lt=end)
        .order_by()
        .values_list("pk", "resolution", "created_at", "processed_at", "refunded_amount")
    )
    # Each line's value under its own resolution (a mixed return has one per item; lines
    # stored before resolutions were per item follow the request's).
    values: dict[tuple[int, str], Decimal] = {}
    for request_id, own, request_resolution, value in (
        ReturnLineItem.objects.filter(return_request_id__in=[p[0] for p in processed])
        .annotate(value=F("quantity") * F("line_item__price"))
        .values_list("return_request_id", "resolution", "return_request__resolution", "value")
    ):
        key = (request_id, own or request_resolution)
        values[key] = values.get(key, Decimal(0)) + (value or Decimal(0))
    for request_id, resolution, requested_at, processed_at, refunded in processed:
        assert processed_at is not None  # filtered on it above
        day = _local_day(processed_at, zone)
        node = (day, "returns", "by_resolution", resolution)
        _add(days, (*node, "processed"), 1)
        _add(days, (*node, "refunded"), _money(refunded))
        # Kept: what stays with the store. Store credit is spent in the store; an exchange
        # keeps the sale, less what a cheaper replacement left to refund (what was paid back
        # beyond the refunded items' value).
        credit = _money(values.get((request_id, Resolution.STORE_CREDIT)))
        exchanged = _money(values.get((request_id, Resolution.EXCHANGE)))
        refunded_items = _money(values.get((request_id, Resolution.REFUND)))
        if credit or exchanged:
            over = max(0.0, _money(refunded) - refunded_items) if exchanged else 0.0
            _add(days, (*node, "kept"), credit + max(0.0, exchanged - over))
        if refunded_items and refunded and refunded > 0:
            hours = str(_hours(requested_at, processed_at))
            _add(days, (day, "returns", "refund_hours", hours), 1)


def _repeat(shop: Shop, zone: ZoneInfo, start: datetime, end: datetime, days: dict) -> None:
    """Orders whose first delivery, delay, return or exchange fell in the range, and whether
    their shopper (same email) placed another order after that moment."""

    def firsts(model: Any, field: str, **only: Any) -> Any:
        # The orders with such a moment in the range, then each one's first moment ever: the
        # aggregate reads only those orders' rows (through the order index).
        in_range = model.objects.filter(
            shop=shop, **{f"{field}__gte": start, f"{field}__lt": end}, **only
        ).values("order_id")
        return (
            model.objects.filter(shop=shop, order_id__in=in_range, **only)
            .values("order_id")
            .annotate(at=Min(field))
        )

    sources = {
        "delivery": firsts(Shipment, "delivered_at"),
        "delay": firsts(Delay, "detected_at"),
        "return": firsts(ReturnRequest, "created_at"),
        "exchange": firsts(ReturnRequest, "created_at", resolution=Resolution.EXCHANGE),
    }
    for kind, source in sources.items():
        firsts_in_range = list(
            source.filter(at__gte=start, at__lt=end)
            .exclude(order__email="")
            .values_list("order__email", "at")
            .order_by()
        )
        # Each shopper's last order, by email (the (shop, email) index), a batch at a time.
        last_order: dict[str, datetime] = {}
        emails = sorted({email for email, _ in firsts_in_range})
        for i in range(0, len(emails), EMAIL_BATCH):
            last_order.update(
                Order.objects.filter(
                    shop=shop, email__in=emails[i : i + EMAIL_BATCH], deleted_at__isnull=True
                )
                .values("email")
                .annotate(last=Max("shopify_created_at"))
                .values_list("email", "last")
                .order_by()
            )
        for email, moment in firsts_in_range:
            day = _local_day(moment, zone)
            _add(days, (day, "repeat", kind, "orders"), 1)
            last = last_order.get(email)
            if last is not None and last > moment:
                _add(days, (day, "repeat", kind, "again"), 1)


def _problems(shop: Shop, zone: ZoneInfo, start: datetime, end: datetime, days: dict) -> None:
    reported = (
        ProblemCase.objects.filter(
            shop=shop,
            order__deleted_at__isnull=True,
            created_at__gte=start,
            created_at__lt=end,
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "kind", "reported_by")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in reported:
        keys = (row["day"].isoformat(), "problems", row["kind"], row["reported_by"])
        _add(days, keys, row["n"])


FAMILIES = (_orders, _shipments, _messages, _returns, _repeat, _problems)


# ---------------------------------------------------------------------------------------------


def shop_days_rollup(*, shop: Shop, first: date, last: date) -> int:
    """Count every figure of ``shop`` for the days ``first``..``last`` (its zone) afresh and
    store them; days without any activity lose their row. Returns the rows written."""
    if last < first:
        raise ValueError("the last day comes before the first")
    zone = shop_zone(shop)
    written = 0
    for chunk_first, chunk_last in _chunks(first, last):
        start, end = _day_bounds(zone, chunk_first, chunk_last)
        days: dict = _tree()
        for family in FAMILIES:
            family(shop, zone, start, end, days)
        now = timezone.now()
        rows = [
            ShopDay(shop=shop, day=date.fromisoformat(day), figures=figures, computed_at=now)
            for day, figures in days.items()
        ]
        with transaction.atomic():
            ShopDay.objects.filter(shop=shop, day__gte=chunk_first, day__lte=chunk_last).exclude(
                day__in=[row.day for row in rows]
            ).delete()
            ShopDay.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["shop", "day"],
                update_fields=["figures", "computed_at"],
                batch_size=500,
            )
        written += len(rows)
    return written


def shop_days_refresh(*, shop: Shop, days: int = ROLLUP_WINDOW_DAYS) -> int:
    """Count the last ``days`` days again (today included); a shop with no rollup yet is
    counted from its first order (its history, once)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    today = timezone.localdate(timezone=shop_zone(shop))
    first = today - timedelta(days=days - 1)
    if not ShopDay.objects.filter(shop=shop).exists():
        oldest = (
            Order.objects.filter(shop=shop, shopify_created_at__isnull=False)
            .order_by("shopify_created_at")
            .values_list("shopify_created_at", flat=True)
            .first()
        )
        if oldest is not None:
            first = min(first, oldest.astimezone(shop_zone(shop)).date())
    written = shop_days_rollup(shop=shop, first=first, last=today)
    logger.info(
        "insights.rollup.done",
        extra={"shop": shop.myshopify_domain, "first": first.isoformat(), "rows": written},
    )
    return written

"""Reads for the admin's home: a period's figures from the daily rollup, and what is wrong now.

insights_period(shop=, first=, last=) ─ ShopDay rows of the period (one per day at most,
    through the (shop, day) index) ─ summed ─ Report: tables, each a chart, a table and a CSV
shipments_needing_attention(shop=) ─ open delays and parcels in trouble now (indexed:
    delay (shop, resolved_at), shipment (shop, stage)), a page of each with its total
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Max
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from insights.models import ShopDay
from insights.services import ORDER_STAGES
from notifications.models import Channel, Message, Suppression, Trigger
from returns.models import Resolution
from shopapp.models import Shop
from tracking.models import Delay, ProblemCase, Shipment, Stage

ORDER_STAGE_LABELS = {
    "cancelled": _("Cancelled"),
    "unfulfilled": _("Not shipped yet"),
    "problem": _("A parcel has a problem"),
    "delayed": _("A parcel is delayed"),
    "on_the_way": _("On the way"),
    "delivered": _("Delivered"),
}
REPEAT_LABELS = {
    "delivery": _("a delivery"),
    "delay": _("a delay"),
    "return": _("a return"),
    "exchange": _("an exchange"),
}
# Shopify's ReturnReason values in words (an open set: others are shown as Shopify spells them).
REASON_LABELS = {
    "SIZE_TOO_SMALL": _("Size too small"),
    "SIZE_TOO_LARGE": _("Size too large"),
    "UNWANTED": _("Customer changed their mind"),
    "NOT_AS_DESCRIBED": _("Not as described"),
    "WRONG_ITEM": _("Received the wrong item"),
    "DEFECTIVE": _("Damaged or defective"),
    "STYLE": _("Style"),
    "COLOR": _("Color"),
    "OTHER": _("Other"),
    "UNKNOWN": _("Unknown"),
}
# The resolutions and the problems in the admin's language (the models' labels are English).
RESOLUTION_LABELS = {
    "refund": _("Refund to the original payment"),
    "store_credit": _("Store credit"),
    "exchange": _("Exchange for another variant"),
}
PROBLEM_LABELS = {
    "not_received": _("Not received"),
    "damaged": _("Arrived damaged"),
    "wrong_item": _("Wrong item"),
}
# Rows a table shows on the page (the CSV has them all).
PAGE_ROWS = 15
ATTENTION_ROWS = 20


@dataclass
class Table:
    """One figure: a chart of ``chart`` (label column, value column), its table, its CSV."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    # Index of the column the chart draws, and how it reads its values.
    chart_column: int | None = 1
    chart_unit: str = ""
    note: str = ""
    # Grouped bars: the columns drawn side by side, each with its own pattern.
    series_columns: list[int] = field(default_factory=list)
    # The drawn chart (SVG), set by the view.
    chart: Any = None

    @property
    def label_columns(self) -> int:
        """How many leading columns name a row (the rest are figures)."""
        return self.series_columns[0] if self.series_columns else 1

    @property
    def page_rows(self) -> list[list[Any]]:
        return self.rows[:PAGE_ROWS]

    @property
    def is_truncated(self) -> bool:
        return len(self.rows) > PAGE_ROWS


@dataclass
class Report:
    first: date
    last: date
    days_counted: int
    computed_at: datetime | None
    headline: dict[str, Any]
    tables: list[Table]

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)


def _merge(into: dict, other: dict) -> None:
    for key, value in other.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


def _percentile(histogram: dict[str, int], share: float) -> float | None:
    """Nearest-rank percentile of a {value: count} histogram: the smallest value with at
    least ``share`` of the counts at or below it."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(share * total))
    seen = 0
    for value in sorted(histogram, key=float):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return None  # pragma: no cover - the loop always reaches the total


def _days(hours: float | None) -> float | None:
    return None if hours is None else round(hours / 24, 1)


def _rate(part: float, whole: float) -> float | None:
    return None if not whole else round(100 * part / whole, 1)


def _label(choices: Any, value: str) -> str:
    try:
        # The models' own words, in the admin's language where a catalog has them.
        return gettext(str(choices(value).label))
    except ValueError:
        return value.replace("_", " ").capitalize()


def insights_period(*, shop: Shop, first: date, last: date) -> Report:
    rows = ShopDay.objects.filter(shop=shop, day__gte=first, day__lte=last)
    totals: dict = {}
    count = 0
    for figures in rows.values_list("figures", flat=True):
        _merge(totals, figures)
        count += 1
    computed_at = ShopDay.objects.filter(shop=shop).aggregate(at=Max("computed_at"))["at"]
    tables = [
        _orders_table(totals),
        _shipments_table(totals),
        _delivery_table(totals),
        _tracking_table(totals),
        _problems_table(totals),
        *_message_tables(totals),
        *_return_tables(totals),
        _repeat_table(totals),
        _reviews_table(totals),
    ]
    orders = totals.get("orders", {})
    returns = totals.get("returns", {})
    sent = sum(
        n
        for channel in totals.get("messages", {}).values()
        for statuses in channel.values()
        for status, n in statuses.items()
        if status == Message.Status.SENT
    )
    headline = {
        "orders": orders.get("placed", 0),
        "delivered": sum(c.get("n", 0) for c in totals.get("delivery", {}).values()),
        "returns": returns.get("requested", 0),
        "return_rate": _rate(returns.get("requested", 0), orders.get("placed", 0)),
        "messages_sent": sent,
        "looked_rate": _rate(
            totals.get("tracking", {}).get("orders_viewed", 0), orders.get("placed", 0)
        ),
    }
    return Report(first, last, count, computed_at, headline, tables)


def _orders_table(totals: dict) -> Table:
    by_stage = totals.get("orders", {}).get("by_stage", {})
    rows = [[str(ORDER_STAGE_LABELS[s]), by_stage.get(s, 0)] for s in ORDER_STAGES]
    return Table(
        "orders",
        gettext("Orders placed, by where they are now"),
        [gettext("Stage"), gettext("Orders")],
        rows,
        note=gettext("Orders placed in the period; an order reads as its least advanced parcel."),
    )


def _shipments_table(totals: dict) -> Table:
    by_stage = totals.get("shipments", {}).get("by_stage", {})
    known = [s.value for s in Stage]
    rows = [[_label(Stage, s), by_stage.get(s, 0)] for s in known]
    rows += [[_label(Stage, s), n] for s, n in sorted(by_stage.items()) if s not in known]
    return Table(
        "shipments",
        gettext("Shipments sent, by where they are now"),
        [gettext("Stage"), gettext("Shipments")],
        rows,
        note=gettext("Parcels fulfilled in the period."),
    )


def _delivery_table(totals: dict) -> Table:
    rows = []
    for carrier, c in sorted(totals.get("delivery", {}).items(), key=lambda kv: -kv[1]["n"]):
        hours = c.get("hours", {})
        rows.append(
            [
                carrier,
                c.get("n", 0),
                _days(_percentile(hours, 0.5)),
                _days(_percentile(hours, 0.9)),
                c.get("on_time", 0),
                c.get("with_estimate", 0),
                _rate(c.get("on_time", 0), c.get("with_estimate", 0)),
            ]
        )
    return Table(
        "delivery",
        gettext("Delivery time by carrier"),
        [
            gettext("Carrier"),
            gettext("Delivered"),
            gettext("Median (days)"),
            gettext("90th percentile (days)"),
            gettext("On time"),
            gettext("With an estimate"),
            gettext("On-time rate (%)"),
        ],
        rows,
        chart_column=2,
        chart_unit=gettext("days"),
        note=gettext(
            "Parcels delivered in the period, from fulfilment to delivery. On time: delivered "
            "by the day the carrier estimated (parcels without an estimate are not counted)."
        ),
    )


def _tracking_table(totals: dict) -> Table:
    placed = totals.get("orders", {}).get("placed", 0)
    tracking = totals.get("tracking", {})
    looked = tracking.get("orders_viewed", 0)
    rows = [
        [gettext("Orders placed"), placed],
        [gettext("Orders whose shopper opened the tracking page"), looked],
        [gettext("Share of orders looked at (%)"), _rate(looked, placed)],
        [gettext("Tracking page views"), tracking.get("views", 0)],
        [
            gettext("Problems reported by shoppers"),
            _problems_count(totals, ProblemCase.Reporter.SHOPPER),
        ],
    ]
    return Table(
        "tracking",
        gettext("Tracking page: “where is my order?” answered"),
        [gettext("Figure"), gettext("Value")],
        rows,
        chart_column=None,
        note=gettext(
            "Views of the tracking page for the orders placed in the period, whenever they "
            "were opened; problems the shoppers reported in the period (see Problems "
            "reported)."
        ),
    )


def _message_tables(totals: dict) -> list[Table]:
    statuses = [Message.Status.SENT, Message.Status.FAILED, Message.Status.SKIPPED]
    rows = []
    for channel, triggers in sorted(totals.get("messages", {}).items()):
        for trigger, by_status in sorted(triggers.items()):
            other = sum(n for s, n in by_status.items() if s not in statuses)
            rows.append(
                [
                    _label(Channel, channel),
                    _label(Trigger, trigger),
                    *[by_status.get(s, 0) for s in statuses],
                    other,
                ]
            )
    messages = Table(
        "messages",
        gettext("Messages by channel and trigger"),
        [
            gettext("Channel"),
            gettext("Trigger"),
            gettext("Sent"),
            gettext("Failed"),
            gettext("Skipped"),
            gettext("Cancelled or waiting"),
        ],
        rows,
        chart_column=None,
        series_columns=[2, 3, 4],
        note=gettext("Messages due in the period."),
    )
    suppressed = totals.get("suppressed", {})
    reasons = [r.value for r in Suppression.Reason]
    channels = sorted({c for by_channel in suppressed.values() for c in by_channel})
    rows = [
        [_label(Channel, ch), *[suppressed.get(r, {}).get(ch, 0) for r in reasons]]
        for ch in channels
    ]
    unsubscribes = Table(
        "unsubscribes",
        gettext("Unsubscribes and other suppressions"),
        [gettext("Channel"), *[_label(Suppression.Reason, r) for r in reasons]],
        rows,
        chart_column=None,
        series_columns=[1, 2, 3, 4],
        note=gettext("Addresses and numbers the app stopped messaging in the period."),
    )
    return [messages, unsubscribes]


def _return_tables(totals: dict) -> list[Table]:
    returns = totals.get("returns", {})
    products = totals.get("products", {})
    rows = []
    for title, p in products.items():
        returned = p.get("returned", 0)
        if returned:
            rows.append([title, p.get("sold", 0), returned, _rate(returned, p.get("sold", 0))])
    rows.sort(key=lambda r: (-r[2], r[0]))
    by_product = Table(
        "returns_by_product",
        gettext("Returns by product"),
        [
            gettext("Product"),
            gettext("Units sold"),
            gettext("Units returned"),
            gettext("Return rate (%)"),
        ],
        rows,
        chart_column=2,
        chart_unit=gettext("units"),
        note=gettext("Units returned in the period against units sold in the period."),
    )
    reason_rows = sorted(
        ([str(REASON_LABELS.get(r, r)), n] for r, n in returns.get("by_reason", {}).items()),
        key=lambda r: (-r[1], r[0]),
    )
    by_reason = Table(
        "returns_by_reason",
        gettext("Returns by reason"),
        [gettext("Reason"), gettext("Units returned")],
        reason_rows,
        chart_unit=gettext("units"),
    )
    resolutions = returns.get("by_resolution", {})
    res_rows = []
    for value in [r.value for r in Resolution]:
        r = resolutions.get(value, {})
        if value == Resolution.MIXED and not r:
            # Items settled differently (the portal's per-item choice): shown once there are.
            continue
        res_rows.append(
            [
                str(RESOLUTION_LABELS.get(value, _label(Resolution, value))),
                r.get("requested", 0),
                r.get("processed", 0),
                round(r.get("refunded", 0), 2),
                round(r.get("kept", 0), 2),
            ]
        )
    by_resolution = Table(
        "resolutions",
        gettext("Resolutions, and revenue kept"),
        [
            gettext("Resolution"),
            gettext("Requested"),
            gettext("Processed"),
            gettext("Paid back"),
            gettext("Revenue kept"),
        ],
        res_rows,
        chart_column=None,
        series_columns=[1, 2],
        note=gettext(
            "Requested: returns asked for in the period. Processed, paid back and kept: "
            "returns processed in the period. Kept: store credit, and exchanges less any "
            "difference refunded."
        ),
    )
    refund_hours = returns.get("refund_hours", {})
    refund = Table(
        "refund_time",
        gettext("Time from request to refund"),
        [gettext("Figure"), gettext("Value")],
        [
            [gettext("Returns refunded"), sum(refund_hours.values())],
            [gettext("Median (days)"), _days(_percentile(refund_hours, 0.5))],
            [gettext("90th percentile (days)"), _days(_percentile(refund_hours, 0.9))],
        ],
        chart_column=None,
    )
    return [by_product, by_reason, by_resolution, refund]


def _repeat_table(totals: dict) -> Table:
    repeat = totals.get("repeat", {})
    rows = []
    for kind, label in REPEAT_LABELS.items():
        r = repeat.get(kind, {})
        rows.append(
            [
                gettext("After %(what)s") % {"what": label},
                r.get("orders", 0),
                r.get("again", 0),
                _rate(r.get("again", 0), r.get("orders", 0)),
            ]
        )
    return Table(
        "repeat",
        gettext("Repeat purchases"),
        [
            gettext("After"),
            gettext("Orders"),
            gettext("Shopper ordered again"),
            gettext("Repeat rate (%)"),
        ],
        rows,
        chart_column=3,
        chart_unit="%",
        note=gettext(
            "Orders whose first delivery, delay, return or exchange fell in the period, and "
            "how many of their shoppers (same email) placed another order afterwards."
        ),
    )


def _problems_count(totals: dict, reporter: str) -> int:
    return sum(by.get(reporter, 0) for by in totals.get("problems", {}).values())


def _problems_table(totals: dict) -> Table:
    problems = totals.get("problems", {})
    shopper, staff = ProblemCase.Reporter.SHOPPER, ProblemCase.Reporter.STAFF
    rows = []
    for kind in ProblemCase.Kind:
        by = problems.get(kind.value, {})
        label = str(PROBLEM_LABELS.get(kind.value, kind.label))
        rows.append([label, by.get(shopper, 0), by.get(staff, 0)])
    return Table(
        "problems",
        gettext("Problems reported"),
        [gettext("Problem"), gettext("Reported by shoppers"), gettext("Recorded by staff")],
        rows,
        chart_column=None,
        series_columns=[1, 2],
        note=gettext(
            "Problems reported in the period: by the shopper on the tracking page, or recorded "
            "by staff on the order's page for a shopper who called or wrote."
        ),
    )


def _reviews_table(totals: dict) -> Table:
    reviews = totals.get("reviews", {})
    requested, answered = reviews.get("requested", 0), reviews.get("answered", 0)
    ratings = reviews.get("ratings", {})
    average = round(reviews.get("rating_sum", 0) / answered, 2) if answered else None
    rows: list[list[Any]] = [
        [gettext("Review requests sent"), requested],
        [gettext("Review requests answered"), answered],
        [gettext("Share answered (%)"), _rate(answered, requested)],
        [gettext("Average rating (of 5)"), average],
    ]
    for stars in range(5, 0, -1):
        label = ngettext("Rated %(stars)d star", "Rated %(stars)d stars", stars) % {"stars": stars}
        rows.append([label, ratings.get(str(stars), 0)])
    return Table(
        "reviews",
        gettext("Review requests"),
        [gettext("Figure"), gettext("Value")],
        rows,
        chart_column=None,
        note=gettext(
            "Review requests sent in the period, and how many of them the shopper answered "
            "with a star rating from the email (counted on the day the request was sent, "
            "whenever the answer came). A rating counts once the shopper sends it from the "
            "rating page; a shopper who changes it is still one answer. Reviews written on "
            "your review platform afterwards are not counted here."
        ),
    )


def shipments_needing_attention(*, shop: Shop) -> dict[str, Any]:
    """Open delays and parcels with a problem now, newest first, a page of each."""
    delays = (
        Delay.objects.filter(shop=shop, resolved_at__isnull=True)
        .select_related("order", "shipment")
        .order_by("-detected_at")
    )
    problems = (
        Shipment.objects.filter(shop=shop, stage=Stage.PROBLEM)
        .select_related("order")
        .order_by("-last_event_at")
    )
    return {
        "delays": list(delays[:ATTENTION_ROWS]),
        "delays_total": delays.count(),
        "problems": list(problems[:ATTENTION_ROWS]),
        "problems_total": problems.count(),
    }

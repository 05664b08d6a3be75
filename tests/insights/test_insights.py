"""The admin's home: every figure checked against a store built here with known answers.

The store is in New York's zone: an order placed at 23:30 on the last day of February there
(04:30 UTC on March 1st) belongs to February, as the Shopify admin counts it. The rollup is
run by the real job through Redis and a burst worker, then read through the page and its CSVs.
"""

import csv
import io
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from insights.charts import bar_chart_svg
from insights.forms import PRESETS, period_from_query
from insights.jobs import insights_rollup_all_job
from insights.models import ShopDay
from insights.services import shop_days_rollup
from notifications.models import Message, Sequence, SequenceStep, Suppression
from returns.models import ReturnLineItem, ReturnRequest
from shopapp.models import LineItem, Order, Shop, Task
from tests.shopapp.test_embedded import get_page, make_shop
from tracking.models import Delay, ProblemCase, Shipment, TrackingPageView

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")
MARCH = {"period": "custom", "start": "2026-03-01", "end": "2026-03-31"}
_ids = iter(range(1, 1_000_000))


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY)


def order(shop: Shop, email: str, placed: datetime, lines=(), **fields) -> Order:
    n = next(_ids)
    made = Order.objects.create(
        shop=shop,
        shopify_id=7_000_000 + n,
        name=f"#{1000 + n}",
        email=email,
        shopify_created_at=placed,
        **fields,
    )
    for title, quantity, price in lines:
        LineItem.objects.create(
            shop=shop,
            order=made,
            shopify_id=9_000_000 + next(_ids),
            title=title,
            quantity=quantity,
            price=Decimal(price),
        )
    return made


def shipment(o: Order, carrier: str, created: datetime, stage: str, **fields) -> Shipment:
    n = next(_ids)
    return Shipment.objects.create(
        shop=o.shop,
        order=o,
        fulfillment_id=6_000_000 + n,
        name=f"{o.name}-F{n}",
        status="success",
        stage=stage,
        tracking_company=carrier,
        shopify_created_at=created,
        **fields,
    )


def return_request(o: Order, resolution: str, requested: datetime, lines, **fields):
    ret = ReturnRequest.objects.create(
        shop=o.shop, order=o, resolution=resolution, status="OPEN", **fields
    )
    # created_at is auto_now_add: the request's moment is set afterwards.
    ReturnRequest.objects.filter(pk=ret.pk).update(created_at=requested)
    for title, quantity, reason in lines:
        item = LineItem.objects.get(order=o, title=title)
        ReturnLineItem.objects.create(
            shop=o.shop, return_request=ret, line_item=item, quantity=quantity, reason=reason
        )
    return ret


def message(o: Order, step: SequenceStep, trigger: str, channel: str, status: str, due):
    return Message.objects.create(
        shop=o.shop,
        order=o,
        step=step,
        subject_key=f"s{next(_ids)}",
        trigger=trigger,
        channel=channel,
        recipient=o.email,
        due_at=due,
        status=status,
    )


def suppress(shop: Shop, channel: str, reason: str, when: datetime) -> None:
    row = Suppression.objects.create(
        shop=shop, channel=channel, address=f"x{next(_ids)}@example.com", reason=reason
    )
    Suppression.objects.filter(pk=row.pk).update(created_at=when)


def problem(o: Order, kind: str, reported_by: str, when: datetime, **fields) -> ProblemCase:
    case = ProblemCase.objects.create(
        shop=o.shop, order=o, kind=kind, reported_by=reported_by, **fields
    )
    ProblemCase.objects.filter(pk=case.pk).update(created_at=when)
    return case


@pytest.fixture
def store():
    """The known store (see each figure's test for what it should read)."""
    shop = make_shop("alpha.myshopify.com", timezone="America/New_York")
    o1 = order(shop, "a@example.com", at(3, 2, 10), [("Linen shirt", 2, "40.00")])
    o2 = order(
        shop,
        "b@example.com",
        at(3, 3, 9),
        [("Linen shirt", 1, "40.00"), ("Wool beanie", 1, "20.00")],
    )
    o3 = order(shop, "a@example.com", at(3, 10), [("Wool beanie", 2, "20.00")])
    order(shop, "c@example.com", at(3, 15), [("Canvas tote", 1, "30.00")])
    order(
        shop,
        "d@example.com",
        at(3, 16),
        [("Canvas tote", 5, "30.00")],
        cancelled_at=at(3, 16, 13),
    )
    o6 = order(shop, "e@example.com", at(3, 20), [("Canvas tote", 1, "30.00")])
    # February in New York, March 1st in UTC.
    o7 = order(shop, "f@example.com", at(2, 28, 23, 30), [("Canvas tote", 1, "30.00")])
    # April: outside the period, but a later order of a@ (a repeat purchase).
    order(shop, "a@example.com", at(4, 1, 0, 30), [("Canvas tote", 1, "30.00")])

    # UPS: 48 h on time, 96 h late, 24 h without an estimate.
    shipment(
        o1,
        "UPS",
        at(3, 2, 12),
        "delivered",
        delivered_at=at(3, 4, 12),
        estimated_delivery_at=at(3, 4, 20),
    )
    shipment(
        o2,
        "UPS",
        at(3, 3, 10),
        "delivered",
        delivered_at=at(3, 7, 10),
        estimated_delivery_at=at(3, 5, 9),
    )
    shipment(o2, "USPS", at(3, 3, 10), "in_transit")
    s4 = shipment(o3, "FedEx", at(3, 10, 15), "delayed")
    s5 = shipment(o6, "DHL Express", at(3, 20, 15), "problem")
    shipment(o7, "UPS", at(2, 28, 23, 45), "delivered", delivered_at=at(3, 1, 23, 45))
    Delay.objects.create(
        shop=shop,
        order=o3,
        shipment=s4,
        kind=Delay.Kind.CARRIER_DELAYED,
        dedupe_key=f"shipment:{s4.pk}:carrier_delayed",
        detected_at=at(3, 12),
    )

    TrackingPageView.objects.create(shop=shop, order=o1, views=3)
    TrackingPageView.objects.create(shop=shop, order=o2, views=1)
    TrackingPageView.objects.create(shop=shop, order=o7, views=5)

    return_request(
        o1,
        "refund",
        at(3, 6),
        [("Linen shirt", 1, "SIZE_TOO_SMALL")],
        processed_at=at(3, 9),
        refunded_amount=Decimal("40.00"),
    )
    return_request(
        o2,
        "exchange",
        at(3, 7),
        [("Linen shirt", 1, "SIZE_TOO_LARGE")],
        processed_at=at(3, 8),
        refunded_amount=Decimal("5.00"),
    )
    return_request(
        o3,
        "store_credit",
        at(3, 12),
        [("Wool beanie", 2, "DEFECTIVE")],
        processed_at=at(3, 14),
        refunded_amount=Decimal("40.00"),
    )
    return_request(o2, "refund", at(3, 25), [("Wool beanie", 1, "UNWANTED")])

    sequence = Sequence.objects.create(shop=shop, key="all", name="All", trigger="shipped")
    ship_step = SequenceStep.objects.create(shop=shop, sequence=sequence, template_key="shipped")
    sms_step = SequenceStep.objects.create(
        shop=shop, sequence=sequence, channel="sms", template_key="shipped"
    )
    review_step = SequenceStep.objects.create(
        shop=shop, sequence=sequence, template_key="review_request"
    )
    message(o1, ship_step, "shipped", "email", "sent", at(3, 2, 13))
    message(o2, ship_step, "shipped", "email", "sent", at(3, 3, 11))
    message(o3, ship_step, "shipped", "email", "failed", at(3, 10, 16))
    message(o3, sms_step, "shipped", "sms", "skipped", at(3, 10, 16))
    message(o1, review_step, "delivered", "email", "sent", at(3, 11))
    message(o3, ship_step, "delayed", "email", "cancelled", at(3, 12))
    message(o7, ship_step, "shipped", "email", "sent", at(2, 28, 23, 50))

    suppress(shop, "email", "unsubscribed", at(3, 5))
    suppress(shop, "email", "unsubscribed", at(3, 6))
    suppress(shop, "sms", "unsubscribed", at(3, 7))
    suppress(shop, "email", "bounced", at(3, 8))
    suppress(shop, "email", "unsubscribed", at(2, 20))

    # Another shop's March: none of it may reach alpha's figures.
    other = make_shop("bravo.myshopify.com")
    theirs = order(other, "a@example.com", at(3, 5), [("Linen shirt", 9, "40.00")])
    delayed = shipment(theirs, "UPS", at(3, 5), "problem", delivered_at=at(3, 6))
    Delay.objects.create(
        shop=other,
        order=theirs,
        shipment=delayed,
        kind=Delay.Kind.NO_MOVEMENT,
        dedupe_key="b",
        detected_at=at(3, 6),
    )
    TrackingPageView.objects.create(shop=other, order=theirs, views=50)
    problem(theirs, "not_received", "shopper", at(3, 6))

    # Problems: March has 2 from shoppers (not received, wrong item) and 2 recorded by staff
    # (damaged twice, one resolved since); February's (late on the 28th in New York) and
    # April's are outside the period.
    problem(o1, "not_received", "shopper", at(3, 5))
    problem(o6, "wrong_item", "shopper", at(3, 21))
    problem(o2, "damaged", "staff", at(3, 8))
    problem(o3, "damaged", "staff", at(3, 13), status="resolved", resolved_at=at(3, 14))
    problem(o7, "damaged", "shopper", at(2, 28, 23, 55))
    problem(o1, "not_received", "shopper", at(4, 2))
    return shop, {"o1": o1, "o2": o2, "o3": o3, "o6": o6, "s5": s5, "other": other}


def _rollup_by_job(rq_worker, capture) -> None:
    """The cron's round, as in production: a Task per shop, handed to RQ on commit, run by a
    burst worker (a shop's first round counts its whole history)."""
    with capture(execute=True):
        insights_rollup_all_job()
    rq_worker()


def _csv(client, shop: Shop, key: str, **period) -> list[list[str]]:
    response = get_page(client, shop, f"/app/insights/{key}.csv", **period)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def march(store, rq_worker, client, django_capture_on_commit_callbacks):
    shop, rows = store
    _rollup_by_job(rq_worker, django_capture_on_commit_callbacks)
    assert Task.objects.filter(status=Task.Status.DONE).count() == 2
    # each shop's first count asks for a second one a few minutes later (the mirror fills on)
    recount = Task.objects.get(shop=shop, status=Task.Status.PENDING)
    assert recount.kwargs == {"shop_id": shop.pk, "days": 60}
    assert recount.run_after > timezone.now()
    return shop, rows, client


def test_orders_and_shipments_by_stage(march):
    shop, _, client = march
    assert _csv(client, shop, "orders", **MARCH) == [
        ["Stage", "Orders"],
        ["Cancelled", "1"],
        ["Not shipped yet", "1"],
        ["A parcel has a problem", "1"],
        ["A parcel is delayed", "1"],
        ["On the way", "1"],
        ["Delivered", "1"],
    ]
    shipments = dict(_csv(client, shop, "shipments", **MARCH)[1:])
    # Five parcels fulfilled in March (New York days); the 23:45 one of Feb 28th is not.
    assert {k: v for k, v in shipments.items() if v != "0"} == {
        "In transit": "1",
        "Delivered": "2",
        "Delayed": "1",
        "Problem": "1",
    }


def test_delivery_time_by_carrier(march):
    shop, _, client = march
    rows = _csv(client, shop, "delivery", **MARCH)
    assert rows[0] == [
        "Carrier",
        "Delivered",
        "Median (days)",
        "90th percentile (days)",
        "On time",
        "With an estimate",
        "On-time rate (%)",
    ]
    # UPS delivered 24 h, 48 h and 96 h after fulfilment: median 48 h, nearest-rank p90 96 h;
    # one of the two with an estimate came by the estimated day.
    assert rows[1:] == [["UPS", "3", "2.0", "4.0", "1", "2", "50.0"]]


def test_tracking_page_views_and_share_of_orders_looked_at(march):
    shop, _, client = march
    assert _csv(client, shop, "tracking", **MARCH)[1:] == [
        ["Orders placed", "6"],
        ["Orders whose shopper opened the tracking page", "2"],
        ["Share of orders looked at (%)", "33.3"],
        ["Tracking page views", "4"],
        ["Problems reported by shoppers", "2"],
    ]


def test_problems_reported_by_kind_and_reporter(march):
    shop, _, client = march
    assert _csv(client, shop, "problems", **MARCH) == [
        ["Problem", "Reported by shoppers", "Recorded by staff"],
        ["Not received", "1", "0"],
        ["Arrived damaged", "0", "2"],
        ["Wrong item", "1", "0"],
    ]
    # February's one problem, reported late on the 28th in New York (March 1st in UTC)
    february = {"period": "custom", "start": "2026-02-01", "end": "2026-02-28"}
    assert _csv(client, shop, "problems", **february)[1:] == [
        ["Not received", "0", "0"],
        ["Arrived damaged", "1", "0"],
        ["Wrong item", "0", "0"],
    ]


def test_messages_by_channel_and_trigger_and_unsubscribes(march):
    shop, _, client = march
    assert _csv(client, shop, "messages", **MARCH) == [
        ["Channel", "Trigger", "Sent", "Failed", "Skipped", "Cancelled or waiting"],
        ["Email", "Delayed", "0", "0", "0", "1"],
        ["Email", "Delivered", "1", "0", "0", "0"],
        ["Email", "Shipped", "2", "1", "0", "0"],
        ["SMS", "Shipped", "0", "0", "1", "0"],
    ]
    assert _csv(client, shop, "unsubscribes", **MARCH) == [
        ["Channel", "Unsubscribed", "Bounced", "Complained", "Invalid"],
        ["Email", "2", "1", "0", "0"],
        ["SMS", "1", "0", "0", "0"],
    ]
    # one review request sent, none answered: no share of nothing, no average of nothing
    assert _csv(client, shop, "reviews", **MARCH)[1:] == [
        ["Review requests sent", "1"],
        ["Review requests answered", "0"],
        ["Share answered (%)", "0.0"],
        ["Average rating (of 5)", ""],
        ["Rated 5 stars", "0"],
        ["Rated 4 stars", "0"],
        ["Rated 3 stars", "0"],
        ["Rated 2 stars", "0"],
        ["Rated 1 star", "0"],
    ]


def test_returns_by_product_reason_resolution_and_time_to_refund(march):
    shop, _, client = march
    assert _csv(client, shop, "returns_by_product", **MARCH)[1:] == [
        ["Wool beanie", "3", "3", "100.0"],
        ["Linen shirt", "3", "2", "66.7"],
    ]
    assert _csv(client, shop, "returns_by_reason", **MARCH)[1:] == [
        ["Damaged or defective", "2"],
        ["Customer changed their mind", "1"],
        ["Size too large", "1"],
        ["Size too small", "1"],
    ]
    assert _csv(client, shop, "resolutions", **MARCH)[1:] == [
        ["Refund to the original payment", "2", "1", "40.0", "0"],
        ["Store credit", "1", "1", "40.0", "40.0"],
        ["Exchange for another variant", "1", "1", "5.0", "35.0"],
    ]
    assert _csv(client, shop, "refund_time", **MARCH)[1:] == [
        ["Returns refunded", "1"],
        ["Median (days)", "3.0"],
        ["90th percentile (days)", "3.0"],
    ]


def test_repeat_purchase_rate_after_each_experience(march):
    shop, _, client = march
    assert _csv(client, shop, "repeat", **MARCH)[1:] == [
        # o1 (a@, ordered again), o2 (b@, never again), o7 (delivered March 1st)
        ["After a delivery", "3", "1", "33.3"],
        # o3's delay, and a@ ordered again in April
        ["After a delay", "1", "1", "100.0"],
        # first returns of o1 and o3 (a@ again both times) and o2 (b@)
        ["After a return", "3", "2", "66.7"],
        ["After an exchange", "1", "0", "0.0"],
    ]


def test_home_page_shows_the_figures_charts_and_what_needs_attention(march):
    shop, rows, client = march
    response = get_page(client, shop, "/app/", **MARCH)
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "<h1>Insights</h1>" in html
    assert re.search(r'data-figure="orders">6<', html)
    assert re.search(r'data-figure="returns">4 \(66.7% of orders\)<', html)
    assert re.search(r'data-figure="looked_rate">33.3%<', html)
    assert re.search(r'data-figure="messages_sent">3<', html)
    # Delayed and problem parcels now, each a link to its order; the other shop's are not.
    attention = html.split("data-attention", 1)[1].split("</section>", 1)[0]
    links = re.findall(r'href="/app/orders/(\d+)\?', attention)
    assert links == [str(rows["o3"].shopify_id), str(rows["o6"].shopify_id)]
    assert "Delayed (1)" in attention
    assert "Problems (1)" in attention
    # Each chart is an SVG image with a title, its bars labelled in text.
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) >= 6
    assert all('role="img"' in svg and "<title" in svg for svg in svgs)
    delivery = next(svg for svg in svgs if "Delivery time by carrier" in svg)
    assert ">UPS<" in delivery
    assert ">2 days<" in delivery
    # Every figure has a CSV link carrying the period.
    assert html.count("Download CSV") == 13
    assert "/app/insights/delivery.csv?" in html
    assert "start=2026-03-01" in html
    # answers come from the review request's own stars, and the page says how they count
    assert "answered with a star rating from the email" in html


def test_a_bad_period_says_so_and_shows_the_default(march):
    shop, _, client = march
    response = get_page(
        client, shop, "/app/", period="custom", start="2026-03-31", end="2026-03-01"
    )
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert 'data-banner="period-error"' in html
    assert "The end date comes before the start date." in html
    response = get_page(client, shop, "/app/", period="custom", start="nonsense", end="")
    assert 'data-banner="period-error"' in response.content.decode()
    assert get_page(client, shop, "/app/insights/nothing.csv").status_code == 404
    # with no period asked for, the form shows the default it counted
    html = get_page(client, shop, "/app/").content.decode()
    assert '<option value="30d" selected>' in html


def test_presets_count_whole_days_in_the_shops_zone():
    today = date(2026, 12, 5)
    for key, (_, days) in PRESETS.items():
        form, first, last = period_from_query({"period": key}, today=today)
        assert form.is_valid()
        assert (last, (last - first).days + 1) == (today, days)
    _, first, last = period_from_query({}, today=today)
    assert (first, last) == (today - timedelta(days=29), today)
    form, first, _ = period_from_query(
        {"period": "custom", "start": "2020-01-01", "end": "2026-01-01"}, today=today
    )
    assert not form.is_valid()
    assert first == today - timedelta(days=29)


def test_another_shop_reads_only_its_own_figures(march):
    _, rows, client = march
    other = rows["other"]
    assert _csv(client, other, "tracking", **MARCH)[1:] == [
        ["Orders placed", "1"],
        ["Orders whose shopper opened the tracking page", "1"],
        ["Share of orders looked at (%)", "100.0"],
        ["Tracking page views", "50"],
        ["Problems reported by shoppers", "1"],
    ]


def test_the_rollup_counts_a_day_again_and_forgets_days_left_empty(store):
    shop, rows = store
    shop_days_rollup(shop=shop, first=date(2026, 2, 1), last=date(2026, 4, 30))
    day = ShopDay.objects.get(shop=shop, day=date(2026, 3, 20))
    assert day.figures["orders"]["by_stage"] == {"problem": 1}
    # The parcel arrives after all; the order of March 20th moves on when counted again.
    Shipment.objects.filter(pk=rows["s5"].pk).update(stage="delivered")
    shop_days_rollup(shop=shop, first=date(2026, 3, 20), last=date(2026, 3, 20))
    day.refresh_from_db()
    assert day.figures["orders"]["by_stage"] == {"delivered": 1}
    # The order is deleted: the day has nothing left and loses its row.
    Order.objects.filter(pk=rows["o6"].pk).update(deleted_at=at(3, 21))
    shop_days_rollup(shop=shop, first=date(2026, 3, 20), last=date(2026, 3, 20))
    assert not ShopDay.objects.filter(shop=shop, day=date(2026, 3, 20)).exists()
    with pytest.raises(ValueError, match="before the first"):
        shop_days_rollup(shop=shop, first=date(2026, 3, 2), last=date(2026, 3, 1))


def test_a_return_with_a_resolution_per_item_keeps_its_credit_and_exchange(store, client):
    shop, rows = store
    # Order 2: the shirt (40.00) for store credit, the beanie (20.00) refunded.
    mixed = return_request(
        rows["o2"],
        "mixed",
        at(3, 20),
        [("Linen shirt", 1, "SIZE_TOO_LARGE"), ("Wool beanie", 1, "UNWANTED")],
        processed_at=at(3, 23),
        refunded_amount=Decimal("20.00"),
    )
    lines = {line.line_item.title: line for line in mixed.line_items.select_related("line_item")}
    ReturnLineItem.objects.filter(pk=lines["Linen shirt"].pk).update(resolution="store_credit")
    ReturnLineItem.objects.filter(pk=lines["Wool beanie"].pk).update(resolution="refund")
    # Order 1: one shirt exchanged for a cheaper one (5.00 back), the other refunded (40.00).
    swapped = return_request(
        rows["o1"],
        "mixed",
        at(3, 21),
        [("Linen shirt", 1, "SIZE_TOO_SMALL")],
        processed_at=at(3, 24),
        refunded_amount=Decimal("45.00"),
    )
    shirt = LineItem.objects.get(order=rows["o1"], title="Linen shirt")
    ReturnLineItem.objects.filter(return_request=swapped).update(resolution="exchange")
    ReturnLineItem.objects.create(
        shop=shop,
        return_request=swapped,
        line_item=shirt,
        quantity=1,
        reason="UNWANTED",
        resolution="refund",
    )
    shop_days_rollup(shop=shop, first=date(2026, 3, 1), last=date(2026, 3, 31))

    rows_by_name = {row[0]: row[1:] for row in _csv(client, shop, "resolutions", **MARCH)[1:]}
    # requested, processed, paid back, kept: 40.00 of credit; 40.00 exchanged less 5.00
    assert rows_by_name["Per item"] == ["2", "2", "65.0", "75.0"]
    # both had a refunded item: both count in the time to refund (with the one refund before)
    assert _csv(client, shop, "refund_time", **MARCH)[1] == ["Returns refunded", "3"]


def test_the_cron_round_defers_one_rollup_per_active_shop(store):
    shop, rows = store
    Shop.objects.filter(pk=rows["other"].pk).update(is_active=False)
    assert insights_rollup_all_job() == 1
    assert insights_rollup_all_job() == 1  # a round still pending is not queued twice
    tasks = Task.objects.filter(job="insights.jobs.insights_rollup_job")
    assert [(t.shop_id, t.kwargs) for t in tasks] == [(shop.pk, {"shop_id": shop.pk, "days": 2})]


def test_a_new_shop_sees_that_its_history_is_being_counted(client):
    shop = make_shop("new.myshopify.com")
    response = get_page(client, shop, "/app/")
    assert response.status_code == 200
    assert 'data-banner="counting"' in response.content.decode()
    assert Task.objects.filter(shop=shop, job="insights.jobs.insights_rollup_job").count() == 1


def test_charts_escape_labels_and_tell_series_apart_without_colour():
    svg = bar_chart_svg(
        key="t",
        title="Sent <and> failed",
        labels=["<script>alert(1)</script>"],
        series=[("Sent", [3]), ("Failed", [1]), ("Skipped", [None])],
        unit="msgs",
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'fill="url(#chart-t-hatch)"' in svg  # the second series is hatched, not recoloured
    assert ">Sent<" in svg
    assert ">Failed<" in svg
    assert ">3 msgs<" in svg
    assert ">—<" in svg

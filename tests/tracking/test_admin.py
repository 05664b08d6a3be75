"""Tracking in the embedded admin: shipments and events on the order page, the orders list's
stage / delayed filters and tracking-number search, the delayed view. Real session tokens,
pages scoped by the token's shop, queries counted."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from shopapp.models import Order, Shop
from tests.shopapp.test_embedded import HOST, get_page, make_order, make_shop, order_names
from tests.tracking.tracking_support import (
    SOURCE,
    event_payload,
    fulfil,
    order_create,
    scan,
)
from tracking.models import Delay, Shipment, Stage, TrackingEvent, TrackingPageView
from tracking.services import delay_open, tracking_event_delete

pytestmark = pytest.mark.django_db

_numbers = iter(range(1, 1_000_000))


@pytest.fixture
def shop_a() -> Shop:
    return make_shop("alpha.myshopify.com", timezone="America/New_York")


@pytest.fixture
def shop_b() -> Shop:
    return make_shop("bravo.myshopify.com")


def make_shipment(order: Order, stage: str = Stage.IN_TRANSIT, **fields) -> Shipment:
    n = next(_numbers)
    values = {
        "fulfillment_id": 6_000_000 + n,
        "name": f"{order.name}-F{n}",
        "status": "success",
        "stage": stage,
        "tracking_company": "UPS",
        "tracking_numbers": [f"1Z999AA1{n:08d}"],
        "tracking_urls": [f"https://www.ups.com/track?tracknum=1Z999AA1{n:08d}"],
        "shopify_created_at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    values.update(fields)
    return Shipment.objects.create(shop=order.shop, order=order, **values)


def make_event(shipment: Shipment, status: str = "in_transit", **fields) -> TrackingEvent:
    values = {
        "shopify_id": 8_000_000 + next(_numbers),
        "stage": Stage.IN_TRANSIT,
        "happened_at": datetime(2026, 1, 3, 12, 0, tzinfo=UTC),
        "message": "Departed facility",
        "city": "Lyon",
        "country": "France",
    }
    values.update(fields)
    return TrackingEvent.objects.create(
        shop=shipment.shop, shipment=shipment, status=status, **values
    )


def open_delay(order: Order, kind: str, shipment: Shipment | None = None, **fields) -> Delay:
    """A finding through the real service (timeline line and trigger included)."""
    target = f"shipment:{shipment.pk}" if shipment else f"order:{order.pk}"
    return delay_open(
        shop=order.shop,
        order=order,
        shipment=shipment,
        kind=kind,
        dedupe_key=f"{target}:{kind}",
        detected_at=fields.pop("detected_at", timezone.now()),
        **fields,
    )


def page_html(client, shop: Shop, path: str, **params) -> str:
    response = get_page(client, shop, path, **params)
    assert response.status_code == 200
    # timesince separates number and unit with a no-break space
    return unescape(response.content.decode()).replace("\xa0", " ")


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


def shipping_badges(html: str) -> dict[str, list[str]]:
    """Order name -> the stage badges of its row on the list."""
    rows = re.findall(r'class="order-link"[^>]*>([^<]+)</a>(.*?)</tr>', html, re.S)
    return {name: re.findall(r'data-stage="([^"]+)"', rest) for name, rest in rows}


# -- the order page --------------------------------------------------------------------------


def test_order_page_shows_each_shipment_with_carrier_links_items_stage_and_events(client, shop_a):
    # given: an order from Shopify's sample, shipped in two parts, the first scanned twice
    order = order_create(shop_a)
    fulfil(
        shop_a,
        order,
        fulfillment_id=101,
        line_item_ids=[487817672276298554],
        name="#9999.1",
        tracking_numbers=["1Z827WK74630", "1Z827WK74631"],
        tracking_urls=["https://www.ups.com/track?n=1Z827WK74630", "javascript:alert(1)"],
    )
    fulfil(shop_a, order, fulfillment_id=102, line_item_ids=[315789986012684393], name="#9999.2")
    first = Shipment.objects.get(fulfillment_id=101)
    now = timezone.now()
    scan(shop_a, first, "in_transit", now - timedelta(hours=5), message="Departed Memphis")
    scan(shop_a, first, "out_for_delivery", now - timedelta(hours=1), message="On the van")
    # when
    html = page_html(client, shop_a, f"/app/orders/{order.shopify_id}")
    # then: both shipments, in the order they were made
    shipments = section(html, 'id="shipments-title"', 'id="timeline-title"')
    assert re.findall(r"<h3>([^<]+)</h3>", shipments) == ["#9999.1", "#9999.2"]
    one = section(shipments, 'data-shipment="101"', 'data-shipment="102"')
    assert "<dd>UPS</dd>" in one
    assert (
        '<span class="badge badge--info" data-stage="out_for_delivery">Out for delivery</span>'
        in one
    )
    assert re.findall(r'aria-current="step"><span>([^<]+)<', one) == ["Out for delivery"]
    assert len(re.findall(r"progress__step--done", one)) == 3
    # the http(s) URL is a link, the javascript: one is plain text
    assert '<a class="tracking-number" href="https://www.ups.com/track?n=1Z827WK74630"' in one
    assert '<span class="tracking-number">1Z827WK74631</span>' in one
    assert not re.search(r"href=\"\s*javascript:", html, re.I)
    # the items it carries, with quantities
    assert '<td>Aviator sunglasses</td><td class="num">1</td>' in one
    assert "Coffee table" not in one
    # events newest first, in the shop's zone (New York)
    assert re.findall(r'class="event[^"]*" data-status="([^"]+)"', one) == [
        "out_for_delivery",
        "in_transit",
    ]
    assert "On the van" in one
    assert "Departed Memphis" in one
    assert " EST</time>" in one or " EDT</time>" in one
    two = html[html.index('data-shipment="102"') :]
    assert "Coffee table" in two
    assert "No carrier scans yet." in section(two, 'data-shipment="102"', "</article>")


def test_a_stale_event_is_marked_and_a_fresh_one_is_not(client, shop_a):
    # given: a scan 3 days old when it arrived (stale after 48 h by default), then a fresh one
    order = order_create(shop_a)
    shipment = fulfil(shop_a, order, fulfillment_id=201)
    shipment = Shipment.objects.get(fulfillment_id=201)
    scan(shop_a, shipment, "in_transit", timezone.now() - timedelta(days=3), message="Old scan")
    scan(shop_a, shipment, "out_for_delivery", timezone.now(), message="Fresh scan")
    # when
    html = page_html(client, shop_a, f"/app/orders/{order.shopify_id}")
    # then
    events = re.findall(r'<li class="event([^"]*)"(.*?)</li>', html, re.S)
    assert [("stale" in cls, "stale — no message sent" in body) for cls, body in events] == [
        (False, False),
        (True, True),
    ]
    assert "Fresh scan" in events[0][1]
    assert "Old scan" in events[1][1]


def test_a_deleted_event_is_struck_through(client, shop_a):
    # given: a scan Shopify later deleted (fulfillment_events/delete)
    order = order_create(shop_a)
    fulfil(shop_a, order, fulfillment_id=301)
    shipment = Shipment.objects.get(fulfillment_id=301)
    payload = event_payload(
        fulfillment_id=301,
        order_id=order.shopify_id,
        status="delivered",
        happened_at=timezone.now(),
        message="Delivered by mistake",
    )
    scan(shop_a, shipment, "delivered", timezone.now(), id=payload["id"])
    tracking_event_delete(shop=shop_a, payload=payload, source=SOURCE)
    # when
    html = page_html(client, shop_a, f"/app/orders/{order.shopify_id}")
    # then: still there for staff, struck through, and the shipment is not delivered
    event = re.search(r'<li class="event event--deleted"(.*?)</li>', html, re.S).group(1)
    assert "<del>" in event
    assert "Deleted in Shopify" in event
    assert 'data-stage="delivered"' not in section(
        html, 'id="shipments-title"', 'id="timeline-title"'
    )


def test_open_delays_are_shown_with_kind_and_detected_time_resolved_ones_not(client, shop_a):
    # given: an order-level delay, a shipment delay, and a resolved one
    order = make_order(shop_a, 1001)
    shipment = make_shipment(order)
    open_delay(order, Delay.Kind.UNFULFILLED, detected_at=datetime(2026, 1, 5, 15, tzinfo=UTC))
    open_delay(
        order, Delay.Kind.NO_MOVEMENT, shipment, detected_at=datetime(2026, 1, 6, 15, tzinfo=UTC)
    )
    resolved = open_delay(order, Delay.Kind.PAST_ESTIMATE, shipment)
    Delay.objects.filter(pk=resolved.pk).update(resolved_at=timezone.now())
    # when
    html = page_html(client, shop_a, f"/app/orders/{order.shopify_id}")
    # then
    shipments = section(html, 'id="shipments-title"', 'id="timeline-title"')
    assert re.findall(r'data-delay-kind="([^"]+)"', shipments) == ["unfulfilled", "no_movement"]
    assert "Not shipped in time · detected" in shipments
    assert "Jan 5, 2026, 10:00 AM EST" in shipments
    assert "No tracking movement · detected" in shipments
    assert "Jan 6, 2026, 10:00 AM EST" in shipments
    assert "Past the estimated delivery date" not in shipments


def test_tracking_page_views_are_counted_on_the_order_page(client, shop_a):
    # given
    order = make_order(shop_a, 1001)
    TrackingPageView.objects.create(
        shop=shop_a,
        order=order,
        views=4,
        last_viewed_at=timezone.now() - timedelta(hours=2, minutes=1),
    )
    recent = make_order(shop_a, 1003)
    TrackingPageView.objects.create(
        shop=shop_a, order=recent, views=1, last_viewed_at=timezone.now()
    )
    quiet = make_order(shop_a, 1002)
    # when
    html = page_html(client, shop_a, f"/app/orders/{order.shopify_id}")
    recent_html = page_html(client, shop_a, f"/app/orders/{recent.shopify_id}")
    quiet_html = page_html(client, shop_a, f"/app/orders/{quiet.shopify_id}")
    # then
    assert re.search(r"Shopper viewed tracking 4 times, last <time[^>]*>2 hours ago</time>", html)
    assert re.search(
        r"Shopper viewed tracking 1 time, last <time[^>]*>just now</time>", recent_html
    )
    assert "The shopper has not opened the tracking page." in quiet_html


@pytest.mark.parametrize(
    ("stage", "tone", "label"),
    [
        (Stage.ORDERED, "info", "Ordered"),
        (Stage.IN_TRANSIT, "info", "In transit"),
        (Stage.DELIVERED, "success", "Delivered"),
        (Stage.ATTEMPTED_DELIVERY, "warning", "Delivery attempted"),
        (Stage.READY_FOR_PICKUP, "warning", "Ready for pickup"),
        (Stage.DELAYED, "warning", "Delayed"),
        (Stage.PROBLEM, "critical", "Problem"),
    ],
)
def test_stage_badges_style_branches_as_warning_or_critical(client, shop_a, stage, tone, label):
    # given
    order = make_order(shop_a, 1001)
    make_shipment(order, stage=stage)
    # when
    html = page_html(client, shop_a, f"/app/orders/{order.shopify_id}")
    listed = page_html(client, shop_a, "/app/orders")
    # then
    badge = f'<span class="badge badge--{tone}" data-stage="{stage}">{label}</span>'
    assert badge in html
    assert badge in listed


def test_delivery_dates_read_in_the_shops_timezone(client, shop_a):
    # given: 03:00 UTC is still the day before in New York
    order = make_order(shop_a, 1001)
    make_shipment(
        order,
        name="estimated",
        stage=Stage.IN_TRANSIT,
        estimated_delivery_at=datetime(2026, 1, 10, 3, 0, tzinfo=UTC),
    )
    make_shipment(
        order,
        name="arrived",
        stage=Stage.DELIVERED,
        estimated_delivery_at=datetime(2026, 1, 10, 3, 0, tzinfo=UTC),
        delivered_at=datetime(2026, 1, 8, 17, 30, tzinfo=UTC),
    )
    # when
    html = page_html(client, shop_a, f"/app/orders/{order.shopify_id}")
    # then
    estimated = section(html, "<h3>estimated</h3>", "</article>")
    arrived = section(html, "<h3>arrived</h3>", "</article>")
    assert re.search(r"<dt>Estimated delivery</dt><dd><time[^>]*>Jan 9, 2026</time>", estimated)
    assert re.search(r"<dt>Delivered</dt><dd><time[^>]*>Jan 8, 2026, 12:30 PM EST</time>", arrived)
    assert "Estimated delivery" not in arrived


def _order_with_events(shop: Shop, number: int, events: int) -> Order:
    order = make_order(shop, number)
    for _ in range(2):
        shipment = make_shipment(order)
        for i in range(events):
            make_event(
                shipment,
                happened_at=datetime(2026, 1, 3, tzinfo=UTC) + timedelta(hours=i),
                is_stale=i % 2 == 0,
                deleted_at=timezone.now() if i == 1 else None,
            )
        open_delay(order, Delay.Kind.NO_MOVEMENT, shipment)
    TrackingPageView.objects.create(shop=shop, order=order, views=3, last_viewed_at=timezone.now())
    return order


def test_order_page_queries_do_not_grow_with_events(client, shop_a, django_assert_max_num_queries):
    # given: the same shape of order with 1 and with 30 events per shipment
    small = _order_with_events(shop_a, 1001, events=1)
    large = _order_with_events(shop_a, 1002, events=30)
    get_page(client, shop_a, f"/app/orders/{small.shopify_id}")  # warm caches (content types…)
    # when
    with django_assert_max_num_queries(12) as one:
        small_html = page_html(client, shop_a, f"/app/orders/{small.shopify_id}")
    with django_assert_max_num_queries(len(one)) as thirty:
        large_html = page_html(client, shop_a, f"/app/orders/{large.shopify_id}")
    # then: the same count, and the pages really hold what was counted
    assert len(thirty) == len(one)
    assert small_html.count('<li class="event') == 2
    assert large_html.count('<li class="event') == 60


# -- the orders list ------------------------------------------------------------------------


def test_stage_filter_keeps_orders_with_any_shipment_at_that_stage(client, shop_a):
    # given
    split = make_order(shop_a, 1001)
    make_shipment(split, stage=Stage.DELIVERED)
    make_shipment(split, stage=Stage.IN_TRANSIT)
    make_shipment(make_order(shop_a, 1002), stage=Stage.IN_TRANSIT)
    make_shipment(make_order(shop_a, 1003), stage=Stage.DELIVERED)
    make_order(shop_a, 1004)
    # when
    in_transit = page_html(client, shop_a, "/app/orders", stage="in_transit")
    delivered = page_html(client, shop_a, "/app/orders", stage="delivered")
    unknown = page_html(client, shop_a, "/app/orders", stage="teleported")
    # then
    assert order_names(in_transit) == ["#1002", "#1001"]
    assert order_names(delivered) == ["#1003", "#1001"]
    assert order_names(unknown) == ["#1004", "#1003", "#1002", "#1001"]
    # and the select offers every stage, the chosen one selected
    assert '<option value="in_transit" selected>In transit</option>' in in_transit
    options = re.findall(r'<option value="([^"]*)"', in_transit)
    assert options == ["", *Stage.values]


def test_stage_column_shows_the_most_urgent_then_the_furthest_shipment(client, shop_a):
    # given
    problem = make_order(shop_a, 1001)
    make_shipment(problem, stage=Stage.DELIVERED)
    make_shipment(problem, stage=Stage.PROBLEM)
    split = make_order(shop_a, 1002)
    make_shipment(split, stage=Stage.IN_TRANSIT)
    make_shipment(split, stage=Stage.OUT_FOR_DELIVERY)
    make_order(shop_a, 1003)
    # when
    html = page_html(client, shop_a, "/app/orders")
    # then
    assert shipping_badges(html) == {
        "#1003": [],
        "#1002": ["out_for_delivery"],
        "#1001": ["problem"],
    }
    assert "2 shipments" in html
    assert "No shipment" in html


def test_delayed_filter_keeps_orders_with_an_open_delay(client, shop_a):
    # given
    late = make_order(shop_a, 1001)
    open_delay(late, Delay.Kind.UNFULFILLED)
    cleared = make_order(shop_a, 1002)
    resolved = open_delay(cleared, Delay.Kind.UNFULFILLED)
    Delay.objects.filter(pk=resolved.pk).update(resolved_at=timezone.now())
    make_order(shop_a, 1003)
    # when
    html = page_html(client, shop_a, "/app/orders", delayed="1")
    everything = page_html(client, shop_a, "/app/orders")
    # then
    assert order_names(html) == ["#1001"]
    assert '<input type="checkbox" name="delayed" value="1" checked>' in html
    assert order_names(everything) == ["#1003", "#1002", "#1001"]
    assert everything.count("data-delayed>Open delay</span>") == 1


def test_search_finds_an_order_by_a_whole_tracking_number(client, shop_a):
    # given: Shopify's sample stores the number in lower case
    order = make_order(shop_a, 1001)
    make_shipment(order, tracking_numbers=["1z827wk74630", "9400111899223100001234"])
    longer = make_order(shop_a, 1002)
    make_shipment(longer, tracking_numbers=["1Z827WK746301"])
    make_order(shop_a, 1003)
    # when / then: exact, any case, typed with spaces or dashes, any element of the list
    for typed in ("1Z827WK74630", "1z827wk74630", "1Z 827 WK7-4630", "9400111899223100001234"):
        assert order_names(page_html(client, shop_a, "/app/orders", q=typed)) == ["#1001"], typed
    # a part of a number is not that number
    assert order_names(page_html(client, shop_a, "/app/orders", q="1Z827WK7463")) == []
    assert order_names(page_html(client, shop_a, "/app/orders", q="1Z827WK746301")) == ["#1002"]
    # and the order search still works beside it
    assert order_names(page_html(client, shop_a, "/app/orders", q="#1003")) == ["#1003"]


def test_search_stage_and_delayed_combine(client, shop_a):
    # given: only #1001 is at "in transit", delayed and carries the number
    target = make_order(shop_a, 1001)
    shipment = make_shipment(target, stage=Stage.IN_TRANSIT, tracking_numbers=["TRACK123456"])
    open_delay(target, Delay.Kind.NO_MOVEMENT, shipment)
    not_delayed = make_order(shop_a, 1002)
    make_shipment(not_delayed, stage=Stage.IN_TRANSIT, tracking_numbers=["TRACK123456"])
    other_stage = make_order(shop_a, 1003)
    make_shipment(other_stage, stage=Stage.DELIVERED, tracking_numbers=["TRACK123456"])
    open_delay(other_stage, Delay.Kind.UNFULFILLED)
    # when
    html = page_html(
        client, shop_a, "/app/orders", q="TRACK123456", stage="in_transit", delayed="1"
    )
    # then
    assert order_names(html) == ["#1001"]


def test_paging_keeps_the_search_and_filters(client, shop_a):
    # given: 27 delayed in-transit orders of one customer, others that do not match
    for number in range(1001, 1028):
        order = make_order(shop_a, number, email="many@example.com")
        make_shipment(order, stage=Stage.IN_TRANSIT)
        open_delay(order, Delay.Kind.UNFULFILLED)
    make_shipment(make_order(shop_a, 1100, email="many@example.com"), stage=Stage.IN_TRANSIT)
    make_shipment(make_order(shop_a, 1101, email="many@example.com"), stage=Stage.DELIVERED)
    # when
    first = page_html(
        client, shop_a, "/app/orders", q="many@example.com", stage="in_transit", delayed="1"
    )
    # then
    assert len(order_names(first)) == 25
    assert "Page 1 of 2" in first
    next_link = re.search(r'rel="next" href="([^"]+)"', first).group(1)
    params = parse_qs(urlsplit(next_link).query)
    assert params["q"] == ["many@example.com"]
    assert params["stage"] == ["in_transit"]
    assert params["delayed"] == ["1"]
    assert params["page"] == ["2"]
    assert params["host"] == [HOST]
    second = unescape(client.get("/app/orders" + next_link).content.decode())
    assert order_names(second) == ["#1002", "#1001"]
    previous = re.search(r'rel="prev" href="([^"]+)"', second).group(1)
    assert parse_qs(urlsplit(previous).query)["stage"] == ["in_transit"]


def test_orders_list_queries_do_not_grow_with_orders_or_shipments(
    client, shop_a, django_assert_max_num_queries
):
    # given: one order, then 25, each with two shipments and a delay
    def seed(first: int, count: int) -> None:
        for number in range(first, first + count):
            order = make_order(shop_a, number)
            make_shipment(order, stage=Stage.IN_TRANSIT)
            make_shipment(order, stage=Stage.DELAYED)
            open_delay(order, Delay.Kind.UNFULFILLED)

    seed(1001, 1)
    get_page(client, shop_a, "/app/orders")
    with django_assert_max_num_queries(8) as one:
        get_page(client, shop_a, "/app/orders")
    seed(2001, 24)
    # when
    with django_assert_max_num_queries(len(one)) as many:
        html = page_html(client, shop_a, "/app/orders")
    # then
    assert len(many) == len(one)
    assert len(order_names(html)) == 25


# -- the delayed view ------------------------------------------------------------------------


def test_delayed_view_lists_open_delays_newest_first(client, shop_a):
    # given
    now = timezone.now()
    unshipped = make_order(shop_a, 1001)
    open_delay(unshipped, Delay.Kind.UNFULFILLED, detected_at=now - timedelta(hours=3))
    stuck = make_order(shop_a, 1002)
    shipment = make_shipment(stuck, name="#1002-F1", last_event_at=now - timedelta(days=5, hours=1))
    open_delay(stuck, Delay.Kind.NO_MOVEMENT, shipment, detected_at=now - timedelta(hours=1))
    cleared = make_order(shop_a, 1003)
    resolved = open_delay(cleared, Delay.Kind.UNFULFILLED)
    Delay.objects.filter(pk=resolved.pk).update(resolved_at=now)
    gone = make_order(shop_a, 1004, deleted_at=now)
    open_delay(gone, Delay.Kind.UNFULFILLED)
    # when
    html = page_html(client, shop_a, "/app/orders/delayed")
    # then
    rows = re.findall(r"<tr data-delay-kind=\"([^\"]+)\">(.*?)</tr>", html, re.S)
    assert [kind for kind, _ in rows] == ["no_movement", "unfulfilled"]
    assert order_names(html) == ["#1002", "#1001"]
    stuck_row, unshipped_row = rows[0][1], rows[1][1]
    assert "No tracking movement" in stuck_row
    assert "#1002-F1" in stuck_row
    assert re.search(r"<td class=\"num\" data-days>5</td>", stuck_row)
    assert "Not shipped in time" in unshipped_row
    assert "Not shipped yet" in unshipped_row
    assert "EST</time>" in stuck_row or "EDT</time>" in stuck_row
    # the tab shows the count of open delays, and is the current one
    assert '<span class="badge badge--warning" data-delay-count>2</span>' in html
    assert re.search(r'class="subtab subtab--selected"[^>]*aria-current="page">Delayed', html)


def test_delayed_view_links_keep_the_session(client, shop_a):
    # given
    order = make_order(shop_a, 1001)
    open_delay(order, Delay.Kind.UNFULFILLED)
    # when
    html = page_html(client, shop_a, "/app/orders/delayed")
    # then
    links = re.findall(r'<a data-app-link[^>]*href="([^"]+)"', html)
    assert f"/app/orders/{order.shopify_id}" in [urlsplit(link).path for link in links]
    for link in links:
        params = parse_qs(urlsplit(link).query)
        assert params["shop"] == ["alpha.myshopify.com"], link
        assert params["host"] == [HOST], link
        assert params["id_token"], link


def test_empty_delayed_view_says_so(client, shop_a):
    html = page_html(client, shop_a, "/app/orders/delayed")
    assert "No delayed orders." in html
    assert "data-delay-count" not in html


# -- another shop ----------------------------------------------------------------------------


def test_another_shops_tracking_is_never_shown(client, shop_a, shop_b):
    # given: shop A's order, shipped, delayed, viewed, with a known tracking number
    order = make_order(shop_a, 1001)
    shipment = make_shipment(order, stage=Stage.IN_TRANSIT, tracking_numbers=["SECRET123456"])
    open_delay(order, Delay.Kind.NO_MOVEMENT, shipment)
    TrackingPageView.objects.create(shop=shop_a, order=order, views=9)
    make_order(shop_b, 2001)
    # when: shop B's token asks every way it can
    searched = page_html(client, shop_b, "/app/orders", q="SECRET123456")
    staged = page_html(client, shop_b, "/app/orders", stage="in_transit")
    delayed = page_html(client, shop_b, "/app/orders", delayed="1")
    delayed_view = page_html(client, shop_b, "/app/orders/delayed")
    detail = get_page(client, shop_b, f"/app/orders/{order.shopify_id}")
    # then
    assert order_names(searched) == []
    assert order_names(staged) == []
    assert order_names(delayed) == []
    assert order_names(delayed_view) == []
    assert "data-delay-count" not in delayed_view
    assert detail.status_code == 404
    assert b"SECRET123456" not in detail.content
    # and shop A sees its own
    assert order_names(page_html(client, shop_a, "/app/orders", q="SECRET123456")) == ["#1001"]


def test_same_shopify_ids_in_another_shop_do_not_mix(client, shop_a, shop_b):
    # given: both shops hold an order with the same Shopify id (ids are per shop here)
    mine = make_order(shop_a, 1001)
    make_shipment(mine, stage=Stage.IN_TRANSIT, name="mine")
    theirs = make_order(shop_b, 1001)
    theirs_shipment = make_shipment(theirs, stage=Stage.PROBLEM, name="theirs")
    make_event(theirs_shipment, message="Their scan")
    open_delay(theirs, Delay.Kind.NO_MOVEMENT, theirs_shipment)
    TrackingPageView.objects.create(shop=shop_b, order=theirs, views=7)
    # when
    html = page_html(client, shop_a, f"/app/orders/{mine.shopify_id}")
    # then
    assert "<h3>mine</h3>" in html
    assert "theirs" not in html
    assert "Their scan" not in html
    assert "data-delay-kind" not in html
    assert "The shopper has not opened the tracking page." in html

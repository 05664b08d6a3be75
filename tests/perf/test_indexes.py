"""The indexes behind the tracking page's queries, checked with EXPLAIN on a small copy of the
scale dataset (bench/scale.py's own generator, ANALYZEd).

Each test opens a page as Shopify's proxy would, captures every statement it ran, and checks
the plan of each: no sequential scan of a big table (with ``enable_seqscan = off``, a Seq Scan
means no index can answer), and, for the tables the page reads by order or shipment, the index
that answers it. A new hot query of a page is checked the day it is written.

To add a page: build the copy with the ``scale_copy`` fixture, capture its statements with
``captured_statements()``, and call ``assert_no_seq_scan`` / ``assert_uses_index`` (see
tests/perf/indexes.py).
"""

import pytest
from django.test import Client

from bench.scale import ScaleParams, analyze, build_scale_dataset
from shopapp.models import Order, Shop
from shopapp.storefront.links import order_id_from_link_token, tracking_link_token
from tests.perf.indexes import (
    assert_no_seq_scan,
    assert_uses_index,
    captured_statements,
    explain,
    index_on,
    seq_scanned,
)
from tests.tracking.test_page import proxy_get, proxy_post
from tracking import selectors

pytestmark = pytest.mark.django_db

# Big enough that every table spans many pages; small enough to build in a few seconds.
COPY = ScaleParams(orders=3000, shops=12, skew=0.4, seed=5)


@pytest.fixture
def scale_copy() -> dict:
    built = build_scale_dataset(COPY, log=lambda _: None)
    analyze()
    return built


def _an_order_with_shipments(shop_id: int) -> Order:
    order = (
        Order.objects.filter(shop_id=shop_id, shipments__isnull=False)
        .exclude(pk__in=[1, 2])
        .select_related("shop")
        .order_by("-id")
        .first()
    )
    assert order is not None
    return order


def test_explain_sees_a_missing_index():
    # given a query no index can answer (events by message text)
    from tracking.models import TrackingEvent

    query = TrackingEvent.objects.filter(message="Departed facility")

    # then the helper reports the sequential scan, so the checks below can fail
    assert seq_scanned(explain(query)) == {"tracking_trackingevent"}
    with pytest.raises(AssertionError, match="sequential scan"):
        assert_no_seq_scan(query)


def test_the_order_page_reads_every_table_through_its_index(scale_copy):
    # given an order of the big shop with shipments, and its page not yet cached
    order = _an_order_with_shipments(shop_id=1)

    # when its page is opened from its link
    with captured_statements() as captured:
        response = proxy_get(Client(), order.shop, "/" + tracking_link_token(order))
    assert response.status_code == 200

    # then no statement reads a big table end to end
    assert len(captured.statements) >= 8
    for sql in captured.statements:
        assert_no_seq_scan(sql)
    # and each table is read by the index that fits the page's question
    expected = {
        "shopapp_shop": index_on("shopapp_shop", "myshopify_domain"),
        "tracking_trackingsettings": index_on("tracking_trackingsettings", "shop_id"),
        "shopapp_shopbranding": index_on("shopapp_shopbranding", "shop_id"),
        "shopapp_lineitem": index_on("shopapp_lineitem", "order_id"),
        "tracking_shipment": index_on("tracking_shipment", "order_id"),
        "tracking_shipmentlineitem": index_on("tracking_shipmentlineitem", "shipment_id"),
        "tracking_trackingevent": index_on("tracking_trackingevent", "shipment_id"),
        "tracking_delay": index_on("tracking_delay", "order_id"),
        "tracking_trackingpageview": index_on("tracking_trackingpageview", "order_id"),
    }
    for table, index in expected.items():
        statements = [
            sql
            for sql in captured.touching(table)
            if f'FROM "{table}"' in sql or f'JOIN "{table}"' in sql
        ]
        statements += [sql for sql in captured.touching(table) if sql.startswith("UPDATE")]
        assert statements, f"the page no longer reads {table}: update this test"
        for sql in statements:
            assert_uses_index(sql, index)
    order_reads = [
        sql
        for sql in captured.touching("shopapp_order")
        if 'FROM "shopapp_order"' in sql or 'JOIN "shopapp_order"' in sql
    ]
    assert order_reads
    for sql in order_reads:
        assert_uses_index(sql, "shopapp_order_pkey")


def test_the_order_lookup_form_finds_the_order_through_an_index(scale_copy):
    # given a shopper of the big shop typing their order number and email
    order = _an_order_with_shipments(shop_id=1)

    # when they look it up
    with captured_statements() as captured:
        response = proxy_post(Client(), order.shop, {"order": order.name, "contact": order.email})
    # (found: the answer sends the browser to the order's signed link)
    assert response.status_code == 303
    token = response["Location"].removeprefix("track/")
    assert order_id_from_link_token(token, shop=order.shop) == order.pk

    # then the orders table is searched through the (shop, name) indexes, not read whole
    lookups = [sql for sql in captured.touching("shopapp_order") if "WHERE" in sql]
    assert lookups
    for sql in captured.statements:
        assert_no_seq_scan(sql)


def test_the_page_selectors_use_their_indexes_for_the_biggest_shop(scale_copy):
    # the selectors' querysets themselves, for the shop with the most rows
    shop = Shop.objects.get(pk=1)
    order = _an_order_with_shipments(shop_id=1)

    assert_uses_index(
        Order.objects.filter(shop=shop, customer_id=order.customer_id).order_by(
            "-shopify_created_at", "-id"
        ),
        index_on("shopapp_order", "shop_id", "customer_id"),
    )
    head = selectors.order_page_head(shop=shop, order_id=order.pk)
    assert head is not None
    from tracking.models import Shipment, TrackingEvent

    assert_uses_index(
        TrackingEvent.objects.filter(
            shop=shop, shipment__in=Shipment.objects.filter(order=order), deleted_at__isnull=True
        ).order_by("-happened_at", "-id"),
        index_on("tracking_trackingevent", "shipment_id"),
    )

"""The indexes behind the returns portal's pages, checked with EXPLAIN on a small copy of the
scale dataset (bench/scale.py's generator, ANALYZEd): the lookup and the item-selection page
read from local state (returns.eligibility.order_eligibility_local), so each of their
statements must find its rows through an index, never by reading a big table whole.
"""

import pytest
from django.test import Client
from django.utils import timezone

from bench.scale import ScaleParams, analyze, build_scale_dataset
from returns.models import ProductInfo, ReturnLineItem
from shopapp.models import LineItem, Order, Shop
from shopapp.storefront.links import form_token, tracking_link_token
from tests.perf.indexes import assert_no_seq_scan, assert_uses_index, captured_statements, index_on
from tests.returns.test_portal import proxy_get, proxy_post
from tracking.models import ShipmentLineItem

pytestmark = pytest.mark.django_db

COPY = ScaleParams(orders=3000, shops=12, skew=0.4, seed=7)


@pytest.fixture
def scale_copy() -> dict:
    built = build_scale_dataset(COPY, log=lambda _: None)
    analyze()
    return built


def _delivered_order(shop_id: int) -> Order:
    """An order of the big shop with a delivered shipment, its products' facts stored (as the
    background read after its orders/create leaves them), so its pages call no Shopify."""
    order = (
        Order.objects.filter(shop_id=shop_id, shipments__delivered_at__isnull=False)
        .exclude(pk__in=[1, 2])
        .select_related("shop")
        .order_by("-id")
        .first()
    )
    assert order is not None
    now = timezone.now()
    for product_id in set(
        LineItem.objects.filter(order=order, product_id__isnull=False).values_list(
            "product_id", flat=True
        )
    ):
        ProductInfo.objects.update_or_create(
            shop_id=shop_id,
            product_id=product_id,
            defaults={"fetched_at": now, "variants_fetched_at": now, "variants": []},
        )
    return order


def test_the_item_page_reads_every_table_through_its_index(scale_copy):
    # given an order of the big shop, delivered
    order = _delivered_order(shop_id=1)

    # when the tracking page's "Start a return" link opens its item-selection page
    with captured_statements() as captured:
        response = proxy_get(
            Client(), order.shop, "", extra=[("token", tracking_link_token(order))]
        )
    assert response.status_code == 200
    assert b'data-view="items"' in response.content

    # then no statement reads a big table end to end
    for sql in captured.statements:
        assert_no_seq_scan(sql)
    # and the tables eligibility reads by order are read through the order's indexes
    expected = {
        "shopapp_lineitem": index_on("shopapp_lineitem", "order_id"),
        "tracking_shipmentlineitem": index_on("tracking_shipmentlineitem", "shipment_id")
        | index_on("tracking_shipment", "order_id"),
        # (shop, product_id) or the FK's (shop): a handful of rows here, a catalogue in a shop.
        "returns_productinfo": index_on("returns_productinfo", "shop_id"),
        "returns_returnlineitem": index_on("returns_returnlineitem", "return_request_id")
        | index_on("returns_returnrequest", "order_id"),
    }
    for table, index in expected.items():
        statements = [sql for sql in captured.touching(table) if f'FROM "{table}"' in sql]
        assert statements, f"the page no longer reads {table}: update this test"
        for sql in statements:
            assert_uses_index(sql, index)


def test_the_lookup_finds_the_order_and_its_items_through_indexes(scale_copy):
    # given a shopper of the big shop typing their order number and email
    order = _delivered_order(shop_id=1)

    # when they look it up
    with captured_statements() as captured:
        response = proxy_post(
            Client(),
            order.shop,
            {
                "step": "lookup",
                "form_token": form_token(order.shop),
                "order": order.name,
                "contact": order.email,
            },
        )
    assert response.status_code == 200
    assert b'data-view="items"' in response.content

    # then nothing is read whole
    assert any('FROM "shopapp_order"' in sql for sql in captured.statements)
    for sql in captured.statements:
        assert_no_seq_scan(sql)


def test_the_local_readings_querysets_use_their_indexes_for_the_biggest_shop(scale_copy):
    shop = Shop.objects.get(pk=1)
    order = _delivered_order(shop_id=1)

    assert_uses_index(
        ShipmentLineItem.objects.filter(shop=shop, shipment__shop=shop, shipment__order=order),
        index_on("tracking_shipment", "order_id")
        | index_on("tracking_shipmentlineitem", "shipment_id"),
    )
    assert_uses_index(
        ReturnLineItem.objects.filter(shop=shop, return_request__order=order),
        index_on("returns_returnrequest", "order_id")
        | index_on("returns_returnlineitem", "return_request_id"),
    )

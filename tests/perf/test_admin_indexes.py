"""The admin's order search and an order's timeline use their indexes, checked with EXPLAIN on a
small copy of the scale dataset (bench/scale.py's own generator, in the test database).

A small table is cheaper to read whole, so the planner is told not to (``enable_seqscan``
off): what the test proves is that an index *can* answer each query as Django writes it (the
LIKE prefix needs ``text_pattern_ops``, the tracking number jsonb containment a GIN index,
the phone number its reversed digits); on the 1,000,000-order dataset the planner picks
them on its own (bench/admin.py's figures).
"""

import re

import pytest
from django.db import connection

from bench.scale import ScaleParams, analyze, build_scale_dataset
from returns.models import ReturnRequest
from returns.selectors import order_ids_by_return_name
from shopapp.models import Order, Shop
from shopapp.orders.selectors import order_get, order_timeline
from tracking.admin_selectors import order_list_for_admin
from tracking.models import Shipment

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_copy():
    if connection.vendor != "postgresql":
        pytest.skip("the indexes are PostgreSQL's")
    build_scale_dataset(ScaleParams(orders=600, shops=6, skew=0.5), log=lambda _: None)
    analyze()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    yield Shop.objects.get(pk=1)
    with connection.cursor() as cursor:
        cursor.execute("RESET enable_seqscan")


def plan(queryset) -> str:
    return queryset.explain()


def search_plan(shop: Shop, query: str) -> str:
    return plan(order_list_for_admin(shop=shop, query=query)[:25])


def test_search_by_order_name_uses_the_name_prefix_index(small_copy):
    shop = small_copy
    name = Order.objects.filter(shop=shop).values_list("name", flat=True).last()
    # A name typed whole (a prefix matching most of a small shop is cheaper read in date
    # order, the list's own order: the planner rightly walks that index instead).
    text = search_plan(shop, name)
    assert "order_search_upper_name_prefix_idx" in text


def test_search_by_email_uses_the_email_prefix_index(small_copy):
    shop = small_copy
    email = Order.objects.filter(shop=shop).exclude(email="").values_list("email", flat=True)[0]
    text = search_plan(shop, email.split("@")[0][:6] + "@")
    assert "order_search_upper_email_prefix_idx" in text


def test_search_by_phone_uses_the_reversed_phone_index(small_copy):
    shop = small_copy
    Order.objects.filter(pk=Order.objects.filter(shop=shop).first().pk).update(phone="+16135550199")
    text = search_plan(shop, "613 555 0199")
    assert "order_search_phone_suffix_idx" in text


def test_search_by_tracking_number_uses_the_gin_index(small_copy):
    shop = small_copy
    shipment = Shipment.objects.filter(shop=shop).exclude(tracking_numbers=[]).first()
    number = shipment.tracking_numbers[0]
    queryset = (
        Shipment.objects.filter(shop=shop, tracking_numbers__contains=[number])
        .values_list("order_id", flat=True)
        .distinct()
    )
    assert "shipment_tracking_numbers_gin_idx" in plan(queryset)
    # and the search finds its order through it
    assert shipment.order_id in {o.pk for o in order_list_for_admin(shop=shop, query=number)}


def test_search_by_return_name_uses_the_return_name_index(small_copy):
    shop = small_copy
    ret = ReturnRequest.objects.filter(shop=shop).exclude(name="").first()
    if ret is None:
        order = Order.objects.filter(shop=shop).first()
        ret = ReturnRequest.objects.create(
            shop=shop, order=order, name=f"{order.name}-R1", resolution="refund"
        )
        analyze(["returns_returnrequest"])
    queryset = ReturnRequest.objects.filter(shop=shop, name__iexact=ret.name)
    assert "return_shop_upper_name_idx" in plan(queryset)
    assert order_ids_by_return_name(shop=shop, query=ret.name.lower()) == [ret.order_id]


def test_an_orders_timeline_is_read_through_its_index(small_copy):
    shop = small_copy
    order = order_get(shop=shop, order_id=Order.objects.filter(shop=shop).first().shopify_id)
    text = plan(order_timeline(shop=shop, order=order))
    assert "Seq Scan" not in text
    assert re.search(r"Index Scan|Bitmap Index Scan", text)
    assert "shopapp_ord_order_i" in text or "orderevent" in text.lower()

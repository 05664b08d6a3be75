"""Eligibility's SQL: a fixed number of queries per order, whatever its number of line items.

The item-selection page computes eligibility for every line of the order; a query per line
made a 20-line order cost 38 more queries than a 1-line one (bench/returns.py). One store on
the devshop, with orders of 1 and of 12 line items, delivered and not shipped (the two paths
through the rules that read shipments and earlier returns).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from returns.eligibility import ReasonCode, order_eligibility
from returns.models import ProductInfo
from tests.returns.store_support import DevshopStore

pytestmark = pytest.mark.django_db
MANY = 12


@pytest.fixture(scope="module")
def store(devshop_server, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        store = DevshopStore.open(devshop_server)
        (store.one,) = store.orders_create(1, line_items=1)
        (store.many,) = store.orders_create(1, line_items=MANY)
        (store.one_unshipped,) = store.orders_create(1, line_items=1, fulfil=False)
        (store.many_unshipped,) = store.orders_create(1, line_items=MANY, fulfil=False)
        store.mirror()
    yield store
    with django_db_blocker.unblock():
        store.close()


@pytest.fixture(autouse=True)
def _app_calls_the_devshop(devshop):
    """Every test's Admin API calls go to the devshop (settings are per test)."""


def queries(store, order_id: int, *, cold: bool = False):
    """(SQL statements run, results) for one eligibility read of the order; ``cold``: with no
    product cached, as on a shopper's first page."""
    shop, order = store.shop(), store.order(order_id)
    order_eligibility(shop=shop, order=order)  # the shop's policy, made on first use
    if cold:
        ProductInfo.objects.filter(shop=shop).delete()
    with CaptureQueriesContext(connection) as captured:
        results = order_eligibility(shop=shop, order=order)
    return [q["sql"] for q in captured.captured_queries], results


@pytest.mark.parametrize("cold", [False, True], ids=["cached-products", "cold-products"])
def test_a_delivered_order_costs_the_same_queries_for_one_line_as_for_many(store, cold):
    # when eligibility reads an order of 1 line and one of MANY, both delivered
    few, few_results = queries(store, store.one, cold=cold)
    many, many_results = queries(store, store.many, cold=cold)

    # then every line was judged returnable (bar the catalogue's final-sale products), with
    # its window counted from the delivery, for the same number of queries
    assert len(few_results) == 1
    assert len(many_results) == MANY
    for result in few_results + many_results:
        assert result.reason_code in (ReasonCode.ELIGIBLE, ReasonCode.FINAL_SALE)
        assert result.window_ends_at is not None
    assert len(few) == len(many), "\n".join(many)


def test_an_unshipped_order_costs_the_same_queries_for_one_line_as_for_many(store):
    # given orders Shopify holds nothing returnable of: every line is judged "not shipped",
    # after reading shipments and earlier returns of every line
    few, few_results = queries(store, store.one_unshipped)
    many, many_results = queries(store, store.many_unshipped)

    assert [r.reason_code for r in few_results] == [ReasonCode.NOT_FULFILLED]
    assert [r.reason_code for r in many_results] == [ReasonCode.NOT_FULFILLED] * MANY
    assert len(few) == len(many), "\n".join(many)

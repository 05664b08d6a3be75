"""What eligibility costs: a fixed number of SQL queries per order whatever its number of line
items, and every parcel of an order read from Shopify however many there are.

The item-selection page computes eligibility for every line of the order; a query per line
made a 20-line order cost 38 more queries than a 1-line one (bench/returns.py), and only the
first 8 parcels were read. One store on the devshop, with orders of 1 and of 12 line items,
delivered and not shipped (the two paths through the rules that read shipments and earlier
returns), and one of 12 items shipped in 12 parcels.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from returns import shopify
from returns.eligibility import ReasonCode, order_eligibility, order_eligibility_local
from returns.models import ProductInfo, ReturnPolicy
from shopapp.admin_api.client import AdminApiClient
from shopapp.auth.services import shop_access_token_get
from shopapp.models import LineItem
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
        # One parcel per item: more parcels than one page of returnableFulfillments.
        (store.parcels,) = store.orders_create(1, line_items=MANY, fulfil=False)
        store.parcel_ids = [
            parcel["id"]
            for parcel in devshop_server.client.order_fulfil(
                store.domain, store.parcels, split=True
            )
        ]
        for parcel_id in store.parcel_ids:
            devshop_server.client.fulfillment_advance(store.domain, parcel_id, "DELIVERED")
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


def local_queries(store, order_id: int):
    """(SQL statements run, results) for one local reading of the order, as a portal page
    makes it once the order's products are stored (the first reading stores them)."""
    shop, order = store.shop(), store.order(order_id)
    order_eligibility_local(shop=shop, order=order)
    with CaptureQueriesContext(connection) as captured:
        results = order_eligibility_local(shop=shop, order=order)
    return [q["sql"] for q in captured.captured_queries], results


@pytest.mark.parametrize(
    ("one", "many", "code"),
    [
        ("one", "many", ReasonCode.ELIGIBLE),
        ("one_unshipped", "many_unshipped", ReasonCode.NOT_FULFILLED),
    ],
    ids=["delivered", "unshipped"],
)
def test_the_local_reading_costs_the_same_few_queries_for_one_line_as_for_many(
    store, one, many, code
):
    # when the portal's pages read an order of 1 line and one of MANY from local state
    few, few_results = local_queries(store, getattr(store, one))
    lots, many_results = local_queries(store, getattr(store, many))

    # then every line is judged as Shopify would, for the same handful of queries (line
    # items, policy, products, shipments, returns): none per line, none to Shopify
    assert len(few_results) == 1
    assert len(many_results) == MANY
    for result in few_results + many_results:
        assert result.reason_code in (code, ReasonCode.FINAL_SALE)
    assert len(few) == len(lots), "\n".join(lots)
    assert len(lots) <= 5, "\n".join(lots)


class CostRecorder(AdminApiClient):
    """The app's client, noting what Shopify (the devshop) said each call cost."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.costs: list[dict] = []

    def execute(self, query, variables=None, **options):
        data = super().execute(query, variables, **options)
        self.costs.append(self.last_cost)
        return data


def test_every_parcel_of_an_order_shipped_in_more_than_a_page_is_returnable(store):
    # given an order of MANY items shipped in MANY parcels, all delivered, no product cached
    assert len(store.parcel_ids) == MANY
    shop, order = store.shop(), store.order(store.parcels)
    ProductInfo.objects.filter(shop=shop).delete()
    # The app mirrors an order's first parcels only (tracking.refresh): the deliveries of the
    # rest are not known here, and this is about Shopify's pages, not about the window.
    ReturnPolicy.objects.update_or_create(
        shop=shop, defaults={"allows_return_before_delivery": True}
    )

    # when eligibility reads it
    results = order_eligibility(shop=shop, order=order)

    # then every item is found in its own parcel, with all its units returnable
    assert len(results) == MANY
    gids = set()
    for result in results:
        ((gid, units),) = result.fulfillment_lines
        gids.add(gid)
        assert units == result.line_item.quantity
        assert result.reason_code in (ReasonCode.ELIGIBLE, ReasonCode.FINAL_SALE)
        if result.is_eligible:
            assert result.returnable_quantity == result.line_item.quantity
    assert len(gids) == MANY
    assert ProductInfo.objects.filter(shop=shop).count() == len(
        {li.product_id for li in LineItem.objects.filter(order=order)}
    )


def test_each_page_of_the_eligibility_query_stays_under_the_single_query_limit(store):
    # given the app's client for the store, noting each answer's cost
    shop = store.shop()
    client = CostRecorder(shop.myshopify_domain, shop_access_token_get(shop=shop))
    order_gid = f"gid://shopify/Order/{store.parcels}"

    # when the returnable parcels and the products are read
    fetched = shopify.eligibility_fetch(client, order_gid=order_gid, with_products=True)

    # then MANY parcels take three pages of four, the first carrying the products too, each
    # page requested well under Shopify's 1,000 points
    assert len(client.costs) == 3
    requested = [cost["requestedQueryCost"] for cost in client.costs]
    assert all(0 < points <= 750 for points in requested), requested
    assert sum(len(lines) for lines in fetched["returnable"].values()) == MANY
    assert len(fetched["products"]) == MANY

"""The portal's pages read what the webhooks stored, not Shopify: an order delivered to the app
by its own webhooks (orders/create, fulfillments/*, returns/*, orders/updated after a refund)
is looked up and its items chosen without one Admin API request, counted by the devshop
itself; each webhook changes what the portal offers at once; an order whose shipments never
reached the app is read from Shopify once and then served locally; and the submission, which
asks Shopify, refuses clearly when Shopify knows better (a webhook still on its way).

    devshop ── webhooks ──▶ CaptureServer ── test ──▶ /webhooks/ ──▶ RQ ──▶ Order, Shipment,
       ▲                                                                  ReturnRequest rows
       └── admin_api_requests: what the portal's pages cost in Admin API requests (0)
"""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from returns.models import ProductInfo, ReturnPolicy, ReturnRequest
from returns.portal_page import item_title
from shopapp.admin_api.client import AdminApiClient
from shopapp.models import LineItem, Order
from shopapp.orders.reconcile import orders_reconcile
from tests.returns.flow_support import RETURN_TOPICS, Store, deliver, shop_installed_with_token
from tests.returns.test_portal import (  # noqa: F401 - the portal tests' Redis reset
    _fresh_redis,
    body,
    choose,
    lines,
    lookup,
    proxy_post,
    state_of,
    submit,
)
from tracking.models import Shipment

pytestmark = pytest.mark.django_db(transaction=True)

ORDER_TOPICS = [
    "orders/create",
    "orders/updated",
    "orders/fulfilled",
    "fulfillments/create",
    "fulfillments/update",
    "fulfillment_events/create",
]

RETURNABLE = """
query($id: ID!) { returnableFulfillments(orderId: $id, first: 5) { nodes {
  returnableFulfillmentLineItems(first: 20) { nodes { quantity fulfillmentLineItem { id } } } } } }
"""


def webhook_store(devshop, capture, client, rq_worker, *, quantity: int = 2) -> Store:
    """A fresh shop whose one delivered order (two lines of ``quantity`` units) reached the
    app only through its webhooks, posted as the devshop signed them; the background read of
    the order's products (returns.subscribers) done."""
    shop, grant = shop_installed_with_token(devshop, "loc")
    domain = shop.myshopify_domain
    for topic in ORDER_TOPICS + RETURN_TOPICS:
        devshop.client.webhook_subscription_create(domain, topic, f"{capture.url}/webhooks/")
    (order_id,) = devshop.client.orders_create(
        domain,
        count=1,
        line_items=2,
        financial_status="PAID",
        customer_locale="en",
        line_item_quantity=quantity,
    )
    for fulfillment in devshop.client.order_fulfil(domain, order_id):
        devshop.client.fulfillment_advance(domain, fulfillment["id"], "DELIVERED")
    store = Store(
        devshop=devshop,
        capture=capture,
        shop=shop,
        api=AdminApiClient(domain, grant["access_token"]),
        order=None,  # type: ignore[arg-type]
    )
    deliver(store, client, rq_worker, expect={"orders/create", "fulfillments/create"})
    store.order = Order.objects.get(shop=shop, shopify_id=order_id)
    return store


def offered(html: str, line: LineItem) -> int:
    """The most units of ``line`` the items page offers (0: not offered)."""
    select = re.search(rf'<select[^>]*name="quantity-{line.pk}"[^>]*>(.*?)</select>', html, re.S)
    if not select:
        return 0
    return max(int(v) for v in re.findall(r'<option value="(\d+)"', select[1]))


def shopify_returnable(store: Store) -> int:
    """Units Shopify itself says are returnable on the order now."""
    data = store.api.execute(RETURNABLE, {"id": f"gid://shopify/Order/{store.order.shopify_id}"})
    return sum(
        line["quantity"]
        for node in data["returnableFulfillments"]["nodes"]
        for line in node["returnableFulfillmentLineItems"]["nodes"]
    )


@pytest.fixture
def shop_calls(devshop):
    """Admin API requests the devshop answered for a shop, read over HTTP."""
    return lambda store: devshop.client.admin_api_requests(store.shop.myshopify_domain)


def test_lookup_and_item_pages_make_no_admin_api_request_once_webhooks_delivered_the_order(
    client, devshop, capture, rq_worker, shop_calls
):
    # given an order that reached the app through its webhooks only
    store = webhook_store(devshop, capture, client, rq_worker)
    shop, order = store.shop, store.order
    assert Shipment.objects.filter(order=order).exists()
    assert ProductInfo.objects.filter(shop=shop).exists()
    before = shop_calls(store)

    # when the shopper looks it up, chooses an item, goes back and chooses again
    found = lookup(client, shop, order)
    first, second = lines(order)
    review = choose(client, shop, state_of(found), {first: (1, "NOT_AS_DESCRIBED")})
    back = proxy_post(client, shop, {"step": "back", "state": state_of(review)})
    again = choose(client, shop, state_of(back), {second: (2, "UNWANTED")})

    # then every page answered from local state: not one Admin API request
    assert [r.status_code for r in (found, review, back, again)] == [200, 200, 200, 200]
    assert 'data-view="review"' in body(again)
    assert shop_calls(store) == before
    # and what it offered is what Shopify says is returnable
    html = body(found)
    assert offered(html, first) + offered(html, second) == shopify_returnable(store) == 4


def test_a_fulfillment_webhook_changes_what_the_portal_offers_at_once(
    client, devshop, capture, rq_worker, shop_calls
):
    # given an order shipped in part: one of its two lines left the warehouse
    store = webhook_store(devshop, capture, client, rq_worker)
    (order_id,) = devshop.client.orders_create(
        store.shop.myshopify_domain,
        count=1,
        line_items=2,
        financial_status="PAID",
        customer_locale="en",
        line_item_quantity=1,
    )
    deliver(store, client, rq_worker, expect={"orders/create"})
    order = Order.objects.get(shop=store.shop, shopify_id=order_id)
    first, second = lines(order)
    domain = store.shop.myshopify_domain
    (parcel,) = devshop.client.order_fulfil(
        domain, order_id, line_items=[{"id": first.shopify_id, "quantity": 1}]
    )
    devshop.client.fulfillment_advance(domain, parcel["id"], "DELIVERED")
    deliver(store, client, rq_worker, expect={"fulfillments/create"})
    before = lookup(client, store.shop, order)
    assert (offered(body(before), first), offered(body(before), second)) == (1, 0)
    assert "Not shipped yet" in body(before)

    # when the rest ships and arrives (fulfillments/create, fulfillments/update)
    (parcel,) = devshop.client.order_fulfil(
        domain, order_id, line_items=[{"id": second.shopify_id, "quantity": 1}]
    )
    devshop.client.fulfillment_advance(domain, parcel["id"], "DELIVERED")
    deliver(store, client, rq_worker, expect={"fulfillments/create"})
    calls = shop_calls(store)
    after = lookup(client, store.shop, order)

    # then the portal offers it at once, still without asking Shopify
    assert (offered(body(after), first), offered(body(after), second)) == (1, 1)
    assert shop_calls(store) == calls


def test_a_return_made_in_shopifys_admin_changes_what_the_portal_offers_at_once(
    client, devshop, capture, rq_worker, shop_calls
):
    # given a delivered order known from its webhooks
    store = webhook_store(devshop, capture, client, rq_worker)
    shop, order = store.shop, store.order
    first, second = lines(order)
    assert offered(body(lookup(client, shop, order)), first) == 2

    # when the merchant makes a return of one unit of the first line in Shopify's admin
    parcel = store.api.execute(
        """query($id: ID!) { order(id: $id) { fulfillments(first: 5) {
             fulfillmentLineItems(first: 10) { nodes { id lineItem { id } } } } } }""",
        {"id": f"gid://shopify/Order/{order.shopify_id}"},
    )["order"]["fulfillments"]
    fli = next(
        n["id"]
        for f in parcel
        for n in f["fulfillmentLineItems"]["nodes"]
        if n["lineItem"]["id"].endswith(f"/{first.shopify_id}")
    )
    answer = store.api.execute(
        """mutation($input: ReturnRequestInput!) { returnRequest(input: $input) {
             return { id } userErrors { message } } }""",
        {
            "input": {
                "orderId": f"gid://shopify/Order/{order.shopify_id}",
                "returnLineItems": [
                    {"fulfillmentLineItemId": fli, "quantity": 1, "returnReason": "OTHER"}
                ],
            }
        },
    )["returnRequest"]
    assert answer["userErrors"] == []
    deliver(store, client, rq_worker, expect={"returns/request"})
    calls = shop_calls(store)
    page = body(lookup(client, shop, order))

    # then the portal offers one unit fewer of that line at once, without asking Shopify,
    # as Shopify itself counts it
    assert (offered(page, first), offered(page, second)) == (1, 2)
    assert shop_calls(store) == calls
    assert shopify_returnable(store) == 3


def test_a_refund_changes_what_the_portal_offers_at_once(
    client, devshop, capture, rq_worker, shop_calls
):
    # given a delivered order known from its webhooks
    store = webhook_store(devshop, capture, client, rq_worker)
    shop, order = store.shop, store.order
    first, second = lines(order)

    # when the merchant refunds both units of the first line without a return (Shopify sends
    # orders/updated with the line's current_quantity down to 0)
    devshop.client.order_refund(
        shop.myshopify_domain, order.shopify_id, [{"id": first.shopify_id, "quantity": 2}]
    )
    deliver(store, client, rq_worker, expect={"orders/updated"})
    calls = shop_calls(store)
    page = body(lookup(client, shop, order))

    # then that line is no longer offered, the other still is, and Shopify was not asked
    assert (offered(page, first), offered(page, second)) == (0, 2)
    assert "Already returned" in page
    assert shop_calls(store) == calls


def test_an_order_whose_shipments_never_reached_the_app_is_read_once_then_served_locally(
    client, devshop, shop_calls, rq_worker
):
    # given an order the app mirrored (reconciliation) but whose fulfillment webhooks it never
    # had: Shopify calls it fulfilled, no shipment here
    shop, grant = shop_installed_with_token(devshop, "loc")
    domain = shop.myshopify_domain
    (order_id,) = devshop.client.orders_create(
        domain, count=1, line_items=2, financial_status="PAID", customer_locale="en"
    )
    for fulfillment in devshop.client.order_fulfil(domain, order_id):
        devshop.client.fulfillment_advance(domain, fulfillment["id"], "DELIVERED")
    orders_reconcile(shop=shop)
    rq_worker()  # the new order's products, read in the background
    order = Order.objects.get(shop=shop, shopify_id=order_id)
    assert not Shipment.objects.filter(order=order).exists()
    store = Store(devshop=devshop, capture=None, shop=shop, api=None, order=order)  # type: ignore[arg-type]
    calls = shop_calls(store)

    # when the shopper looks it up twice
    first_look = lookup(client, shop, order)
    after_first = shop_calls(store)
    second_look = lookup(client, shop, order)

    # then the first look read the order's fulfillments once and stored them; the second was
    # served from them; both offer every unit shipped
    assert after_first == calls + 1
    assert shop_calls(store) == after_first
    assert Shipment.objects.filter(order=order, delivered_at__isnull=False).exists()
    for page in (first_look, second_look):
        html = body(page)
        assert all(offered(html, line) == line.quantity for line in lines(order)), html[:3000]


def test_a_submission_shopify_disagrees_with_tells_the_shopper_what_changed_and_stores_nothing(
    client, devshop, capture, rq_worker
):
    # given a shopper who chose both units of the first line, the portal offering them from
    # local state
    store = webhook_store(devshop, capture, client, rq_worker)
    shop, order = store.shop, store.order
    first, _second = lines(order)
    review = choose(
        client, shop, state_of(lookup(client, shop, order)), {first: (2, "NOT_AS_DESCRIBED")}
    )
    assert 'data-view="review"' in body(review)
    # and, meanwhile, a return of those units made in Shopify whose webhook has not arrived
    parcel = store.api.execute(
        """query($id: ID!) { order(id: $id) { fulfillments(first: 5) {
             fulfillmentLineItems(first: 10) { nodes { id lineItem { id } } } } } }""",
        {"id": f"gid://shopify/Order/{order.shopify_id}"},
    )["order"]["fulfillments"]
    fli = next(
        n["id"]
        for f in parcel
        for n in f["fulfillmentLineItems"]["nodes"]
        if n["lineItem"]["id"].endswith(f"/{first.shopify_id}")
    )
    answer = store.api.execute(
        """mutation($input: ReturnRequestInput!) { returnRequest(input: $input) {
             return { id } userErrors { message } } }""",
        {
            "input": {
                "orderId": f"gid://shopify/Order/{order.shopify_id}",
                "returnLineItems": [
                    {"fulfillmentLineItemId": fli, "quantity": 2, "returnReason": "OTHER"}
                ],
            }
        },
    )["returnRequest"]
    assert answer["userErrors"] == []

    # when the shopper submits
    response = submit(client, shop, state_of(review))

    # then Shopify's answer wins: the items page again, saying what changed about which item,
    # with nothing stored here and no second return in Shopify
    html = unescape(body(response))
    assert response.status_code == 409
    assert 'data-view="items"' in html
    assert "Something changed since you chose your items." in html
    assert f"{item_title(first)}: Already returned." in html
    assert offered(html, first) == 0
    assert not ReturnRequest.objects.filter(shop=shop).exists()
    assert len(devshop.client.order_state(shop.myshopify_domain, order.shopify_id)["returns"]) == 1


def test_an_item_on_its_way_is_offered_once_delivered_unless_the_policy_says_otherwise(
    client, devshop, capture, rq_worker
):
    # given an order shipped two days ago and still in transit
    store = webhook_store(devshop, capture, client, rq_worker)
    domain = store.shop.myshopify_domain
    (order_id,) = devshop.client.orders_create(
        domain, count=1, line_items=1, financial_status="PAID", customer_locale="en"
    )
    (parcel,) = devshop.client.order_fulfil(domain, order_id)
    devshop.client.fulfillment_advance(domain, parcel["id"], "IN_TRANSIT")
    deliver(store, client, rq_worker, expect={"orders/create", "fulfillments/create"})
    order = Order.objects.get(shop=store.shop, shopify_id=order_id)
    (line,) = lines(order)

    # when the shopper looks it up: not yet, and told why
    in_transit = body(lookup(client, store.shop, order))
    assert offered(in_transit, line) == 0
    assert "On its way: it can be returned once it&#x27;s delivered" in in_transit

    # when the merchant lets shoppers return what is on its way: offered
    ReturnPolicy.objects.filter(shop=store.shop).update(allows_return_before_delivery=True)
    assert offered(body(lookup(client, store.shop, order)), line) == line.quantity
    ReturnPolicy.objects.filter(shop=store.shop).update(allows_return_before_delivery=False)

    # when the parcel is delivered (fulfillments/update): offered, the window from delivery
    devshop.client.fulfillment_advance(domain, parcel["id"], "DELIVERED")
    deliver(store, client, rq_worker, expect={"fulfillments/update"})
    assert offered(body(lookup(client, store.shop, order)), line) == line.quantity


def test_without_a_delivery_scan_the_item_is_offered_once_the_transit_allowance_passed(
    client, devshop, capture, rq_worker
):
    # given an order shipped with a carrier that never scans, 8 days ago (allowance: 7 days)
    store = webhook_store(devshop, capture, client, rq_worker)
    domain = store.shop.myshopify_domain
    (order_id,) = devshop.client.orders_create(
        domain, count=1, line_items=1, financial_status="PAID", customer_locale="en"
    )
    devshop.client.order_fulfil(domain, order_id)
    deliver(store, client, rq_worker, expect={"orders/create", "fulfillments/create"})
    order = Order.objects.get(shop=store.shop, shopify_id=order_id)
    (line,) = lines(order)
    assert offered(body(lookup(client, store.shop, order)), line) == 0
    Shipment.objects.filter(order=order).update(
        shopify_created_at=timezone.now() - timedelta(days=8)
    )

    # when the shopper looks it up: offered (taken as delivered, as Shopify's self-serve does)
    assert offered(body(lookup(client, store.shop, order)), line) == line.quantity

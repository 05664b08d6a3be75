"""Exchanges through the Admin GraphQL API over HTTP, as the app calls them: returnCreate with
exchange lines (directly OPEN, returns/approve), returnProcess confirming the exchange (a new
order line item, the price difference held or settled), removeFromReturn (returns/update),
returnReopen (returns/reopen), and userErrors that change nothing."""

from decimal import Decimal

import pytest

from shopapp.admin_api.client import AdminApiClient
from tests.devshop.capture_server import CaptureServer
from tests.devshop.simulation_support import capture_store, fixture_keys, hooks, new_shop, quiet

ORDER_LINES = """
query($id: ID!) { order(id: $id) {
  displayFinancialStatus displayFulfillmentStatus
  totalPriceSet { shopMoney { amount } } totalOutstandingSet { shopMoney { amount } }
  lineItems(first: 20) { nodes { id quantity unfulfilledQuantity
    originalUnitPriceSet { shopMoney { amount } } variant { id price } } }
  fulfillments(first: 5) { fulfillmentLineItems(first: 10) {
    nodes { id quantity lineItem { id variant { id price }
      discountedUnitPriceSet { shopMoney { amount } } } } } } } }"""
CREATE = """
mutation($r: ReturnInput!) {
  returnCreate(returnInput: $r) {
    return { id name status requestApprovedAt totalQuantity
      returnLineItems(first: 10) { nodes { id quantity ... on ReturnLineItem {
        returnReason returnReasonNote } } }
      exchangeLineItems(first: 10) { nodes { id quantity processedQuantity
        unprocessedQuantity processableQuantity variantId lineItems { id } } }
      reverseFulfillmentOrders(first: 5) { nodes { id status
        lineItems(first: 10) { nodes { id totalQuantity } } } } }
    userErrors { field message code }
  }
}"""
PROCESS = """
mutation($input: ReturnProcessInput!) {
  returnProcess(input: $input) {
    return { id status exchangeLineItems(first: 10) { nodes { id processedQuantity
      unprocessedQuantity lineItems { id quantity variant { id } } } } }
    userErrors { field message code }
  }
}"""
REMOVE = """
mutation($id: ID!, $lines: [ReturnLineItemRemoveFromReturnInput!],
         $exchanges: [ExchangeLineItemRemoveFromReturnInput!]) {
  removeFromReturn(returnId: $id, returnLineItems: $lines, exchangeLineItems: $exchanges) {
    return { id totalQuantity exchangeLineItems(first: 5) { nodes { id quantity } } }
    userErrors { field message code }
  }
}"""
REOPEN = """
mutation($id: ID!) { returnReopen(id: $id) { return { id status closedAt
  reverseFulfillmentOrders(first: 2) { nodes { status } } }
  userErrors { field message code } } }"""
CLOSE = """
mutation($id: ID!) { returnClose(id: $id) { return { status } userErrors { code } } }"""
REQUEST = """
mutation($input: ReturnRequestInput!) {
  returnRequest(input: $input) { return { id status
    reverseFulfillmentOrders(first: 2) { nodes { id } } } userErrors { code } } }"""
APPROVE = """
mutation($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) { return { status
    reverseFulfillmentOrders(first: 2) { nodes { id status lineItems(first: 5) {
      nodes { totalQuantity fulfillmentLineItem { id } } } } } } userErrors { code } } }"""


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    server = capture_store(tmp_path_factory.mktemp("devshop-exchanges"), capture)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def delivered(store, capture, settings):
    """A shop with one delivered, paid order of two lines: (shop, order gid, api, store)."""
    quiet(store)
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = store.admin_url_template
    shop, token = new_shop(store, "exch")
    (order_id,) = store.client.orders_create(shop, count=1, line_items=2, financial_status="PAID")
    (fulfillment,) = store.client.order_fulfil(shop, order_id)
    store.client.fulfillment_advance(shop, fulfillment["id"], "DELIVERED")
    hooks(store, capture, shop)
    return shop, f"gid://shopify/Order/{order_id}", AdminApiClient(shop, token)


def _shipped(api, order_gid):
    """[(fulfillment line item id, quantity, variant id, unit price)] of the order."""
    order = api.execute(ORDER_LINES, {"id": order_gid})["order"]
    return [
        (
            node["id"],
            node["quantity"],
            node["lineItem"]["variant"]["id"],
            Decimal(node["lineItem"]["variant"]["price"]),
        )
        for f in order["fulfillments"]
        for node in f["fulfillmentLineItems"]["nodes"]
    ]


def _paid(api, order_gid, fli) -> Decimal:
    """What one unit of a fulfillment line cost the buyer, its share of a discount deducted:
    what Shopify credits for it returned (ReturnLineItem.withCodeDiscountedTotalPriceSet)."""
    order = api.execute(ORDER_LINES, {"id": order_gid})["order"]
    (amount,) = [
        node["lineItem"]["discountedUnitPriceSet"]["shopMoney"]["amount"]
        for f in order["fulfillments"]
        for node in f["fulfillmentLineItems"]["nodes"]
        if node["id"] == fli
    ]
    return Decimal(amount)


def _create(api, order_gid, lines, exchanges, **extra):
    payload = {
        "orderId": order_gid,
        "returnLineItems": [
            {"fulfillmentLineItemId": fli, "quantity": q, "returnReason": "SIZE_TOO_SMALL"}
            for fli, q in lines
        ],
        "exchangeLineItems": [{"variantId": v, "quantity": q} for v, q in exchanges],
        **extra,
    }
    return api.execute(CREATE, {"r": payload})["returnCreate"]


def test_return_create_with_exchange_is_open_with_a_reverse_fulfillment_order(
    delivered, store, capture
):
    shop, order_gid, api = delivered
    (fli, _, variant, _), *_ = _shipped(api, order_gid)

    created = _create(
        api,
        order_gid,
        [(fli, 1)],
        [(variant, 1)],
        requestedAt="2026-01-02T10:00:00Z",
    )

    assert created["userErrors"] == []
    ret = created["return"]
    assert ret["status"] == "OPEN"
    assert ret["requestApprovedAt"]
    (exchange,) = ret["exchangeLineItems"]["nodes"]
    assert exchange["id"].startswith("gid://shopify/ExchangeLineItem/")
    assert exchange["variantId"] == variant
    assert (exchange["quantity"], exchange["processedQuantity"]) == (1, 0)
    assert exchange["unprocessedQuantity"] == exchange["processableQuantity"] == 1
    assert exchange["lineItems"] == []
    (rfo,) = ret["reverseFulfillmentOrders"]["nodes"]
    assert rfo["status"] == "OPEN"
    assert [n["totalQuantity"] for n in rfo["lineItems"]["nodes"]] == [1]
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "returns/approve"
    assert fixture_keys("returns__approve") <= set(hook.payload)
    assert hook.payload["status"] == "open"
    assert hook.payload["total_exchange_line_items"] == 1
    assert hook.payload["exchange_line_items"] == [
        {
            "id": int(exchange["id"].rsplit("/", 1)[1]),
            "admin_graphql_api_id": exchange["id"],
            "line_item": None,
        }
    ]


def test_even_exchange_books_a_line_item_and_moves_no_money(delivered, store, capture):
    shop, order_gid, api = delivered
    (fli, _, variant, price), *_ = _shipped(api, order_gid)
    before = api.execute(ORDER_LINES, {"id": order_gid})["order"]
    ret = _create(api, order_gid, [(fli, 1)], [(variant, 1)])["return"]
    (line,) = ret["returnLineItems"]["nodes"]
    (exchange,) = ret["exchangeLineItems"]["nodes"]
    hooks(store, capture, shop)

    processed = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "returnLineItems": [{"id": line["id"], "quantity": 1}],
                "exchangeLineItems": [{"id": exchange["id"], "quantity": 1}],
            }
        },
    )["returnProcess"]

    # then the exchange is a new line item on the same order, to fulfil
    assert processed["userErrors"] == []
    assert processed["return"]["status"] == "CLOSED"
    (booked,) = processed["return"]["exchangeLineItems"]["nodes"]
    assert booked["processedQuantity"] == 1
    assert booked["unprocessedQuantity"] == 0
    (new_item,) = booked["lineItems"]
    assert new_item["quantity"] == 1
    assert new_item["variant"]["id"] == variant
    after = api.execute(ORDER_LINES, {"id": order_gid})["order"]
    added = [n for n in after["lineItems"]["nodes"] if n["id"] == new_item["id"]]
    assert added
    assert added[0]["unfulfilledQuantity"] == 1
    assert len(after["lineItems"]["nodes"]) == len(before["lineItems"]["nodes"]) + 1
    assert after["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert after["displayFinancialStatus"] == "PAID"
    assert Decimal(after["totalOutstandingSet"]["shopMoney"]["amount"]) == 0
    total_before = Decimal(before["totalPriceSet"]["shopMoney"]["amount"])
    assert Decimal(after["totalPriceSet"]["shopMoney"]["amount"]) == total_before + price
    # and process, close and the order update arrive as one action; no refund
    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == ["returns/process", "returns/close", "orders/updated"]
    assert len({h.event_id for h in sent}) == 1
    (exchanged,) = sent[0].payload["exchange_line_items"]
    assert exchanged["line_item"]["admin_graphql_api_id"] == new_item["id"]
    assert exchanged["line_item"]["quantity"] == 1
    items = {i["admin_graphql_api_id"]: i for i in sent[2].payload["line_items"]}
    assert items[new_item["id"]]["fulfillable_quantity"] == 1
    assert sent[2].payload["financial_status"] == "paid"

    # the store's background life ships the exchange like any unfulfilled item
    store.client.order_fulfil(shop, int(order_gid.rsplit("/", 1)[1]))
    shipped = api.execute(ORDER_LINES, {"id": order_gid})["order"]
    assert shipped["displayFulfillmentStatus"] == "FULFILLED"


def test_buyer_owes_exchange_is_held_until_paid(delivered, store, capture):
    shop, order_gid, api = delivered
    (fli, _, variant, price), *_ = _shipped(api, order_gid)
    order_id = int(order_gid.rsplit("/", 1)[1])
    # one unit back, two of the variant wanted: the buyer owes one unit's price
    ret = _create(api, order_gid, [(fli, 1)], [(variant, 2)])["return"]
    hooks(store, capture, shop)

    processed = api.execute(PROCESS, {"input": {"returnId": ret["id"]}})["returnProcess"]

    assert processed["userErrors"] == []
    order = api.execute(ORDER_LINES, {"id": order_gid})["order"]
    assert order["displayFinancialStatus"] == "PARTIALLY_PAID"
    assert Decimal(order["totalOutstandingSet"]["shopMoney"]["amount"]) == price
    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == ["returns/process", "returns/close", "orders/updated"]
    assert sent[2].payload["financial_status"] == "partially_paid"
    # the held exchange is not shipped
    with pytest.raises(Exception, match="400"):
        store.client.order_fulfil(shop, order_id)

    # when the buyer pays, the hold is released and the exchange ships
    store.client.return_action(shop, int(ret["id"].rsplit("/", 1)[1]), "pay_exchange")
    paid = hooks(store, capture, shop)
    assert [h.topic for h in paid] == ["orders/paid", "orders/updated"]
    assert paid[0].payload["financial_status"] == "paid"
    (parcel,) = store.client.order_fulfil(shop, order_id)
    assert parcel["id"]


def test_discounted_exchange_refunds_the_difference_when_the_store_settles(
    delivered, store, capture
):
    shop, order_gid, api = delivered
    (fli, _, variant, price), *_ = _shipped(api, order_gid)
    created = api.execute(
        CREATE,
        {
            "r": {
                "orderId": order_gid,
                "returnLineItems": [{"fulfillmentLineItemId": fli, "quantity": 1}],
                "exchangeLineItems": [
                    {
                        "variantId": variant,
                        "quantity": 1,
                        "appliedDiscount": {"value": {"percentage": 50.0}},
                    }
                ],
            }
        },
    )["returnCreate"]
    ret = created["return"]
    hooks(store, capture, shop)

    # the merchant processes from the admin (control API): the difference goes back
    store.client.return_action(shop, int(ret["id"].rsplit("/", 1)[1]), "process")

    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == [
        "returns/process",
        "returns/close",
        "refunds/create",
        "orders/updated",
    ]
    exchange_price = (price / 2).quantize(Decimal("0.01"))
    # (the unit sent back is worth what it cost, a line discount deducted)
    paid = _paid(api, order_gid, fli)
    assert Decimal(sent[2].payload["transactions"][0]["amount"]) == paid - exchange_price
    assert sent[3].payload["financial_status"] == "partially_refunded"


def test_remove_from_return_fires_returns_update(delivered, store, capture):
    shop, order_gid, api = delivered
    (fli, _, variant, _), *_ = _shipped(api, order_gid)
    ret = _create(api, order_gid, [(fli, 1)], [(variant, 2)])["return"]
    (exchange,) = ret["exchangeLineItems"]["nodes"]
    hooks(store, capture, shop)

    removed = api.execute(
        REMOVE,
        {"id": ret["id"], "exchanges": [{"exchangeLineItemId": exchange["id"], "quantity": 1}]},
    )["removeFromReturn"]

    assert removed["userErrors"] == []
    assert removed["return"]["exchangeLineItems"]["nodes"][0]["quantity"] == 1
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "returns/update"
    assert fixture_keys("returns__update") <= set(hook.payload)
    assert hook.payload["admin_graphql_api_id"] == ret["id"]
    assert hook.payload["return_line_items"] == {"removals": []}
    assert hook.payload["exchange_line_items"]["removals"] == [
        {"admin_graphql_api_id": exchange["id"], "delta": 1}
    ]

    # too many units, or an unknown line: nothing changes, nothing fires
    (line,) = ret["returnLineItems"]["nodes"]
    too_many = api.execute(
        REMOVE, {"id": ret["id"], "lines": [{"returnLineItemId": line["id"], "quantity": 5}]}
    )["removeFromReturn"]
    unknown = api.execute(
        REMOVE,
        {
            "id": ret["id"],
            "lines": [{"returnLineItemId": "gid://shopify/ReturnLineItem/1", "quantity": 1}],
        },
    )["removeFromReturn"]
    assert too_many["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    assert hooks(store, capture, shop) == []


def test_reopen_a_closed_return(delivered, store, capture):
    shop, order_gid, api = delivered
    (fli, _, _, _), *_ = _shipped(api, order_gid)
    ret = _create(api, order_gid, [(fli, 1)], [])["return"]
    open_again = api.execute(REOPEN, {"id": ret["id"]})["returnReopen"]
    assert open_again["userErrors"][0]["code"] == "INVALID_STATE"
    api.execute(CLOSE, {"id": ret["id"]})
    hooks(store, capture, shop)

    reopened = api.execute(REOPEN, {"id": ret["id"]})["returnReopen"]

    assert reopened["userErrors"] == []
    assert reopened["return"]["status"] == "OPEN"
    assert reopened["return"]["closedAt"] is None
    assert reopened["return"]["reverseFulfillmentOrders"]["nodes"][0]["status"] == "OPEN"
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "returns/reopen"
    assert fixture_keys("returns__reopen") <= set(hook.payload)
    assert hook.payload["status"] == "open"
    unknown = api.execute(REOPEN, {"id": "gid://shopify/Return/1"})["returnReopen"]
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"


def test_requested_return_gets_its_reverse_fulfillment_order_at_approval(delivered):
    shop, order_gid, api = delivered
    (fli, _, _, _), *_ = _shipped(api, order_gid)
    requested = api.execute(
        REQUEST,
        {
            "input": {
                "orderId": order_gid,
                "returnLineItems": [{"fulfillmentLineItemId": fli, "quantity": 1}],
            }
        },
    )["returnRequest"]["return"]
    assert requested["reverseFulfillmentOrders"]["nodes"] == []

    approved = api.execute(APPROVE, {"input": {"id": requested["id"]}})["returnApproveRequest"]

    (rfo,) = approved["return"]["reverseFulfillmentOrders"]["nodes"]
    assert rfo["status"] == "OPEN"
    (line,) = rfo["lineItems"]["nodes"]
    assert line == {"totalQuantity": 1, "fulfillmentLineItem": {"id": fli}}


def test_bad_exchange_input_changes_nothing(delivered, store, capture):
    shop, order_gid, api = delivered
    (fli, quantity, variant, _), *_ = _shipped(api, order_gid)

    unknown_variant = _create(api, order_gid, [(fli, 1)], [("gid://shopify/ProductVariant/1", 1)])
    zero = _create(api, order_gid, [(fli, 1)], [(variant, 0)])
    too_many = _create(api, order_gid, [(fli, quantity + 1)], [(variant, 1)])
    unknown_order = _create(api, "gid://shopify/Order/1", [(fli, 1)], [])
    blank = _create(api, order_gid, [], [(variant, 1)])

    assert unknown_variant["return"] is None
    assert unknown_variant["userErrors"] == [
        {
            "field": ["returnInput", "exchangeLineItems", "0", "variantId"],
            "message": "Variant not found.",
            "code": "NOT_FOUND",
        }
    ]
    assert zero["userErrors"][0]["code"] == "GREATER_THAN"
    assert too_many["userErrors"][0]["field"] == [
        "returnInput",
        "returnLineItems",
        "0",
        "quantity",
    ]
    assert too_many["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert unknown_order["userErrors"][0]["code"] == "NOT_FOUND"
    assert blank["userErrors"][0]["code"] == "BLANK"
    assert hooks(store, capture, shop) == []

    # processing: an unknown exchange line, more than unprocessed, a wrong state
    ret = _create(api, order_gid, [(fli, 1)], [(variant, 1)])["return"]
    (exchange,) = ret["exchangeLineItems"]["nodes"]
    hooks(store, capture, shop)
    unknown_line = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "exchangeLineItems": [{"id": "gid://shopify/ExchangeLineItem/1", "quantity": 1}],
            }
        },
    )["returnProcess"]
    over = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "exchangeLineItems": [{"id": exchange["id"], "quantity": 2}],
            }
        },
    )["returnProcess"]
    assert unknown_line["userErrors"][0]["code"] == "NOT_FOUND"
    assert unknown_line["userErrors"][0]["field"] == ["input", "exchangeLineItems", "0", "id"]
    assert over["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert hooks(store, capture, shop) == []
    api.execute(CLOSE, {"id": ret["id"]})
    hooks(store, capture, shop)
    closed = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "exchangeLineItems": [{"id": exchange["id"], "quantity": 1}],
            }
        },
    )["returnProcess"]
    assert closed["userErrors"][0]["code"] == "INVALID_STATE"
    assert hooks(store, capture, shop) == []

"""Returns through the Admin GraphQL API over HTTP, as the app calls it: returnableFulfillments,
returnRequest → returnApproveRequest → returnProcess, declines, cancels, closes, userErrors,
and the returns/* webhooks each step fires."""

import pytest

from shopapp.admin_api.client import AdminApiClient
from tests.devshop.capture_server import CaptureServer
from tests.devshop.simulation_support import capture_store, fixture_keys, hooks, new_shop, quiet

RETURNABLE = """
query($orderId: ID!) {
  returnableFulfillments(orderId: $orderId, first: 10) {
    edges { node {
      id
      fulfillment { id displayStatus location { address { address1 } } }
      returnableFulfillmentLineItems(first: 20) {
        nodes { quantity fulfillmentLineItem { id lineItem { id } } }
      }
    } }
  }
}"""
REQUEST = """
mutation($input: ReturnRequestInput!) {
  returnRequest(input: $input) {
    return { id name status totalQuantity
      returnLineItems(first: 10) { nodes { id quantity
        ... on ReturnLineItem { returnReason customerNote unprocessedQuantity
          returnReasonDefinition { handle } fulfillmentLineItem { id } } } } }
    userErrors { field message code }
  }
}"""
APPROVE = """
mutation($input: ReturnApproveRequestInput!) {
  returnApproveRequest(input: $input) { return { id status } userErrors { field message code } }
}"""
DECLINE = """
mutation($input: ReturnDeclineRequestInput!) {
  returnDeclineRequest(input: $input) {
    return { id status decline { reason note } } userErrors { field message code }
  }
}"""
PROCESS = """
mutation($input: ReturnProcessInput!) {
  returnProcess(input: $input) {
    return { id status closedAt returnLineItems(first: 10) { nodes { processedQuantity } } }
    userErrors { field message code }
  }
}"""
CANCEL = """
mutation($id: ID!) {
  returnCancel(id: $id) { return { status } userErrors { field message code } }
}"""
CLOSE = """
mutation($id: ID!) {
  returnClose(id: $id) { return { status } userErrors { field message code } }
}"""
ORDER = """
query($id: ID!) { order(id: $id) {
  displayFinancialStatus returnStatus transactions(first: 5) { id kind }
  returns(first: 5) { nodes { id status } } } }"""


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    server = capture_store(tmp_path_factory.mktemp("devshop-returns"), capture)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def delivered(store, capture, settings):
    """A shop with one delivered order of two or more lines; (shop, order gid, api client)."""
    quiet(store)
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = store.admin_url_template
    shop, token = new_shop(store, "ret")
    (order_id,) = store.client.orders_create(shop, count=1, line_items=2, financial_status="PAID")
    (fulfillment,) = store.client.order_fulfil(shop, order_id)
    store.client.fulfillment_advance(shop, fulfillment["id"], "DELIVERED")
    hooks(store, capture, shop)
    return shop, f"gid://shopify/Order/{order_id}", AdminApiClient(shop, token)


def _returnable(api, order_gid):
    data = api.execute(RETURNABLE, {"orderId": order_gid})["returnableFulfillments"]["edges"]
    return [
        (line["fulfillmentLineItem"]["id"], line["quantity"])
        for edge in data
        for line in edge["node"]["returnableFulfillmentLineItems"]["nodes"]
    ]


def _request(api, order_gid, lines, **extra):
    items = [{"fulfillmentLineItemId": fli, "quantity": q, **extra} for fli, q in lines]
    return api.execute(REQUEST, {"input": {"orderId": order_gid, "returnLineItems": items}})[
        "returnRequest"
    ]


def test_returnable_fulfillments_has_the_documented_shape(delivered):
    shop, order_gid, api = delivered

    data = api.execute(RETURNABLE, {"orderId": order_gid})["returnableFulfillments"]

    (edge,) = data["edges"]
    node = edge["node"]
    assert node["id"].startswith("gid://shopify/ReturnableFulfillment/")
    assert node["id"].rsplit("/", 1)[1] == node["fulfillment"]["id"].rsplit("/", 1)[1]
    assert node["fulfillment"]["displayStatus"] == "DELIVERED"
    assert node["fulfillment"]["location"]["address"]["address1"]
    lines = node["returnableFulfillmentLineItems"]["nodes"]
    assert len(lines) == 2
    assert all(line["quantity"] >= 1 for line in lines)


def test_full_flow_request_approve_process(delivered, store, capture):
    shop, order_gid, api = delivered
    lines = _returnable(api, order_gid)
    (fli, quantity), *_ = lines

    # when the app requests a return for one line, with a reason definition
    requested = _request(
        api,
        order_gid,
        [(fli, quantity)],
        returnReasonDefinitionId="gid://shopify/ReturnReasonDefinition/1001",
        customerNote="Runs small",
    )
    assert requested["userErrors"] == []
    ret = requested["return"]
    assert ret["status"] == "REQUESTED"
    assert ret["name"].endswith("-R1")
    (line,) = ret["returnLineItems"]["nodes"]
    assert line["returnReasonDefinition"]["handle"] == "size-too-small"
    assert line["returnReason"] == "SIZE_TOO_SMALL"
    assert line["customerNote"] == "Runs small"
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "returns/request"
    assert fixture_keys("returns__request") <= set(hook.payload)
    assert hook.payload["status"] == "requested"
    assert hook.payload["order"]["admin_graphql_api_id"] == order_gid
    assert hook.payload["total_return_line_items"] == quantity
    # the units asked for are no longer returnable
    assert dict(_returnable(api, order_gid)).get(fli) is None

    # when the merchant approves
    approved = api.execute(APPROVE, {"input": {"id": ret["id"], "notifyCustomer": True}})
    assert approved["returnApproveRequest"]["return"]["status"] == "OPEN"
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "returns/approve"
    assert hook.payload["status"] == "open"

    # when the return is processed with a refund to the original payment
    order = api.execute(ORDER, {"id": order_gid})["order"]
    (transaction,) = order["transactions"]
    processed = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "returnLineItems": [{"id": line["id"], "quantity": quantity}],
                "financialTransfer": {
                    "issueRefund": {
                        "orderTransactions": [
                            {
                                "parentId": transaction["id"],
                                "transactionAmount": {"amount": "10.00", "currencyCode": "USD"},
                            }
                        ]
                    }
                },
                "notifyCustomer": True,
            }
        },
    )["returnProcess"]

    # then the return is closed, and the store fires process, close, refund and order update
    assert processed["userErrors"] == []
    assert processed["return"]["status"] == "CLOSED"
    assert processed["return"]["closedAt"]
    assert processed["return"]["returnLineItems"]["nodes"][0]["processedQuantity"] == quantity
    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == [
        "returns/process",
        "returns/close",
        "refunds/create",
        "orders/updated",
    ]
    assert len({h.event_id for h in sent}) == 1
    assert fixture_keys("returns__close") <= set(sent[1].payload)
    assert sent[1].payload == {
        "id": int(ret["id"].rsplit("/", 1)[1]),
        "admin_graphql_api_id": ret["id"],
        "order_id": int(order_gid.rsplit("/", 1)[1]),
        "status": "closed",
    }
    assert fixture_keys("refunds__create") <= set(sent[2].payload)
    assert sent[2].payload["transactions"][0]["amount"] == "10.00"
    assert sent[3].payload["financial_status"] == "partially_refunded"
    after = api.execute(ORDER, {"id": order_gid})["order"]
    assert after["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert after["returnStatus"] == "RETURNED"


def test_decline_frees_the_units_again(delivered, store, capture):
    shop, order_gid, api = delivered
    before = _returnable(api, order_gid)
    ret = _request(api, order_gid, before[:1], returnReason="UNWANTED")["return"]
    hooks(store, capture, shop)

    declined = api.execute(
        DECLINE,
        {"input": {"id": ret["id"], "declineReason": "FINAL_SALE", "declineNote": "Sale item"}},
    )["returnDeclineRequest"]

    assert declined["return"]["status"] == "DECLINED"
    assert declined["return"]["decline"] == {"reason": "FINAL_SALE", "note": "Sale item"}
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "returns/decline"
    assert fixture_keys("returns__decline") <= set(hook.payload)
    assert hook.payload["decline"] == {"reason": "final_sale", "note": "Sale item"}
    assert _returnable(api, order_gid) == before


def test_cancel_and_close(delivered, store, capture):
    shop, order_gid, api = delivered
    first, second = _returnable(api, order_gid)
    to_cancel = _request(api, order_gid, [first])["return"]
    to_close = _request(api, order_gid, [second])["return"]
    api.execute(APPROVE, {"input": {"id": to_close["id"]}})
    hooks(store, capture, shop)

    cancelled = api.execute(CANCEL, {"id": to_cancel["id"]})["returnCancel"]
    closed = api.execute(CLOSE, {"id": to_close["id"]})["returnClose"]

    assert cancelled["return"]["status"] == "CANCELED"
    assert closed["return"]["status"] == "CLOSED"
    sent = hooks(store, capture, shop)
    assert [(h.topic, h.payload["status"]) for h in sent] == [
        ("returns/cancel", "canceled"),
        ("returns/close", "closed"),
    ]


def test_user_errors_change_nothing(delivered, store, capture):
    shop, order_gid, api = delivered
    (fli, quantity), *_ = _returnable(api, order_gid)

    unknown_order = _request(api, "gid://shopify/Order/1", [(fli, 1)])
    too_many = _request(api, order_gid, [(fli, quantity + 1)])
    zero = _request(api, order_gid, [(fli, 0)])
    unknown_line = _request(api, order_gid, [("gid://shopify/FulfillmentLineItem/1", 1)])
    long_note = _request(api, order_gid, [(fli, 1)], customerNote="x" * 301)
    bad_reason = _request(
        api,
        order_gid,
        [(fli, 1)],
        returnReasonDefinitionId="gid://shopify/ReturnReasonDefinition/9",
    )

    assert unknown_order["return"] is None
    assert unknown_order["userErrors"][0]["code"] == "NOT_FOUND"
    assert unknown_order["userErrors"][0]["field"] == ["input", "orderId"]
    assert too_many["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert too_many["userErrors"][0]["field"] == ["input", "returnLineItems", "0", "quantity"]
    assert zero["userErrors"][0]["code"] == "GREATER_THAN"
    assert unknown_line["userErrors"][0]["code"] == "NOT_FOUND"
    assert long_note["userErrors"][0]["code"] == "TOO_LONG"
    assert bad_reason["userErrors"][0]["code"] == "NOT_FOUND"
    assert hooks(store, capture, shop) == []
    assert api.execute(ORDER, {"id": order_gid})["order"]["returns"]["nodes"] == []


def test_wrong_state_transitions_are_user_errors(delivered, store, capture):
    shop, order_gid, api = delivered
    ret = _request(api, order_gid, _returnable(api, order_gid)[:1])["return"]

    # processing or closing a return that was never approved
    not_open = api.execute(PROCESS, {"input": {"returnId": ret["id"]}})["returnProcess"]
    close_requested = api.execute(CLOSE, {"id": ret["id"]})["returnClose"]
    api.execute(APPROVE, {"input": {"id": ret["id"]}})
    # approving twice, declining an approved return, an unknown line, an empty request
    again = api.execute(APPROVE, {"input": {"id": ret["id"]}})["returnApproveRequest"]
    decline_open = api.execute(DECLINE, {"input": {"id": ret["id"], "declineReason": "OTHER"}})[
        "returnDeclineRequest"
    ]
    blank = api.execute(REQUEST, {"input": {"orderId": order_gid, "returnLineItems": []}})[
        "returnRequest"
    ]
    over = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "returnLineItems": [{"id": "gid://shopify/ReturnLineItem/1", "quantity": 1}],
            }
        },
    )["returnProcess"]
    unknown = api.execute(APPROVE, {"input": {"id": "gid://shopify/Return/1"}})[
        "returnApproveRequest"
    ]

    for payload in (not_open, close_requested, again, decline_open):
        assert payload["return"] is None
        assert payload["userErrors"][0]["code"] == "INVALID_STATE"
    assert blank["userErrors"][0]["code"] == "BLANK"
    assert over["userErrors"][0]["code"] == "NOT_FOUND"
    assert unknown["userErrors"] == [
        {"field": ["input", "id"], "message": "Return does not exist.", "code": "NOT_FOUND"}
    ]
    assert [h.topic for h in hooks(store, capture, shop)] == ["returns/request", "returns/approve"]


def test_refund_over_what_was_paid_is_refused(delivered, store, capture):
    shop, order_gid, api = delivered
    ret = _request(api, order_gid, _returnable(api, order_gid)[:1])["return"]
    api.execute(APPROVE, {"input": {"id": ret["id"]}})
    (transaction,) = api.execute(ORDER, {"id": order_gid})["order"]["transactions"]

    refused = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "financialTransfer": {
                    "issueRefund": {
                        "orderTransactions": [
                            {
                                "parentId": transaction["id"],
                                "transactionAmount": {"amount": "100000", "currencyCode": "USD"},
                            }
                        ]
                    }
                },
            }
        },
    )["returnProcess"]

    assert refused["userErrors"][0]["code"] == "INVALID"
    assert [h.topic for h in hooks(store, capture, shop)] == ["returns/request", "returns/approve"]


def test_store_credit_settles_without_a_refund_transaction(delivered, store, capture):
    shop, order_gid, api = delivered
    ret = _request(api, order_gid, _returnable(api, order_gid)[:1])["return"]
    api.execute(APPROVE, {"input": {"id": ret["id"]}})
    (transaction,) = api.execute(ORDER, {"id": order_gid})["order"]["transactions"]
    hooks(store, capture, shop)

    processed = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "financialTransfer": {
                    "issueRefund": {
                        "orderTransactions": [],
                        "refundMethods": [
                            {
                                "storeCreditRefund": {
                                    "amount": {"amount": "5.00", "currencyCode": "USD"}
                                }
                            }
                        ],
                    }
                },
            }
        },
    )["returnProcess"]

    assert processed["return"]["status"] == "CLOSED"
    sent = hooks(store, capture, shop)
    refund = next(h for h in sent if h.topic == "refunds/create")
    assert refund.payload["transactions"] == []
    assert transaction["kind"] == "SALE"

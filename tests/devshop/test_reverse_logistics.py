"""Reverse logistics through the Admin GraphQL API over HTTP: a return label staged with
stagedUploadsCreate and uploaded to the target, reverseDeliveryCreateWithShipping
(reverse_deliveries/attach_deliverable), reverseDeliveryShippingUpdate,
reverseFulfillmentOrderDispose and returnProcess dispositions
(reverse_fulfillment_orders/dispose), and userErrors that change nothing."""

import pytest
import requests

from shopapp.admin_api.client import AdminApiClient
from tests.devshop.capture_server import CaptureServer
from tests.devshop.simulation_support import capture_store, fixture_keys, hooks, new_shop, quiet

SHIPPED = """
query($id: ID!) { order(id: $id) { fulfillments(first: 5) {
  location { id }
  fulfillmentLineItems(first: 10) { nodes { id quantity } } } } }"""
CREATE = """
mutation($r: ReturnInput!) {
  returnCreate(returnInput: $r) {
    return { id returnLineItems(first: 5) { nodes { id } }
      reverseFulfillmentOrders(first: 2) { nodes { id
        lineItems(first: 5) { nodes { id totalQuantity } } } } }
    userErrors { field message code } } }"""
STAGE = """
mutation($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message } } }"""
DELIVER = """
mutation($rfo: ID!, $lines: [ReverseDeliveryLineItemInput!]!,
         $tracking: ReverseDeliveryTrackingInput, $label: ReverseDeliveryLabelInput) {
  reverseDeliveryCreateWithShipping(reverseFulfillmentOrderId: $rfo,
      reverseDeliveryLineItems: $lines, trackingInput: $tracking, labelInput: $label,
      notifyCustomer: true) {
    reverseDelivery { id
      deliverable { ... on ReverseDeliveryShippingDeliverable {
        tracking { carrierName number url } label { publicFileUrl createdAt } } }
      reverseDeliveryLineItems(first: 5) { nodes { id quantity
        reverseFulfillmentOrderLineItem { id } } }
      reverseFulfillmentOrder { id status } }
    userErrors { field message code } } }"""
UPDATE = """
mutation($id: ID!, $tracking: ReverseDeliveryTrackingInput) {
  reverseDeliveryShippingUpdate(reverseDeliveryId: $id, trackingInput: $tracking) {
    reverseDelivery { deliverable { ... on ReverseDeliveryShippingDeliverable {
      tracking { number } } } }
    userErrors { field message code } } }"""
DISPOSE = """
mutation($inputs: [ReverseFulfillmentOrderDisposeInput!]!) {
  reverseFulfillmentOrderDispose(dispositionInputs: $inputs) {
    reverseFulfillmentOrderLineItems { id totalQuantity
      dispositions { type quantity location { id } } }
    userErrors { field message code } } }"""
RFO = """
query($id: ID!) { reverseFulfillmentOrder(id: $id) { id status order { id }
  reverseDeliveries(first: 5) { nodes { id } } } }"""
PROCESS = """
mutation($input: ReturnProcessInput!) {
  returnProcess(input: $input) { return { status } userErrors { field message code } } }"""


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    server = capture_store(tmp_path_factory.mktemp("devshop-reverse"), capture)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def opened(store, capture, settings):
    """An OPEN return of one unit on a delivered order:
    (shop, api, return id, rfo id, rfo line id, location id)."""
    quiet(store)
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = store.admin_url_template
    shop, token = new_shop(store, "rev")
    (order_id,) = store.client.orders_create(shop, count=1, line_items=1, financial_status="PAID")
    (fulfillment,) = store.client.order_fulfil(shop, order_id)
    store.client.fulfillment_advance(shop, fulfillment["id"], "DELIVERED")
    api = AdminApiClient(shop, token)
    order_gid = f"gid://shopify/Order/{order_id}"
    (shipped,) = api.execute(SHIPPED, {"id": order_gid})["order"]["fulfillments"]
    fli = shipped["fulfillmentLineItems"]["nodes"][0]["id"]
    created = api.execute(
        CREATE,
        {
            "r": {
                "orderId": order_gid,
                "returnLineItems": [{"fulfillmentLineItemId": fli, "quantity": 1}],
            }
        },
    )["returnCreate"]
    ret = created["return"]
    (rfo,) = ret["reverseFulfillmentOrders"]["nodes"]
    (line,) = rfo["lineItems"]["nodes"]
    hooks(store, capture, shop)
    return shop, api, ret, rfo["id"], line["id"], shipped["location"]["id"]


def _stage(api, method="POST"):
    staged = api.execute(
        STAGE,
        {
            "input": [
                {
                    "filename": "label.pdf",
                    "mimeType": "application/pdf",
                    "resource": "RETURN_LABEL",
                    "httpMethod": method,
                }
            ]
        },
    )["stagedUploadsCreate"]
    assert staged["userErrors"] == []
    (target,) = staged["stagedTargets"]
    return target


def test_label_upload_and_reverse_delivery(opened, store, capture):
    shop, api, ret, rfo_id, line_id, _ = opened

    # the app stages a label and POSTs the file to the target, as to Shopify's bucket
    target = _stage(api)
    form = {p["name"]: p["value"] for p in target["parameters"]}
    uploaded = requests.post(
        target["url"],
        data=form,
        files={"file": ("label.pdf", b"%PDF-1.4 label", "application/pdf")},
        timeout=10,
    )
    assert uploaded.status_code == 201

    created = api.execute(
        DELIVER,
        {
            "rfo": rfo_id,
            "lines": [],
            "tracking": {
                "number": "1Z999AA10123456784",
                "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
            },
            "label": {"fileUrl": target["resourceUrl"]},
        },
    )["reverseDeliveryCreateWithShipping"]

    assert created["userErrors"] == []
    delivery = created["reverseDelivery"]
    assert delivery["id"].startswith("gid://shopify/ReverseDelivery/")
    deliverable = delivery["deliverable"]
    assert deliverable["tracking"] == {
        "carrierName": "UPS",
        "number": "1Z999AA10123456784",
        "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    }
    label_url = deliverable["label"]["publicFileUrl"]
    assert requests.get(label_url, timeout=10).content == b"%PDF-1.4 label"
    (delivery_line,) = delivery["reverseDeliveryLineItems"]["nodes"]
    assert delivery_line["quantity"] == 1
    assert delivery_line["reverseFulfillmentOrderLineItem"]["id"] == line_id
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "reverse_deliveries/attach_deliverable"
    assert fixture_keys("reverse_deliveries__attach_deliverable") <= set(hook.payload)
    assert hook.payload["admin_graphql_api_id"] == delivery["id"]
    assert hook.payload["return"]["admin_graphql_api_id"] == ret["id"]
    assert hook.payload["shipping_deliverable"]["tracking"] == {
        "carrier_name": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    }
    assert hook.payload["shipping_deliverable"]["label"]["public_file_url"] == label_url
    assert hook.payload["shipping_deliverable"]["label"]["created_at"]
    rfo = api.execute(RFO, {"id": rfo_id})["reverseFulfillmentOrder"]
    assert rfo["reverseDeliveries"]["nodes"] == [{"id": delivery["id"]}]

    # new tracking later: the deliverable is attached again
    updated = api.execute(UPDATE, {"id": delivery["id"], "tracking": {"number": "NEW123"}})[
        "reverseDeliveryShippingUpdate"
    ]
    assert updated["reverseDelivery"]["deliverable"]["tracking"]["number"] == "NEW123"
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "reverse_deliveries/attach_deliverable"
    assert hook.payload["shipping_deliverable"]["tracking"]["tracking_number"] == "NEW123"


def test_put_upload_and_label_errors(opened, store, capture):
    shop, api, _, rfo_id, line_id, _ = opened
    target = _stage(api, "PUT")

    # a label staged but never uploaded, a staged URL that does not exist
    not_uploaded = api.execute(
        DELIVER, {"rfo": rfo_id, "lines": [], "label": {"fileUrl": target["resourceUrl"]}}
    )["reverseDeliveryCreateWithShipping"]
    unknown = api.execute(
        DELIVER,
        {
            "rfo": rfo_id,
            "lines": [],
            "label": {"fileUrl": target["url"].rsplit("/", 1)[0] + "/nope/label.pdf"},
        },
    )["reverseDeliveryCreateWithShipping"]
    too_many = api.execute(
        DELIVER,
        {"rfo": rfo_id, "lines": [{"reverseFulfillmentOrderLineItemId": line_id, "quantity": 3}]},
    )["reverseDeliveryCreateWithShipping"]
    no_rfo = api.execute(DELIVER, {"rfo": "gid://shopify/ReverseFulfillmentOrder/1", "lines": []})[
        "reverseDeliveryCreateWithShipping"
    ]

    assert not_uploaded["userErrors"] == [
        {
            "field": ["labelInput", "fileUrl"],
            "message": "The label file hasn't been uploaded.",
            "code": "INVALID",
        }
    ]
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    assert too_many["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert no_rfo["userErrors"][0]["code"] == "NOT_FOUND"
    assert hooks(store, capture, shop) == []
    assert (
        api.execute(RFO, {"id": rfo_id})["reverseFulfillmentOrder"]["reverseDeliveries"]["nodes"]
        == []
    )

    put = requests.put(
        target["url"], data=b"label", headers={"Content-Type": "application/pdf"}, timeout=10
    )
    assert put.status_code == 200
    attached = api.execute(
        DELIVER, {"rfo": rfo_id, "lines": [], "label": {"fileUrl": target["resourceUrl"]}}
    )["reverseDeliveryCreateWithShipping"]
    assert attached["userErrors"] == []
    assert [h.topic for h in hooks(store, capture, shop)] == [
        "reverse_deliveries/attach_deliverable"
    ]


def test_dispose_restocks_and_closes_the_reverse_fulfillment_order(opened, store, capture):
    shop, api, _, rfo_id, line_id, location = opened
    api.execute(DELIVER, {"rfo": rfo_id, "lines": [], "tracking": {"number": "RB123456785GB"}})
    hooks(store, capture, shop)

    disposed = api.execute(
        DISPOSE,
        {
            "inputs": [
                {
                    "reverseFulfillmentOrderLineItemId": line_id,
                    "quantity": 1,
                    "dispositionType": "RESTOCKED",
                    "locationId": location,
                }
            ]
        },
    )["reverseFulfillmentOrderDispose"]

    assert disposed["userErrors"] == []
    (line,) = disposed["reverseFulfillmentOrderLineItems"]
    assert line["id"] == line_id
    assert line["dispositions"] == [
        {"type": "RESTOCKED", "quantity": 1, "location": {"id": location}}
    ]
    assert api.execute(RFO, {"id": rfo_id})["reverseFulfillmentOrder"]["status"] == "CLOSED"
    (hook,) = hooks(store, capture, shop)
    assert hook.topic == "reverse_fulfillment_orders/dispose"
    assert fixture_keys("reverse_fulfillment_orders__dispose") <= set(hook.payload)
    assert hook.payload["admin_graphql_api_id"] == rfo_id
    assert hook.payload["total_dispositions"] == 1
    (disposition,) = hook.payload["dispositions"]
    assert disposition["type"] == "restocked"
    assert disposition["quantity"] == 1
    assert disposition["location"]["admin_graphql_api_id"] == location
    assert disposition["reverse_fulfillment_order_line_item"]["admin_graphql_api_id"] == line_id
    assert disposition["reverse_delivery_line_item"]["admin_graphql_api_id"].startswith(
        "gid://shopify/ReverseDeliveryLineItem/"
    )


def test_dispose_user_errors_change_nothing(opened, store, capture):
    shop, api, _, rfo_id, line_id, location = opened

    def dispose(**row):
        base = {"reverseFulfillmentOrderLineItemId": line_id, "quantity": 1}
        return api.execute(DISPOSE, {"inputs": [{**base, **row}]})["reverseFulfillmentOrderDispose"]

    no_location = dispose(dispositionType="RESTOCKED")
    wrong_location = dispose(dispositionType="RESTOCKED", locationId="gid://shopify/Location/1")
    too_many = dispose(dispositionType="NOT_RESTOCKED", quantity=2)
    unknown = dispose(
        dispositionType="MISSING",
        reverseFulfillmentOrderLineItemId="gid://shopify/ReverseFulfillmentOrderLineItem/1",
    )

    assert no_location["userErrors"][0]["field"] == ["dispositionInputs", "0", "locationId"]
    assert no_location["userErrors"][0]["code"] == "BLANK"
    assert wrong_location["userErrors"][0]["code"] == "NOT_FOUND"
    assert too_many["userErrors"][0]["code"] == "LESS_THAN_OR_EQUAL_TO"
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    assert hooks(store, capture, shop) == []
    assert api.execute(RFO, {"id": rfo_id})["reverseFulfillmentOrder"]["status"] == "OPEN"

    # once fully disposed, nothing is left to dispose
    assert dispose(dispositionType="PROCESSING_REQUIRED")["userErrors"] == []
    again = dispose(dispositionType="MISSING")
    assert again["userErrors"][0]["code"] == "INVALID_STATE"


def test_return_process_dispositions_fire_dispose_in_the_same_action(opened, store, capture):
    shop, api, ret, rfo_id, line_id, location = opened
    (return_line,) = ret["returnLineItems"]["nodes"]

    processed = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": ret["id"],
                "returnLineItems": [
                    {
                        "id": return_line["id"],
                        "quantity": 1,
                        "dispositions": [
                            {
                                "reverseFulfillmentOrderLineItemId": line_id,
                                "quantity": 1,
                                "dispositionType": "RESTOCKED",
                                "locationId": location,
                            }
                        ],
                    }
                ],
            }
        },
    )["returnProcess"]

    assert processed["userErrors"] == []
    assert processed["return"]["status"] == "CLOSED"
    sent = hooks(store, capture, shop)
    assert [h.topic for h in sent] == [
        "returns/process",
        "returns/close",
        "reverse_fulfillment_orders/dispose",
    ]
    assert len({h.event_id for h in sent}) == 1
    assert sent[2].payload["dispositions"][0]["reverse_delivery_line_item"] is None

"""Control API: a product's tags, type and picture edited as in the merchant's admin (read back
through the Admin API, the picture from the devshop's stand-in CDN), and a return's money as
the merchant's admin shows it (what returnProcess refunded, issued as store credit), which the
returns tests check instead of what was sent."""

import io
import uuid
from decimal import Decimal

import pytest
import requests
from PIL import Image

from shopapp.admin_api.client import AdminApiClient

PRODUCT = "query($id: ID!) { product(id: $id) { id tags productType } }"
ORDER = """
query($id: ID!) { order(id: $id) {
  transactions(first: 5) { id kind }
  lineItems(first: 5) { nodes { product { id } } }
  fulfillments(first: 5) { fulfillmentLineItems(first: 5) { nodes { id quantity } } }
} }"""
REQUEST = """
mutation($input: ReturnRequestInput!) {
  returnRequest(input: $input) {
    return { id returnLineItems(first: 5) { nodes { id quantity } } }
    userErrors { message } } }"""
PROCESS = """
mutation($input: ReturnProcessInput!) {
  returnProcess(input: $input) { return { id status } userErrors { message } } }"""


def installed(devshop) -> tuple[str, AdminApiClient]:
    domain = f"ctl-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    token = devshop.client.app_install_with_token(domain)["access_token"]
    return domain, AdminApiClient(domain, token)


def control(devshop, path: str, **kw) -> requests.Response:
    method = "POST" if "json" in kw else "GET"
    return requests.request(method, f"{devshop.base_url}/_devshop/{path}", timeout=10, **kw)


def test_product_tags_and_type_are_edited_as_the_admin_api_reads_them(devshop):
    # given an order's product
    domain, api = installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, line_items=1)
    product_gid = api.execute(ORDER, {"id": f"gid://shopify/Order/{order_id}"})["order"][
        "lineItems"
    ]["nodes"][0]["product"]["id"]
    product_id = int(product_gid.rsplit("/", 1)[-1])

    # when the merchant tags it final sale and changes its type, then only its tags
    answer = devshop.client.product_update(
        domain, product_id, tags=" Summer ,Final-Sale, ", product_type=" Underwear "
    )
    first = api.execute(PRODUCT, {"id": product_gid})["product"]
    devshop.client.product_update(domain, product_id, tags="")
    second = api.execute(PRODUCT, {"id": product_gid})["product"]

    # then the Admin API reads what the merchant set, and what they left alone stays
    assert answer == {
        "id": product_id,
        "tags": ["Summer", "Final-Sale"],
        "product_type": "Underwear",
        "has_image": True,
        "image_url": "",
    }
    assert (first["tags"], first["productType"]) == (["Summer", "Final-Sale"], "Underwear")
    assert (second["tags"], second["productType"]) == ([], "Underwear")


def test_product_edit_is_refused_for_another_shop_or_without_fields(devshop):
    domain, api = installed(devshop)
    other, _ = installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, line_items=1)
    product_gid = api.execute(ORDER, {"id": f"gid://shopify/Order/{order_id}"})["order"][
        "lineItems"
    ]["nodes"][0]["product"]["id"]
    product_id = int(product_gid.rsplit("/", 1)[-1])
    before = api.execute(PRODUCT, {"id": product_gid})["product"]

    theirs = control(devshop, f"shops/{other}/products/{product_id}", json={"tags": "x"})
    empty = control(devshop, f"shops/{domain}/products/{product_id}", json={})
    not_text = control(devshop, f"shops/{domain}/products/{product_id}", json={"tags": ["x"]})

    assert theirs.status_code == 404
    assert (empty.status_code, not_text.status_code) == (400, 400)
    assert api.execute(PRODUCT, {"id": product_gid})["product"] == before


IMAGE = """
query($id: ID!) { order(id: $id) { lineItems(first: 5) { nodes {
  product { id } image { altText width height url(transform: {maxWidth: 96, maxHeight: 128}) }
} } } }"""


def _line_image(api, order_id: int) -> dict:
    node = api.execute(IMAGE, {"id": f"gid://shopify/Order/{order_id}"})["order"]["lineItems"][
        "nodes"
    ][0]
    return node


def test_a_line_items_picture_is_the_products_served_as_shopifys_cdn_serves_it(devshop):
    # given an order's product
    domain, api = installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, line_items=1)
    node = _line_image(api, order_id)
    product_id = int(node["product"]["id"].rsplit("/", 1)[-1])

    # then its line item's image is the product's, transformed to fit the box asked for
    image = node["image"]
    assert (image["width"], image["height"]) == (800, 800)
    assert image["altText"]
    url = f"{devshop.base_url}/cdn/products/{product_id}.png?width=96&height=96"
    assert image["url"] == url
    picture = requests.get(url, timeout=10)
    assert picture.status_code == 200
    assert picture.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size == (96, 96)

    # when the merchant removes the picture, then points it at their own CDN
    devshop.client.product_update(domain, product_id, has_image=False)
    removed = _line_image(api, order_id)["image"]
    gone = requests.get(url, timeout=10)
    cdn = "https://cdn.shopify.example/s/files/1/jacket.png"
    devshop.client.product_update(domain, product_id, has_image=True, image_url=cdn)
    elsewhere = _line_image(api, order_id)["image"]

    # then the Admin API has no image, then that one
    assert removed is None
    assert gone.status_code == 404
    assert elsewhere["url"] == cdn


@pytest.mark.parametrize(
    "body",
    [
        {"has_image": "no"},
        {"image_url": "javascript:alert(1)"},
        {"image_url": ["https://cdn.example/a.png"]},
    ],
)
def test_a_picture_edit_that_is_not_one_is_refused(devshop, body):
    domain, api = installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, line_items=1)
    before = _line_image(api, order_id)
    product_id = int(before["product"]["id"].rsplit("/", 1)[-1])

    answer = control(devshop, f"shops/{domain}/products/{product_id}", json=body)

    assert answer.status_code == 400
    assert _line_image(api, order_id) == before


def test_the_cdn_serves_no_picture_it_does_not_have(devshop):
    assert requests.get(f"{devshop.base_url}/cdn/products/1.png", timeout=10).status_code == 404
    not_an_id = requests.get(f"{devshop.base_url}/cdn/products/x.png", timeout=10)
    assert not_an_id.status_code == 404


@pytest.mark.parametrize("settle", ["refund", "store credit"])
def test_return_shows_the_money_return_process_moved(devshop, settle):
    # given a paid order shipped, and one unit requested back and approved
    domain, api = installed(devshop)
    (order_id,) = devshop.client.orders_create(
        domain, line_items=1, financial_status="PAID", customer_locale="en"
    )
    devshop.client.order_fulfil(domain, order_id)
    order = api.execute(ORDER, {"id": f"gid://shopify/Order/{order_id}"})["order"]
    (fli,) = order["fulfillments"][0]["fulfillmentLineItems"]["nodes"]
    requested = api.execute(
        REQUEST,
        {
            "input": {
                "orderId": f"gid://shopify/Order/{order_id}",
                "returnLineItems": [
                    {"fulfillmentLineItemId": fli["id"], "quantity": 1, "returnReason": "OTHER"}
                ],
            }
        },
    )["returnRequest"]
    return_gid = requested["return"]["id"]
    return_id = int(return_gid.rsplit("/", 1)[-1])
    devshop.client.return_action(domain, return_id, "approve")
    before = devshop.client.return_get(domain, return_id)

    # when the unit is processed and 1.50 paid back
    amount = {"amount": "1.50", "currencyCode": "USD"}
    if settle == "refund":
        (payment,) = order["transactions"]
        transfer = {"orderTransactions": [{"transactionAmount": amount, "parentId": payment["id"]}]}
    else:
        transfer = {
            "orderTransactions": [],
            "refundMethods": [{"storeCreditRefund": {"amount": amount}}],
        }
    line = requested["return"]["returnLineItems"]["nodes"][0]
    processed = api.execute(
        PROCESS,
        {
            "input": {
                "returnId": return_gid,
                "returnLineItems": [{"id": line["id"], "quantity": 1}],
                "financialTransfer": {"issueRefund": transfer},
            }
        },
    )["returnProcess"]
    assert processed["userErrors"] == []

    # then the control API shows where the money went
    after = devshop.client.return_get(domain, return_id)
    assert before == {
        "id": return_id,
        "name": after["name"],
        "status": "OPEN",
        "decline": None,
        "refunded_amount": "0.00",
        "store_credit_amount": "0.00",
        "exchange_amount_due": "0.00",
    }
    expected = {"refund": ("1.50", "0.00"), "store credit": ("0.00", "1.50")}[settle]
    assert (after["status"], after["refunded_amount"], after["store_credit_amount"]) == (
        "CLOSED",
        *expected,
    )
    assert Decimal(after["exchange_amount_due"]) == 0


def test_return_shows_the_decline_and_only_to_its_shop(devshop):
    domain, api = installed(devshop)
    other, _ = installed(devshop)
    (order_id,) = devshop.client.orders_create(domain, line_items=1)
    devshop.client.order_fulfil(domain, order_id)
    order = api.execute(ORDER, {"id": f"gid://shopify/Order/{order_id}"})["order"]
    (fli,) = order["fulfillments"][0]["fulfillmentLineItems"]["nodes"]
    return_gid = api.execute(
        REQUEST,
        {
            "input": {
                "orderId": f"gid://shopify/Order/{order_id}",
                "returnLineItems": [
                    {"fulfillmentLineItemId": fli["id"], "quantity": 1, "returnReason": "OTHER"}
                ],
            }
        },
    )["returnRequest"]["return"]["id"]
    return_id = int(return_gid.rsplit("/", 1)[-1])

    devshop.client.return_action(
        domain, return_id, "decline", reason="FINAL_SALE", note="Marked final sale"
    )

    found = devshop.client.return_get(domain, return_id)
    assert (found["status"], found["decline"]) == (
        "DECLINED",
        {"reason": "FINAL_SALE", "note": "Marked final sale"},
    )
    assert control(devshop, f"shops/{other}/returns/{return_id}").status_code == 404

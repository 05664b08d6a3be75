"""The returns flow against the real devshop over HTTP: a store with the app installed, a
delivered order mirrored by the app's own reconciliation jobs, and Shopify's webhooks taken
from the devshop (as it sent them, signed) and posted to the app's /webhooks/.

    devshop (session server) ── webhooks ──▶ CaptureServer ── test ──▶ Django /webhooks/ ──▶ RQ
         ▲
         └── Admin GraphQL ── the app's services and jobs
"""

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import django_rq
from django.utils import timezone

from shopapp.admin_api.client import AdminApiClient
from shopapp.auth.tokens import shop_tokens_assign
from shopapp.models import Order, Shop
from shopapp.orders.jobs import orders_reconcile_job
from tests.devshop.capture_server import CaptureServer
from tracking.jobs import shipments_reconcile_job

RETURN_TOPICS = [
    "returns/request",
    "returns/approve",
    "returns/decline",
    "returns/update",
    "returns/cancel",
    "returns/close",
    "returns/reopen",
    "returns/process",
    "reverse_deliveries/attach_deliverable",
    "reverse_fulfillment_orders/dispose",
    "refunds/create",
]

RETURN_STATE = """
query($id: ID!) { return(id: $id) {
  id name status
  order { displayFinancialStatus totalOutstandingSet { shopMoney { amount } } }
  returnLineItems(first: 20) { nodes { quantity processedQuantity } }
  exchangeLineItems(first: 20) { nodes { id quantity processedQuantity variantId } }
  reverseFulfillmentOrders(first: 2) { nodes { id status
    lineItems(first: 20) { nodes { id totalQuantity dispositions { quantity type } } }
    reverseDeliveries(first: 2) { nodes { id deliverable {
      ... on ReverseDeliveryShippingDeliverable {
        label { publicFileUrl } tracking { number url } } } } } } }
} }"""

ORDER_LINES = """
query($id: ID!) { order(id: $id) {
  lineItems(first: 20) { nodes { id quantity variant { id price } } } } }"""

DISPOSE = """
mutation($inputs: [ReverseFulfillmentOrderDisposeInput!]!) {
  reverseFulfillmentOrderDispose(dispositionInputs: $inputs) {
    reverseFulfillmentOrderLineItems { id } userErrors { field message code } } }"""


@dataclass
class Store:
    """One shop on the devshop with the app installed, and one delivered order."""

    devshop: Any
    capture: CaptureServer
    shop: Shop
    api: AdminApiClient
    order: Order

    @property
    def domain(self) -> str:
        return self.shop.myshopify_domain

    def return_state(self, shopify_return_id: int) -> dict[str, Any]:
        gid = f"gid://shopify/Return/{shopify_return_id}"
        return self.api.execute(RETURN_STATE, {"id": gid})["return"]

    def order_returns(self) -> list[dict[str, Any]]:
        return self.devshop.client.order_state(self.domain, self.order.shopify_id)["returns"]

    def variant_prices(self) -> dict[int, tuple[str, str]]:
        """{line item shopify id: (variant gid, price)} of the order in the store."""
        nodes = self.api.execute(
            ORDER_LINES, {"id": f"gid://shopify/Order/{self.order.shopify_id}"}
        )
        return {
            int(n["id"].rsplit("/", 1)[-1]): (n["variant"]["id"], n["variant"]["price"])
            for n in nodes["order"]["lineItems"]["nodes"]
        }


def shop_installed_with_token(devshop, prefix: str) -> tuple[Shop, dict[str, Any]]:
    """A fresh shop on the devshop (unique domain: its server lives for the session) with the
    app installed, and the grant's tokens stored on the app's Shop: (shop, grant)."""
    domain = f"{prefix}-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    grant = devshop.client.app_install_with_token(domain)
    now = timezone.now()
    shop = Shop(myshopify_domain=domain, is_active=True, installed_at=now, currency="USD")
    shop_tokens_assign(
        shop=shop,
        access_token=grant["access_token"],
        access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
        refresh_token=grant["refresh_token"],
        refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
    )
    shop.save()
    return shop, grant


def store_with_delivered_order(devshop, capture: CaptureServer, rq_worker, **order: Any) -> Store:
    """A fresh shop (unique domain: the devshop server lives for the session), the app's token
    stored on its Shop, the returns topics subscribed to the capture server, and one paid
    order shipped and delivered, mirrored here by the reconciliation jobs through RQ. Clothes
    unless ``line_item_product_type`` says otherwise: the flows give size reasons, which the
    submission refuses for a serum or a mug (returns.policy's defaults)."""
    shop, grant = shop_installed_with_token(devshop, "rtn")
    domain = shop.myshopify_domain
    for topic in RETURN_TOPICS:
        devshop.client.webhook_subscription_create(domain, topic, f"{capture.url}/webhooks/")
    (order_id,) = devshop.client.orders_create(
        domain,
        count=1,
        **(
            {"line_items": 2, "financial_status": "PAID", "line_item_product_type": "Apparel"}
            | order
        ),
    )
    for fulfillment in devshop.client.order_fulfil(domain, order_id):
        devshop.client.fulfillment_advance(domain, fulfillment["id"], "DELIVERED")
    queue = django_rq.get_queue("syncs")
    queue.enqueue(orders_reconcile_job, shop.pk)
    rq_worker()
    queue.enqueue(shipments_reconcile_job, shop.pk)
    rq_worker()
    api = AdminApiClient(domain, grant["access_token"])
    return Store(
        devshop=devshop,
        capture=capture,
        shop=shop,
        api=api,
        order=Order.objects.get(shop=shop, shopify_id=order_id),
    )


def deliver(
    store: Store,
    client,
    rq_worker,
    *,
    expect: set[str],
    timeout: float = 15,
    reverse: bool = False,
) -> list[str]:
    """Flush the devshop's deliveries, wait until every topic in ``expect`` reached the capture
    server, post each captured delivery to the app's /webhooks/ with the headers it came with
    (the devshop's own HMAC), in the order sent or ``reverse``d, then run the webhook jobs.
    Returns the topics in the order posted."""
    deadline = time.monotonic() + timeout
    captured = []
    while True:
        store.devshop.client.webhooks_flush()
        with store.capture._lock:
            mine = [
                r
                for r in store.capture.requests
                if r.header("X-Shopify-Shop-Domain") == store.domain
            ]
            store.capture.requests[:] = [r for r in store.capture.requests if r not in mine]
        captured += mine
        seen = {r.header("X-Shopify-Topic") for r in captured}
        if expect <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert expect <= seen, f"expected {expect}, got {seen}"
    if reverse:
        captured.reverse()
    topics = []
    for request in captured:
        headers = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in request.headers
            if name.lower().startswith("x-shopify-")
        }
        response = client.post(
            "/webhooks/", data=request.body, content_type="application/json", **headers
        )
        assert response.status_code == 200, (request.header("X-Shopify-Topic"), response)
        topics.append(request.header("X-Shopify-Topic"))
    rq_worker()
    return topics

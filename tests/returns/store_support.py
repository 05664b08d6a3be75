"""Devshop stores for the returns domain tests, built once per module.

A module's tests share one store on the devshop (the session's server) with the app installed
and a pool of paid, shipped and delivered orders, mirrored into the app by its own
reconciliation services. The store is built once (a few dozen devshop calls); each test then
costs only the calls it makes.

    module setup (committed)             each test (one transaction, rolled back)
    ─────────────────────────            ─────────────────────────────────────────
    devshop: shop, install, orders  ──▶  take an order nobody else used (Shopify keeps what a
    app: Shop, Order, Shipment rows      test did to it), call the app, read the devshop back

What a test changes in the app's database is rolled back; what it changes in the devshop
stays, so a test that sends a return, or changes a product, owns that order or undoes it.

The devshop draws its orders at random (items, quantities, prices, discounts, returning
customers): tests read what the devshop made instead of assuming it, pin the order's language
(``customer_locale="en"``) and payment (``PAID``), and a test that counts a customer's orders
opens a store of its own, whose first order is always a new customer's.
"""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.test import override_settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from returns.models import ReturnRequest
from shopapp.admin_api.client import AdminApiClient
from shopapp.auth.tokens import shop_tokens_assign
from shopapp.models import LineItem, Order, Shop
from shopapp.orders.reconcile import orders_reconcile
from tests.devshop.capture_server import Captured, CaptureServer
from tracking.refresh import shipments_reconcile

ORDER_FACTS = """
query($id: ID!) { order(id: $id) {
  name email
  lineItems(first: 10) { nodes {
    id quantity
    originalUnitPriceSet { shopMoney { amount } }
    totalDiscountSet { shopMoney { amount } }
    product { id tags productType } } }
  fulfillments(first: 5) {
    id createdAt deliveredAt
    fulfillmentLineItems(first: 10) { nodes { id quantity lineItem { id } } } }
} }"""

RETURN_FACTS = """
query($id: ID!) { return(id: $id) {
  id name status decline { reason note }
  returnLineItems(first: 20) { nodes {
    id quantity processedQuantity
    ... on ReturnLineItem { returnReason customerNote fulfillmentLineItem { id lineItem { id } } }
  } }
  reverseFulfillmentOrders(first: 2) { nodes { id
    lineItems(first: 20) { nodes { id totalQuantity dispositions { quantity type } } } } }
  order { displayFinancialStatus }
} }"""

# A return made in Shopify itself (a customer account's self-serve return, or the merchant's
# admin), not by the app.
RETURN_REQUEST = """
mutation($input: ReturnRequestInput!) {
  returnRequest(input: $input) { return { id } userErrors { field message code } } }"""

REVERSE_DELIVERY = """
mutation($rfo: ID!, $tracking: ReverseDeliveryTrackingInput) {
  reverseDeliveryCreateWithShipping(
    reverseFulfillmentOrderId: $rfo, reverseDeliveryLineItems: [], trackingInput: $tracking
  ) { reverseDelivery { id } userErrors { field message code } } }"""

REMOVE_FROM_RETURN = """
mutation($id: ID!, $lines: [ReturnLineItemRemoveFromReturnInput!]) {
  removeFromReturn(returnId: $id, returnLineItems: $lines) {
    return { id } userErrors { field message code } } }"""


def numeric(gid: str) -> int:
    """gid://shopify/Return/123 → 123."""
    return int(gid.rsplit("/", 1)[-1])


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def unit_value(line: LineItem) -> Decimal:
    """What one unit of a mirrored line cost the shopper: its price less its share of the
    line's discount (the devshop draws discounts at random)."""
    return money(line.price - line.total_discount / line.quantity)


@dataclass
class Delivery:
    """One webhook delivery as it left the devshop: the raw body and Shopify's headers."""

    captured: Captured

    @property
    def topic(self) -> str:
        return self.captured.header("X-Shopify-Topic") or ""

    @property
    def triggered_at(self) -> datetime:
        return parse_datetime(self.captured.header("X-Shopify-Triggered-At") or "")

    def post(self, client, **header_overrides: str):
        """POST to the app's /webhooks/ with the headers it came with (the devshop's HMAC
        over the body), or some replaced (e.g. another shop's domain)."""
        headers = {
            name.upper(): value
            for name, value in self.captured.headers
            if name.lower().startswith("x-shopify-")
        }
        headers.update({name.upper(): value for name, value in header_overrides.items()})
        meta = {"HTTP_" + name.replace("-", "_"): value for name, value in headers.items()}
        return client.post(
            "/webhooks/", data=self.captured.body, content_type="application/json", **meta
        )


@dataclass
class DevshopStore:
    """One shop on the devshop with the app installed; ``shop_id`` is the app's Shop row. A
    module may name the orders it made on it (``store.delivered = order_id``)."""

    devshop: Any
    domain: str
    shop_id: int
    api: AdminApiClient
    capture: CaptureServer | None = None
    pool: list[int] = field(default_factory=list)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        devshop: Any,
        *,
        capture: CaptureServer | None = None,
        topics: tuple[str, ...] = (),
        copies: int = 1,
        timezone_name: str = "America/New_York",
    ) -> "DevshopStore":
        """A new shop (unique domain: the devshop lives for the session) with the app's token
        stored on its Shop. ``topics`` are subscribed to the capture server ``copies`` times
        (each subscription gets its own delivery of every event, as Shopify sends them)."""
        # The previous module may have left the knobs anywhere: tokens that live an hour, no
        # forced failures, the plan's bucket.
        devshop.client.knobs_set(
            access_token_ttl=3600,
            refresh_token_ttl=90 * 86400,
            refresh_retry_window=30,
            auto_approve=True,
        )
        devshop.client.admin_api_fail_next(0)
        devshop.client.graphql_throttle_set()
        domain = f"rdm-{uuid.uuid4().hex[:10]}.myshopify.com"
        devshop.client.shop_create(domain, iana_timezone=timezone_name)
        grant = devshop.client.app_install_with_token(domain)
        now = timezone.now()
        shop = Shop(
            myshopify_domain=domain,
            is_active=True,
            installed_at=now,
            currency="USD",
            timezone=timezone_name,
        )
        shop_tokens_assign(
            shop=shop,
            access_token=grant["access_token"],
            access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
            refresh_token=grant["refresh_token"],
            refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
        )
        shop.save()
        for topic in topics:
            for copy in range(copies):
                uri = f"{capture.url}/webhooks/{copy}"
                devshop.client.webhook_subscription_create(domain, topic, uri)
        # The test's own Admin API client, to read what Shopify holds (its URL is fixed here).
        with override_settings(SHOPIFY_ADMIN_URL_TEMPLATE=devshop.admin_url_template):
            api = AdminApiClient(domain, grant["access_token"])
        return cls(devshop=devshop, domain=domain, shop_id=shop.pk, api=api, capture=capture)

    @contextmanager
    def pointed(self) -> Iterator[None]:
        """The app's Admin API calls go to the devshop (the ``devshop`` fixture does the same
        for a test; module setup has no ``settings`` fixture)."""
        with override_settings(SHOPIFY_ADMIN_URL_TEMPLATE=self.devshop.admin_url_template):
            yield

    def orders_create(
        self, count: int = 1, *, fulfil: bool = True, to: str | None = "DELIVERED", **overrides
    ) -> list[int]:
        """``count`` paid orders of two items in English, shipped in one parcel each and
        scanned up to ``to`` (None: shipped, no scan). Not mirrored yet: see ``mirror``.
        Clothes unless ``line_item_product_type`` says otherwise: the tests give size reasons,
        which the submission refuses for a serum or a mug (returns.policy's defaults)."""
        values = {
            "line_items": 2,
            "financial_status": "PAID",
            "customer_locale": "en",
            "line_item_product_type": "Apparel",
        }
        ids = self.devshop.client.orders_create(self.domain, count=count, **(values | overrides))
        for order_id in ids if fulfil else []:
            for fulfillment in self.devshop.client.order_fulfil(self.domain, order_id):
                if to:
                    self.devshop.client.fulfillment_advance(self.domain, fulfillment["id"], to)
        return ids

    def mirror(self) -> None:
        """The app's own reconciliation: orders updated since the last run, then the
        shipments of fulfilled orders that have none here yet."""
        with self.pointed():
            orders_reconcile(shop=self.shop())
            shipments_reconcile(shop=self.shop())

    def pool_fill(self, count: int, **order: Any) -> None:
        """Orders (delivered unless ``order`` says otherwise, see ``orders_create``) for tests
        that change what Shopify holds (``take``)."""
        self.pool += self.orders_create(count, **order)

    def take(self) -> Order:
        """An order of the pool no other test has used, as the app mirrors it."""
        if not self.pool:
            raise AssertionError("the module's order pool is empty: make it larger")
        return self.order(self.pool.pop(0))

    def close(self) -> None:
        """Delete the module's rows (committed outside any test's transaction)."""
        ReturnRequest.objects.filter(shop_id=self.shop_id).delete()
        Shop.objects.filter(pk=self.shop_id).delete()

    # -- reading the app -----------------------------------------------------------------------

    def shop(self) -> Shop:
        """The Shop row as the database holds it now (never a copy a test left changed)."""
        return Shop.objects.get(pk=self.shop_id)

    def order(self, order_id: int) -> Order:
        return Order.objects.get(shop_id=self.shop_id, shopify_id=order_id)

    # -- reading and changing the devshop ------------------------------------------------------

    def order_facts(self, order_id: int) -> dict[str, Any]:
        """The order as Shopify holds it: lines (price, discount, product) and fulfillments."""
        return self.api.execute(ORDER_FACTS, {"id": f"gid://shopify/Order/{order_id}"})["order"]

    def shipped_lines(self, order_id: int) -> list[tuple[str, int]]:
        """[(fulfillment line item gid, units)] of the order's one parcel, in line order."""
        (parcel,) = self.order_facts(order_id)["fulfillments"]
        nodes = sorted(
            parcel["fulfillmentLineItems"]["nodes"], key=lambda n: numeric(n["lineItem"]["id"])
        )
        return [(n["id"], n["quantity"]) for n in nodes]

    def order_returns(self, order_id: int) -> list[dict[str, Any]]:
        """[{"id", "status"}] of the order's returns in Shopify, oldest first."""
        return self.devshop.client.order_state(self.domain, order_id)["returns"]

    def return_facts(self, return_id: int) -> dict[str, Any]:
        gid = f"gid://shopify/Return/{return_id}"
        return self.api.execute(RETURN_FACTS, {"id": gid})["return"]

    def return_money(self, return_id: int) -> dict[str, Decimal]:
        """What Shopify paid back for a return: refunded to the payment, and store credit."""
        found = self.devshop.client.return_get(self.domain, return_id)
        return {
            "refunded": Decimal(found["refunded_amount"]),
            "store_credit": Decimal(found["store_credit_amount"]),
        }

    def return_request_in_shopify(
        self, lines: list[tuple[str, int]], *, order_id: int, reason: str = "OTHER"
    ) -> int:
        """A return made in Shopify, not by the app: [(fulfillment line item gid, units)]."""
        answer = self.api.execute(
            RETURN_REQUEST,
            {
                "input": {
                    "orderId": f"gid://shopify/Order/{order_id}",
                    "returnLineItems": [
                        {"fulfillmentLineItemId": gid, "quantity": units, "returnReason": reason}
                        for gid, units in lines
                    ],
                }
            },
        )["returnRequest"]
        assert answer["userErrors"] == [], answer["userErrors"]
        return numeric(answer["return"]["id"])

    def merchant(self, return_id: int, action: str, **fields: Any) -> dict[str, Any]:
        """The merchant acting in Shopify's admin (approve, decline, close, reopen, …)."""
        return self.devshop.client.return_action(self.domain, return_id, action, **fields)

    def mutate(self, document: str, variables: dict[str, Any], name: str) -> dict[str, Any]:
        """An Admin API mutation made in Shopify (not by the app); its userErrors must be []."""
        answer = self.api.execute(document, variables)[name]
        assert answer["userErrors"] == [], answer["userErrors"]
        return answer

    # -- webhooks ------------------------------------------------------------------------------

    def inbox_drain(self) -> None:
        """Forget what this shop's subscriptions received so far (earlier tests' events)."""
        self.devshop.client.webhooks_flush()
        with self.capture._lock:
            self.capture.requests[:] = [
                r for r in self.capture.requests if r.header("X-Shopify-Shop-Domain") != self.domain
            ]

    def inbox_collect(self, expect: dict[str, int], timeout: float = 15) -> list[Delivery]:
        """Deliver what the devshop has due until this shop's subscriptions received at least
        ``expect[topic]`` deliveries of each topic; every delivery received, in arrival order."""
        deadline = time.monotonic() + timeout
        received: list[Delivery] = []
        while True:
            self.devshop.client.webhooks_flush()
            with self.capture._lock:
                mine = [
                    r
                    for r in self.capture.requests
                    if r.header("X-Shopify-Shop-Domain") == self.domain
                ]
                self.capture.requests[:] = [r for r in self.capture.requests if r not in mine]
            received += [Delivery(r) for r in mine]
            counts = {t: sum(d.topic == t for d in received) for t in expect}
            if all(counts[t] >= n for t, n in expect.items()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert all(counts[t] >= n for t, n in expect.items()), (expect, counts)
        return received

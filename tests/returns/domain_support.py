"""Factories for the returns domain tests: a shop, a delivered order, and a fake Shopify
answering eligibility and the return mutations (the devshop flow tests use the real one)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from returns import shopify
from shopapp.auth.tokens import token_encrypt
from shopapp.models import LineItem, Order, Shop
from tracking.models import Shipment, ShipmentLineItem

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def make_shop(domain: str = "alpha.myshopify.com") -> Shop:
    return Shop.objects.create(
        myshopify_domain=domain,
        is_active=True,
        currency="EUR",
        access_token_encrypted=token_encrypt(plain="shpat_test"),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )


def make_order(shop: Shop, number: int = 1001, **fields) -> Order:
    values = {
        "shopify_id": 7_000_000 + number,
        "name": f"#{number}",
        "email": "ada@example.com",
        "customer_id": 42,
        "currency": "EUR",
        "total_price": Decimal("100.00"),
        "shopify_created_at": NOW - timedelta(days=20),
        "processed_at": NOW - timedelta(days=20),
    }
    values.update(fields)
    order = Order.objects.create(shop=shop, **values)
    for index, (price, discount, product) in enumerate(
        [(Decimal("40.00"), Decimal("0"), 1), (Decimal("30.00"), Decimal("0"), 2)]
    ):
        LineItem.objects.create(
            shop=shop,
            order=order,
            shopify_id=order.shopify_id * 10 + index,
            product_id=product,
            title=f"Item {index}",
            quantity=2,
            current_quantity=2,
            price=price,
            total_discount=discount,
        )
    return order


def ship(order: Order, *, shipped_at: datetime, delivered_at: datetime | None) -> Shipment:
    shipment = Shipment.objects.create(
        shop=order.shop,
        order=order,
        fulfillment_id=order.shopify_id + 5,
        shopify_created_at=shipped_at,
        delivered_at=delivered_at,
    )
    for li in order.line_items.all():
        ShipmentLineItem.objects.create(
            shop=order.shop,
            shipment=shipment,
            line_item_shopify_id=li.shopify_id,
            quantity=li.quantity,
        )
    return shipment


class FakeShopify:
    """Stands in for the Admin API: returnable quantities per line item, product facts, and
    a record of every mutation sent."""

    def __init__(self, monkeypatch, order: Order) -> None:
        self.order = order
        self.returnable = {li.shopify_id: li.quantity for li in order.line_items.all()}
        self.products = {1: ([], "Shirts"), 2: ([], "Shirts")}
        self.calls: list[tuple[str, dict]] = []
        self.product_fetches = 0
        self.fail_with: list[dict] | None = None
        self.next_return_id = 900_001
        monkeypatch.setattr("returns.eligibility.admin_client_for_shop", lambda shop: _Client())
        monkeypatch.setattr("returns.services.admin_client_for_shop", lambda shop: _Client())
        monkeypatch.setattr(shopify, "eligibility_fetch", self.eligibility_fetch)
        monkeypatch.setattr(shopify, "reason_definition_ids", lambda client: {})
        monkeypatch.setattr(shopify, "return_request_send", self.request)
        monkeypatch.setattr(shopify, "return_approve_send", self._status("approve", "OPEN"))
        monkeypatch.setattr(shopify, "return_decline_send", self._status("decline", "DECLINED"))
        monkeypatch.setattr(shopify, "return_cancel_send", self._status("cancel", "CANCELED"))
        monkeypatch.setattr(shopify, "return_close_send", self._status("close", "CLOSED"))
        monkeypatch.setattr(shopify, "return_process_send", self.process)
        monkeypatch.setattr(
            shopify,
            "refund_parent_transaction",
            lambda client, order_gid: "gid://shopify/OrderTransaction/1",
        )

    def eligibility_fetch(self, client, *, order_gid, with_products):
        if with_products:
            self.product_fetches += 1
        lines = self.order.line_items.all()
        return {
            "returnable": {
                li.shopify_id: [(f"gid://shopify/FulfillmentLineItem/{li.shopify_id}", q)]
                for li in lines
                if (q := self.returnable.get(li.shopify_id, 0)) > 0
            },
            "products": {
                li.shopify_id: (li.product_id, *self.products[li.product_id]) for li in lines
            }
            if with_products
            else {},
        }

    def _raise_if_failing(self, name):
        if self.fail_with is not None:
            from shopapp.admin_api.client import UserErrors

            raise UserErrors(name, self.fail_with)

    def request(self, client, *, order_gid, lines, shipping_fee, currency):
        self._raise_if_failing("returnRequest")
        self.calls.append(("request", {"order": order_gid, "lines": lines}))
        rid = self.next_return_id
        self.next_return_id += 1
        return {
            "id": f"gid://shopify/Return/{rid}",
            "name": f"{self.order.name}-R1",
            "status": "REQUESTED",
            "returnLineItems": {
                "nodes": [
                    {
                        "id": f"gid://shopify/ReturnLineItem/{rid}{i}",
                        "fulfillmentLineItem": {"id": line["fulfillmentLineItemId"]},
                    }
                    for i, line in enumerate(lines)
                ]
            },
        }

    def _status(self, name, status):
        def send(client, **kwargs):
            self._raise_if_failing(name)
            self.calls.append((name, kwargs))
            return {"id": kwargs.get("return_gid"), "status": status}

        return send

    def process(self, client, *, process_input):
        self._raise_if_failing("returnProcess")
        self.calls.append(("process", process_input))
        return {"id": process_input["returnId"], "status": "CLOSED"}


class _Client:
    api_version = "2026-10"

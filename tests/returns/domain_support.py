"""Local rows for the returns tests that never call Shopify: a shop the app knows (another
shop, for scoping tests) and an order with fixed prices (refund arithmetic). Everything that
talks to Shopify runs against the devshop (store_support.py)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from shopapp.auth.tokens import token_encrypt
from shopapp.models import LineItem, Order, Shop

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

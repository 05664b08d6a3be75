"""What the merchant reads for a return's status in the queue and on its page: Shopify's
statuses in words, and one this app does not know yet (Shopify adds values) as Shopify
names it, never a blank badge."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from devshop.session_tokens import session_token_mint
from returns.models import ReturnRequest
from shopapp.auth.tokens import token_encrypt
from shopapp.models import Order, Shop

pytestmark = pytest.mark.django_db


def _get(client, shop: Shop, path: str):
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    return client.get(path, {"shop": shop.myshopify_domain, "id_token": token})


@pytest.fixture
def returns_by_status():
    shop = Shop.objects.create(
        myshopify_domain="labels.myshopify.com",
        is_active=True,
        access_token_encrypted=token_encrypt(plain="shpat_labels"),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )
    order = Order.objects.create(
        shop=shop,
        shopify_id=5001,
        name="#5001",
        email="ada@example.com",
        currency="EUR",
        total_price=Decimal("50.00"),
        shopify_created_at=timezone.now(),
    )
    made = {}
    for index, status in enumerate(["REQUESTED", "OPEN", "CLOSED", "IN_REVIEW"]):
        made[status] = ReturnRequest.objects.create(
            shop=shop,
            order=order,
            shopify_return_id=9000 + index,
            name=f"#5001-R{index + 1}",
            status=status,
            sync_state="synced",
            resolution="refund",
            customer_email=order.email,
        )
    return shop, made


def _badges(html: str) -> list[str]:
    import re

    return re.findall(r'<span class="badge[^"]*"[^>]*>([^<]*)</span>', html)


def test_the_queue_names_every_status(client, returns_by_status):
    shop, _made = returns_by_status
    response = _get(client, shop, "/app/returns/")
    assert response.status_code == 200
    assert sorted(_badges(response.content.decode())) == [
        "Approved",
        "Closed",
        "In review",
        "Requested",
    ]


@pytest.mark.parametrize(
    ("status", "label"),
    [("REQUESTED", "Requested"), ("OPEN", "Approved"), ("IN_REVIEW", "In review")],
)
def test_a_returns_page_names_its_status(client, returns_by_status, status, label):
    shop, made = returns_by_status
    response = _get(client, shop, f"/app/returns/{made[status].pk}")
    assert response.status_code == 200
    assert _badges(response.content.decode())[0] == label

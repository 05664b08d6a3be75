"""Storefront pages fetched as Shopify's app proxy forwards them (signed with the app's secret)."""

import time
from urllib.parse import urlencode

from django.conf import settings

from shopapp.models import Shop
from shopapp.proxy import app_proxy_signature


def signed_query(shop: Shop) -> str:
    pairs = [
        ("shop", shop.myshopify_domain),
        ("logged_in_customer_id", ""),
        ("path_prefix", "/apps/postpurchase"),
        ("timestamp", str(int(time.time()))),
    ]
    pairs.append(("signature", app_proxy_signature(pairs, secret=settings.SHOPIFY_API_SECRET)))
    return urlencode(pairs)


def _get(client, shop: Shop, path: str) -> str:
    response = client.get(
        f"/proxy/{path}?{signed_query(shop)}", headers={"X-Forwarded-For": "203.0.113.77"}
    )
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def tracking_html(client, shop: Shop) -> str:
    return _get(client, shop, "track")


def portal_html(client, shop: Shop) -> str:
    return _get(client, shop, "returns")

"""Typed requests for the views that a guard has tied to one shop.

    session_token_required (embedded admin) ─▶ ShopRequest: .shop, .session_token_claims
    app_proxy_required (storefront pages)   ─▶ ProxyRequest: .shop, .logged_in_customer_id

A view declares what its guard gives it (``request: ShopRequest``), so a view that reads
``request.shop`` without a guard is a type error, not a runtime AttributeError.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from shopapp.models import Shop


class ShopScopedRequest(HttpRequest):
    """A request a guard proved to be for ``shop``: every query of the view is scoped by it."""

    shop: Shop


class ShopRequest(ShopScopedRequest):
    """An embedded admin request with a valid session token for ``shop``."""

    session_token_claims: dict[str, Any]


class ProxyRequest(ShopScopedRequest):
    """A storefront request Shopify's app proxy signed for ``shop``; the customer Shopify says
    is logged in (None when none is): the signature is all that proves it."""

    logged_in_customer_id: int | None

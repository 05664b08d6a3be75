"""Signed tokens for the storefront pages: the long-lived link to an order's page, and the
short-lived token every form carries instead of a CSRF cookie.

    notifications ─ order_page_url(shop, order) ─▶ https://<shop>/<prefix>/<subpath>/track/<token>
    shopper ─ GET /apps/<subpath>/track/<token> ─▶ Shopify proxy ─▶ /proxy/track/<token>
            ─ order_id_from_link_token(token, shop=request.shop) ─▶ the order, or None
    the returns portal accepts the same link (?token=) as proof of the order

The platform owns them: the tracking page, the returns portal and the messages all speak of
the same order link, and none of them imports another for it.

Both are ``django.core.signing`` values (HMAC with SECRET_KEY, a salt per purpose, a timestamp
checked against a maximum age). Neither is stored: a link works as long as it is signed, fresh
and names an order of the shop it is opened under.

Why signed tokens and not cookies: Shopify's app proxy strips ``Cookie`` from requests and
``Set-Cookie`` from responses (shopify.dev, "App proxies": "app proxies don't support cookies"),
so Django's session and CSRF cookie never work on these pages.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing

from shopapp.models import Order, Shop
from shopapp.storefront.pages import storefront_proxy_url

logger = logging.getLogger(__name__)

LINK_SALT = "tracking.link.v1"
FORM_SALT = "tracking.form.v1"
# An order's link goes out in shipping emails and is opened weeks later (returns, warranty):
# half a year covers the life of an order for a shopper; TRACKING_LINK_MAX_AGE_DAYS overrides.
DEFAULT_LINK_MAX_AGE_DAYS = 180
# A lookup form left open in a tab over lunch still works; a harvested token dies the same day.
DEFAULT_FORM_MAX_AGE_SECONDS = 2 * 60 * 60


def _link_max_age() -> timedelta:
    return timedelta(
        days=int(getattr(settings, "TRACKING_LINK_MAX_AGE_DAYS", DEFAULT_LINK_MAX_AGE_DAYS))
    )


def _form_max_age_seconds() -> int:
    return int(getattr(settings, "TRACKING_FORM_MAX_AGE_SECONDS", DEFAULT_FORM_MAX_AGE_SECONDS))


def tracking_link_token(order: Order) -> str:
    """The token for ``order``'s tracking link: shop id and order id, signed and dated.

    URL-safe (base64url and ':'), no '/', so it fits one path segment.
    """
    return signing.dumps([order.shop_id, order.pk], salt=LINK_SALT, compress=False)


def order_id_from_link_token(token: str, *, shop: Shop) -> int | None:
    """The order id a link token names, if it is intact, fresh and for ``shop``; else None.

    Tampered, expired and other-shop tokens all answer None: the page says the same thing for
    each, so a link reveals nothing about why it does not work.
    """
    try:
        value = signing.loads(token, salt=LINK_SALT, max_age=_link_max_age())
    except signing.SignatureExpired:
        logger.info("tracking.link.expired", extra={"shop": shop.myshopify_domain})
        return None
    except signing.BadSignature:
        logger.info("tracking.link.bad_signature", extra={"shop": shop.myshopify_domain})
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, int) for part in value)
    ):
        logger.warning("tracking.link.malformed", extra={"shop": shop.myshopify_domain})
        return None
    shop_id, order_id = value
    if shop_id != shop.pk:
        # A genuine link for another shop's order, opened under this shop's storefront.
        logger.warning(
            "tracking.link.other_shop",
            extra={"shop": shop.myshopify_domain, "token_shop_id": shop_id},
        )
        return None
    return order_id


def order_page_url(*, shop: Shop, order: Order) -> str:
    """The storefront URL of ``order``'s tracking page, for emails and SMS:
    ``https://<shop>.myshopify.com/<prefix>/<subpath>/track/<token>``."""
    return storefront_proxy_url(shop, f"track/{tracking_link_token(order)}")


def form_token(shop: Shop) -> str:
    """A token for a form on the page, bound to the shop, valid for a couple of hours."""
    return signing.dumps(shop.pk, salt=FORM_SALT, compress=False)


def form_token_valid(token: str, *, shop: Shop) -> bool:
    """True if ``token`` was issued by ``form_token(shop)`` recently."""
    if not token:
        return False
    try:
        value = signing.loads(token, salt=FORM_SALT, max_age=_form_max_age_seconds())
    except signing.BadSignature:
        # SignatureExpired is a BadSignature: an old tab and a forgery get the same fresh form.
        return False
    return value == shop.pk

"""Signed tokens: the long-lived tracking link per order (for notifications) and the short-lived
form token that stands in for the CSRF cookie the app proxy strips."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from shopapp.storefront.links import (
    LINK_SALT,
    form_token,
    form_token_valid,
    order_id_from_link_token,
    order_page_url,
    tracking_link_token,
)
from tests.tracking.test_page import make_order, make_shop

pytestmark = pytest.mark.django_db


def test_a_link_token_names_its_order_under_its_shop():
    shop = make_shop()
    order = make_order(shop)

    token = tracking_link_token(order)

    assert order_id_from_link_token(token, shop=shop) == order.pk
    # one path segment, nothing to encode
    assert "/" not in token
    assert "?" not in token
    assert "#" not in token


def test_a_link_token_is_refused_under_another_shop():
    shop, other = make_shop(), make_shop()
    order = make_order(shop)

    assert order_id_from_link_token(tracking_link_token(order), shop=other) is None


@pytest.mark.parametrize("where", [0, 5, -1])
def test_a_tampered_link_token_is_refused(where):
    shop = make_shop()
    token = list(tracking_link_token(make_order(shop)))
    token[where] = "A" if token[where] != "A" else "B"

    assert order_id_from_link_token("".join(token), shop=shop) is None


def test_a_token_signed_for_another_purpose_is_refused():
    # given the same payload signed with the form salt, or with the link salt but a wrong shape
    shop = make_shop()
    order = make_order(shop)
    other_purpose = signing.dumps([shop.pk, order.pk], salt="tracking.form.v1")
    wrong_shape = signing.dumps({"shop": shop.pk, "order": order.pk}, salt=LINK_SALT)

    assert order_id_from_link_token(other_purpose, shop=shop) is None
    assert order_id_from_link_token(wrong_shape, shop=shop) is None


def test_a_link_token_expires_after_the_configured_days(settings):
    shop = make_shop()
    token = tracking_link_token(make_order(shop))

    with time_machine.travel(timezone.now() + timedelta(days=179)):
        assert order_id_from_link_token(token, shop=shop) is not None
    with time_machine.travel(timezone.now() + timedelta(days=181)):
        assert order_id_from_link_token(token, shop=shop) is None
    settings.TRACKING_LINK_MAX_AGE_DAYS = 7
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert order_id_from_link_token(token, shop=shop) is None


def test_tracking_page_url_is_the_storefront_proxy_path(settings):
    # given the app proxy's prefix and subpath as configured in shopify.app.toml
    settings.SHOPIFY_APP_PROXY_PREFIX = "apps"
    settings.SHOPIFY_APP_PROXY_SUBPATH = "postpurchase"
    shop = make_shop("maple.myshopify.com")
    order = make_order(shop)

    url = order_page_url(shop=order.shop, order=order)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "maple.myshopify.com")
    prefix, _, token = parts.path.rpartition("/")
    assert prefix == "/apps/postpurchase/track"
    assert order_id_from_link_token(token, shop=shop) == order.pk
    assert not parts.query


def test_form_tokens_are_bound_to_their_shop_and_short_lived():
    shop, other = make_shop(), make_shop()
    token = form_token(shop)

    assert form_token_valid(token, shop=shop)
    assert not form_token_valid(token, shop=other)
    assert not form_token_valid("", shop=shop)
    assert not form_token_valid(token + "x", shop=shop)
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        assert not form_token_valid(token, shop=shop)

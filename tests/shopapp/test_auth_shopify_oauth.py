"""The token endpoint client: retries, final rejections, and tokens kept out of logs."""

import logging

import pytest

from shopapp.auth import shopify_oauth
from shopapp.auth.services import shop_access_token_get, shop_install_from_session_token
from shopapp.auth.shopify_oauth import (
    TokenRequestRejected,
    TokenRequestUnavailable,
    token_refresh,
)
from shopapp.auth.tokens import shop_access_token_read, shop_refresh_token_read

CLOSED_PORT_TEMPLATE = "http://127.0.0.1:9/store/{shop}"


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(shopify_oauth, "BACKOFF_SECONDS", 0)


@pytest.fixture
def installed(devshop, db):
    """A shop installed by token exchange, and its refresh token, on the real devshop."""
    domain = "token-client.myshopify.com"
    devshop.client.shop_create(domain)
    shop = shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )
    yield shop
    devshop.client.knobs_set(oauth_fail_next={"count": 0})


def test_5xx_answers_are_retried_until_shopify_answers(devshop, installed, no_backoff):
    # given a store whose token endpoint fails twice before it answers
    devshop.client.oauth_fail_next(2, status=503)

    # when the app refreshes
    grant = token_refresh(
        shop_domain=installed.myshopify_domain,
        refresh_token=shop_refresh_token_read(shop=installed),
    )

    # then the third try got a new pair of tokens that the store accepts
    assert grant.access_token.startswith("shpat_")
    assert grant.refresh_token.startswith("shprt_")
    assert devshop.client.access_token_valid(installed.myshopify_domain, grant.access_token)


def test_persistent_5xx_gives_unavailable(devshop, installed, no_backoff):
    devshop.client.oauth_fail_next(shopify_oauth.MAX_ATTEMPTS, status=502)
    refresh_token = shop_refresh_token_read(shop=installed)

    with pytest.raises(TokenRequestUnavailable):
        token_refresh(shop_domain=installed.myshopify_domain, refresh_token=refresh_token)

    # every attempt was spent on the failures: the refresh token is still good
    grant = token_refresh(shop_domain=installed.myshopify_domain, refresh_token=refresh_token)
    assert grant.access_token.startswith("shpat_")


def test_network_errors_are_retried_then_give_unavailable(settings, no_backoff, monkeypatch):
    # given a store that cannot be reached at all (nothing listens on the port)
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = CLOSED_PORT_TEMPLATE
    attempts = []
    real_post = shopify_oauth.requests.post

    def counting_post(*args, **kwargs):
        attempts.append(kwargs["timeout"])
        return real_post(*args, **kwargs)

    monkeypatch.setattr(shopify_oauth.requests, "post", counting_post)

    with pytest.raises(TokenRequestUnavailable):
        token_refresh(shop_domain="down.myshopify.com", refresh_token="shprt_old")
    assert attempts == [shopify_oauth.TIMEOUT_SECONDS] * shopify_oauth.MAX_ATTEMPTS


def test_4xx_is_final_and_not_retried(devshop, installed, no_backoff):
    # given a refresh token the store has already rotated away
    old = shop_refresh_token_read(shop=installed)
    devshop.client.knobs_set(refresh_retry_window=0)
    token_refresh(shop_domain=installed.myshopify_domain, refresh_token=old)

    # when it is used again, Shopify's answer is final
    with pytest.raises(TokenRequestRejected) as excinfo:
        token_refresh(shop_domain=installed.myshopify_domain, refresh_token=old)
    assert (excinfo.value.status, excinfo.value.error) == (400, "invalid_grant")


def test_unreachable_refresh_keeps_using_a_still_valid_token(devshop, db, settings, no_backoff):
    # given a token inside the refresh margin but not yet expired
    devshop.client.knobs_set(access_token_ttl=120)
    domain = "deferred.myshopify.com"
    devshop.client.shop_create(domain)
    shop = shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )
    current = shop_access_token_read(shop=shop)
    refresh = shop_refresh_token_read(shop=shop)

    # when Shopify cannot be reached for the refresh
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = CLOSED_PORT_TEMPLATE

    # then the current token is used and nothing is marked
    assert shop_access_token_get(shop=shop) == current
    assert shop.needs_reauth is False
    assert shop_refresh_token_read(shop=shop) == refresh


def test_no_token_reaches_a_log_line(devshop, db, caplog):
    caplog.set_level(logging.DEBUG)
    devshop.client.knobs_set(access_token_ttl=60)
    domain = "quiet.myshopify.com"
    devshop.client.shop_create(domain)
    session_token = devshop.client.session_token(domain)
    shop = shop_install_from_session_token(shop_domain=domain, session_token=session_token)
    secrets_seen = {
        session_token,
        shop_access_token_read(shop=shop),
        shop_refresh_token_read(shop=shop),
    }
    secrets_seen.add(shop_access_token_get(shop=shop))
    secrets_seen.add(shop_refresh_token_read(shop=shop))

    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    assert "auth.token.refreshed" in logged
    for secret in secrets_seen:
        assert secret not in logged

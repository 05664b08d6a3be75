"""The token endpoint client: retries, final rejections, and tokens kept out of logs."""

import logging

import pytest
import requests

from shopapp.auth import shopify_oauth
from shopapp.auth.services import shop_access_token_get, shop_install_from_session_token
from shopapp.auth.shopify_oauth import (
    TokenRequestRejected,
    TokenRequestUnavailable,
    token_refresh,
)
from shopapp.auth.tokens import shop_access_token_read, shop_refresh_token_read


class FakeResponse:
    def __init__(self, status: int, body: dict) -> None:
        self.status_code = status
        self._body = body

    def json(self) -> dict:
        return self._body


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(shopify_oauth, "BACKOFF_SECONDS", 0)


def _scripted(monkeypatch, script: list) -> list[dict]:
    calls: list[dict] = []

    def post(url, *, data, headers, timeout):
        calls.append({"url": url, "data": data, "timeout": timeout})
        step = script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    monkeypatch.setattr(shopify_oauth.requests, "post", post)
    return calls


def test_network_errors_and_5xx_are_retried(monkeypatch, no_backoff, settings):
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = "https://{shop}"
    calls = _scripted(
        monkeypatch,
        [
            requests.ConnectionError("reset"),
            FakeResponse(503, {}),
            FakeResponse(
                200,
                {
                    "access_token": "shpat_new",
                    "scope": "read_orders",
                    "expires_in": 3600,
                    "refresh_token": "shprt_new",
                    "refresh_token_expires_in": 7776000,
                },
            ),
        ],
    )

    grant = token_refresh(shop_domain="retry.myshopify.com", refresh_token="shprt_old")

    assert grant.access_token == "shpat_new"
    assert grant.refresh_token == "shprt_new"
    assert len(calls) == 3
    assert calls[0]["url"] == "https://retry.myshopify.com/admin/oauth/access_token"
    assert calls[0]["data"]["grant_type"] == "refresh_token"
    assert calls[0]["data"]["client_secret"] == settings.SHOPIFY_API_SECRET
    assert all(call["timeout"] == shopify_oauth.TIMEOUT_SECONDS for call in calls)


def test_persistent_5xx_gives_unavailable(monkeypatch, no_backoff):
    calls = _scripted(monkeypatch, [FakeResponse(502, {})] * shopify_oauth.MAX_ATTEMPTS)

    with pytest.raises(TokenRequestUnavailable):
        token_refresh(shop_domain="down.myshopify.com", refresh_token="shprt_old")
    assert len(calls) == shopify_oauth.MAX_ATTEMPTS


def test_4xx_is_final_and_not_retried(monkeypatch, no_backoff):
    calls = _scripted(
        monkeypatch,
        [FakeResponse(400, {"error": "invalid_grant", "error_description": "used"})],
    )

    with pytest.raises(TokenRequestRejected) as excinfo:
        token_refresh(shop_domain="final.myshopify.com", refresh_token="shprt_old")
    assert (excinfo.value.status, excinfo.value.error) == (400, "invalid_grant")
    assert len(calls) == 1


def test_unreachable_refresh_keeps_using_a_still_valid_token(devshop, db, monkeypatch):
    # given a token inside the refresh margin but not yet expired
    devshop.client.knobs_set(access_token_ttl=120)
    domain = "deferred.myshopify.com"
    devshop.client.shop_create(domain)
    shop = shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )
    current = shop_access_token_read(shop=shop)
    refresh = shop_refresh_token_read(shop=shop)

    def unreachable(**kwargs):
        raise TokenRequestUnavailable("down")

    monkeypatch.setattr(shopify_oauth, "token_refresh", unreachable)

    # when / then the current token is used and nothing is marked
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

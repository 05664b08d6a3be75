"""The devshop's OAuth endpoints over HTTP, and its signer against Shopify's test vectors."""

import base64
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import shopify
from django.conf import settings

from devshop.oauth import oauth_query_sign

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"


@pytest.fixture
def shopify_secret():
    """ShopifyAPI keeps its secret on the class: restore it after the test."""
    saved = shopify.Session.secret
    yield
    shopify.Session.secret = saved


def test_signer_and_verifier_agree_with_shopifys_test_vector(shopify_secret):
    # Shopify's OAuth docs example, which reproduces with secret "hush" and shop "some-shop".
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
    }
    expected = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"

    assert oauth_query_sign(params, "hush") == expected
    shopify.Session.setup(secret="hush")
    assert shopify.Session.calculate_hmac(params) == expected
    assert shopify.Session.validate_hmac({**params, "hmac": expected}) is True
    assert shopify.Session.validate_hmac({**params, "hmac": "0" * 64}) is False


def test_signer_matches_the_python_librarys_vector():
    params = {
        "shop": "some-shop.myshopify.com",
        "code": "a94a110d86d2452eb3e2af4cfb8a3828",
        "timestamp": "1337178173",
    }
    assert oauth_query_sign(params, "hush") == (
        "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"
    )


def _token_url(devshop, domain: str) -> str:
    return devshop.client.shop_url(domain) + "/admin/oauth/access_token"


def _credentials() -> dict[str, str]:
    return {"client_id": settings.SHOPIFY_API_KEY, "client_secret": settings.SHOPIFY_API_SECRET}


def _authorize(devshop, domain: str, **overrides: str) -> requests.Response:
    params = {
        "client_id": settings.SHOPIFY_API_KEY,
        "scope": "read_orders,write_returns",
        "redirect_uri": f"{settings.APP_URL}/auth/callback",
        "state": "ab" * 32,
        **overrides,
    }
    return requests.get(
        devshop.client.shop_url(domain) + "/admin/oauth/authorize",
        params=params,
        allow_redirects=False,
        timeout=10,
    )


def _code(devshop, domain: str) -> str:
    response = _authorize(devshop, domain)
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def _exchange(devshop, domain: str, subject_token: str, **extra: str) -> requests.Response:
    return requests.post(
        _token_url(devshop, domain),
        data={
            **_credentials(),
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ID_TOKEN,
            "requested_token_type": OFFLINE,
            "expiring": "1",
            **extra,
        },
        timeout=10,
    )


def test_authorize_redirects_to_the_app_with_a_signed_query(devshop, shopify_secret):
    # given a store
    domain = "authorize.myshopify.com"
    devshop.client.shop_create(domain)

    # when the app sends the merchant to authorize (auto-approved)
    response = _authorize(devshop, domain)

    # then the store redirects back with Shopify's parameters, signed with the app secret
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{settings.APP_URL}/auth/callback"
    )
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert set(query) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert query["shop"] == domain
    assert query["state"] == "ab" * 32
    assert abs(int(query["timestamp"]) - time.time()) < 10
    assert "=" not in query["host"]
    padded = query["host"] + "=" * (-len(query["host"]) % 4)
    assert base64.b64decode(padded).decode() == "admin.shopify.com/store/authorize"
    shopify.Session.setup(secret=settings.SHOPIFY_API_SECRET)
    assert shopify.Session.validate_params(query) is True
    # and the app is installed with the requested scopes
    shop = devshop.client.shop_get(domain)
    assert shop["app_installed"] is True
    assert shop["granted_scopes"] == "read_orders,write_returns"


def test_authorize_shows_a_consent_page_unless_auto_approved(devshop):
    domain = "consent.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.knobs_set(auto_approve=False)

    page = _authorize(devshop, domain)

    assert page.status_code == 200
    assert 'id="install"' in page.text
    assert "read_orders" in page.text
    assert devshop.client.shop_get(domain)["app_installed"] is False

    approved = requests.post(
        devshop.client.shop_url(domain) + "/admin/oauth/authorize",
        data={
            "client_id": settings.SHOPIFY_API_KEY,
            "scope": "read_orders",
            "redirect_uri": f"{settings.APP_URL}/auth/callback",
            "state": "cd" * 32,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert approved.status_code == 302
    assert "code=" in approved.headers["Location"]
    assert devshop.client.shop_get(domain)["app_installed"] is True


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "someone-else"},
        {"redirect_uri": "https://evil.example.com/auth/callback"},
        {"redirect_uri": f"{settings.APP_URL}.evil.example.com/auth/callback"},
    ],
)
def test_authorize_refuses_unknown_clients_and_foreign_redirects(devshop, overrides):
    domain = "authorize-bad.myshopify.com"
    devshop.client.shop_create(domain)

    response = _authorize(devshop, domain, **overrides)

    assert response.status_code == 400
    assert devshop.client.shop_get(domain)["app_installed"] is False


def test_code_is_good_once(devshop):
    domain = "code-once.myshopify.com"
    devshop.client.shop_create(domain)
    code = _code(devshop, domain)
    data = {**_credentials(), "code": code, "expiring": "1"}

    first = requests.post(_token_url(devshop, domain), data=data, timeout=10)
    second = requests.post(_token_url(devshop, domain), data=data, timeout=10)

    assert first.status_code == 200
    body = first.json()
    assert body["access_token"].startswith("shpat_")
    assert body["refresh_token"].startswith("shprt_")
    assert 3500 < body["expires_in"] <= 3600
    assert body["refresh_token_expires_in"] > 89 * 86400
    assert body["scope"] == "read_orders,write_returns"
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


def test_code_grant_accepts_json_and_issues_legacy_tokens_without_expiring(devshop):
    domain = "code-json.myshopify.com"
    devshop.client.shop_create(domain)

    response = requests.post(
        _token_url(devshop, domain),
        json={**_credentials(), "code": _code(devshop, domain)},
        timeout=10,
    )

    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "scope"}


def test_wrong_client_secret_is_invalid_client(devshop):
    domain = "bad-client.myshopify.com"
    devshop.client.shop_create(domain)

    response = requests.post(
        _token_url(devshop, domain),
        data={
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": "wrong",
            "code": _code(devshop, domain),
        },
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert "error_description" in response.json()


def _forged(domain: str, **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://{domain}/admin",
        "dest": f"https://{domain}",
        "aud": settings.SHOPIFY_API_KEY,
        "sub": "1",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": "x",
        "sid": "y",
    }
    secret = changes.pop("secret", settings.SHOPIFY_API_SECRET)
    claims.update(changes)
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("forged", {"secret": "another-secret-of-sufficient-length-000"}),
        ("wrong_aud", {"aud": "someone-else"}),
        ("expired", {"exp": int(time.time()) - 120}),
        ("other_shop", {"dest": "https://other.myshopify.com"}),
    ],
)
def test_bad_subject_token_is_invalid_subject_token(devshop, case, changes):
    domain = "bad-subject.myshopify.com"
    devshop.client.shop_create(domain)

    response = _exchange(devshop, domain, _forged(domain, **changes))

    assert response.status_code == 400, case
    assert response.json()["error"] == "invalid_subject_token"
    assert devshop.client.shop_get(domain)["app_installed"] is False


def test_token_exchange_installs_the_app_managed_style(devshop):
    domain = "managed.myshopify.com"
    devshop.client.shop_create(domain)

    response = _exchange(devshop, domain, devshop.client.session_token(domain))

    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"].startswith("shprt_")
    shop = devshop.client.shop_get(domain)
    assert shop["app_installed"] is True
    assert body["scope"] == shop["granted_scopes"]
    assert devshop.client.access_token_valid(domain, body["access_token"]) is True


def _refresh(devshop, domain: str, refresh_token: str) -> requests.Response:
    return requests.post(
        _token_url(devshop, domain),
        data={**_credentials(), "grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=10,
    )


def test_refresh_repeated_inside_the_retry_window_gets_the_same_answer(devshop):
    domain = "retry-window.myshopify.com"
    devshop.client.shop_create(domain)
    first = _exchange(devshop, domain, devshop.client.session_token(domain)).json()

    once = _refresh(devshop, domain, first["refresh_token"])
    again = _refresh(devshop, domain, first["refresh_token"])

    assert once.status_code == 200
    assert again.status_code == 200
    assert again.json()["access_token"] == once.json()["access_token"]
    assert again.json()["refresh_token"] == once.json()["refresh_token"]
    assert once.json()["access_token"] != first["access_token"]
    # the old access token lives on until it expires, as on Shopify
    assert devshop.client.access_token_valid(domain, first["access_token"]) is True


def test_used_refresh_token_is_void_outside_the_retry_window(devshop):
    domain = "no-window.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.knobs_set(refresh_retry_window=0)
    first = _exchange(devshop, domain, devshop.client.session_token(domain)).json()
    assert _refresh(devshop, domain, first["refresh_token"]).status_code == 200
    time.sleep(1.1)

    again = _refresh(devshop, domain, first["refresh_token"])

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_new_token_exchange_retires_the_previous_refresh_token(devshop):
    domain = "retired.myshopify.com"
    devshop.client.shop_create(domain)
    first = _exchange(devshop, domain, devshop.client.session_token(domain)).json()
    _exchange(devshop, domain, devshop.client.session_token(domain))

    response = _refresh(devshop, domain, first["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_expired_refresh_token_is_invalid_grant(devshop):
    domain = "expired-rt.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.knobs_set(refresh_token_ttl=0)
    first = _exchange(devshop, domain, devshop.client.session_token(domain)).json()

    response = _refresh(devshop, domain, first["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_legacy_token_migration_revokes_the_old_token_once(devshop):
    domain = "migrate.myshopify.com"
    devshop.client.shop_create(domain)
    legacy = _exchange(devshop, domain, devshop.client.session_token(domain), expiring="0")
    legacy_token = legacy.json()["access_token"]
    assert "refresh_token" not in legacy.json()
    migrate = {
        **_credentials(),
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": legacy_token,
        "subject_token_type": OFFLINE,
        "requested_token_type": OFFLINE,
        "expiring": "1",
    }

    first = requests.post(_token_url(devshop, domain), data=migrate, timeout=10)
    second = requests.post(_token_url(devshop, domain), data=migrate, timeout=10)

    assert first.status_code == 200
    assert first.json()["refresh_token"].startswith("shprt_")
    assert devshop.client.access_token_valid(domain, legacy_token) is False
    assert devshop.client.access_token_valid(domain, first.json()["access_token"]) is True
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_subject_token"


def test_uninstall_revokes_every_token(devshop):
    domain = "uninstall.myshopify.com"
    devshop.client.shop_create(domain)
    body = _exchange(devshop, domain, devshop.client.session_token(domain)).json()

    result = devshop.client.app_uninstall(domain)

    assert result["app_installed"] is False
    assert result["tokens_revoked"] == 1
    assert devshop.client.access_token_valid(domain, body["access_token"]) is False
    assert _refresh(devshop, domain, body["refresh_token"]).json()["error"] == "invalid_grant"


def test_unsupported_grant_type_is_invalid_request(devshop):
    domain = "grant-type.myshopify.com"
    devshop.client.shop_create(domain)

    response = requests.post(
        _token_url(devshop, domain),
        data={**_credentials(), "grant_type": "password"},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"

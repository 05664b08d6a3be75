"""/auth/install, /auth/callback and the bounce page: every rejection path with real
signatures computed here, and the full code grant against the devshop over HTTP."""

import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.http import HttpResponse

from shopapp.auth.views import STATE_COOKIE, STATE_COOKIE_SALT
from shopapp.models import OAuthState, Order, Shop

DOMAIN = "callback.myshopify.com"


def sign(params: dict[str, str], secret: str) -> str:
    message = "&".join(sorted(f"{k}={v}" for k, v in params.items() if k != "hmac"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def start_install(client, domain: str = DOMAIN) -> str:
    response = client.get("/auth/install", {"shop": domain})
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def callback_params(settings, state: str, **overrides: str) -> dict[str, str]:
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvY2FsbGJhY2s",
        "shop": DOMAIN,
        "state": state,
        "timestamp": str(int(time.time())),
    }
    params.update(overrides)
    params["hmac"] = sign(params, settings.SHOPIFY_API_SECRET)
    return params


def test_install_redirects_to_authorize_with_a_one_time_state(client, settings, db):
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = "https://{shop}"
    response = client.get("/auth/install", {"shop": "Mixed-Case.myshopify.com"})

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "mixed-case.myshopify.com",
        "/admin/oauth/authorize",
    )
    query = parse_qs(location.query)
    assert query["client_id"] == [settings.SHOPIFY_API_KEY]
    assert query["scope"] == [settings.SHOPIFY_SCOPES]
    assert query["redirect_uri"] == [f"{settings.APP_URL}/auth/callback"]
    state = query["state"][0]
    assert len(state) == 64
    assert int(state, 16) >= 0
    row = OAuthState.objects.get(state=state)
    assert row.shop_domain == "mixed-case.myshopify.com"
    assert row.used_at is None
    cookie = response.cookies[STATE_COOKIE]
    assert cookie["path"] == "/auth/callback"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


@pytest.fixture
def install_limit(settings, redis_conn):
    """3 install attempts per client address and per shop, counted from zero."""
    settings.AUTH_INSTALL_RATE_PER_IP = 3
    return settings


def test_one_client_starting_many_installs_is_paused(client, install_limit, db):
    # given a client that started 3 installs, each writing a state row
    for i in range(3):
        response = client.get(
            "/auth/install", {"shop": f"flood-{i}.myshopify.com"}, REMOTE_ADDR="198.51.100.7"
        )
        assert response.status_code == 302

    # when it starts a 4th, even with a forged X-Forwarded-For
    refused = client.get(
        "/auth/install",
        {"shop": "flood-3.myshopify.com"},
        REMOTE_ADDR="198.51.100.7",
        headers={"X-Forwarded-For": "203.0.113.200"},
    )

    # then it is refused with a wait, and writes nothing; another client is not held back
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert OAuthState.objects.count() == 3
    other = client.get(
        "/auth/install", {"shop": "flood-3.myshopify.com"}, REMOTE_ADDR="198.51.100.8"
    )
    assert other.status_code == 302


def test_many_clients_starting_installs_for_one_shop_are_paused(client, install_limit, db):
    answers = [
        client.get("/auth/install", {"shop": DOMAIN}, REMOTE_ADDR=f"198.51.100.{i}").status_code
        for i in range(4)
    ]

    assert answers == [302, 302, 302, 429]
    assert OAuthState.objects.filter(shop_domain=DOMAIN).count() == 3


@pytest.mark.parametrize(
    "shop",
    [
        "",
        "evil.com",
        "shop.myshopify.com.evil.com",
        "-shop.myshopify.com",
        "shop.myshopify.com/x",
        "sh op.myshopify.com",
        "shop.myshopify.com\n",
    ],
)
def test_install_refuses_a_bad_shop_domain(client, db, shop):
    response = client.get("/auth/install", {"shop": shop})

    assert response.status_code == 400
    assert OAuthState.objects.count() == 0


def test_callback_with_a_bad_hmac_is_refused(client, settings, db):
    state = start_install(client)
    params = callback_params(settings, state)
    params["hmac"] = sign({**params, "code": "other"}, settings.SHOPIFY_API_SECRET)

    response = client.get("/auth/callback", params)

    assert response.status_code == 403
    assert OAuthState.objects.get(state=state).used_at is None
    assert not Shop.objects.exists()


def test_callback_with_an_hmac_wrong_in_its_last_character_only_is_refused(client, settings, db):
    state = start_install(client)
    params = callback_params(settings, state)
    params["hmac"] = params["hmac"][:-1] + ("0" if params["hmac"][-1] != "0" else "1")

    response = client.get("/auth/callback", params)

    assert response.status_code == 403
    assert not Shop.objects.exists()


def test_callback_signed_with_another_secret_is_refused(client, settings, db):
    state = start_install(client)
    params = callback_params(settings, state)
    params["hmac"] = sign(params, "not-our-secret")

    assert client.get("/auth/callback", params).status_code == 403
    assert OAuthState.objects.get(state=state).used_at is None


def test_callback_without_hmac_is_refused(client, settings, db):
    state = start_install(client)
    params = callback_params(settings, state)
    del params["hmac"]

    response = client.get("/auth/callback", params)

    assert response.status_code == 400
    assert OAuthState.objects.get(state=state).used_at is None


def test_callback_with_a_bad_shop_domain_is_refused(client, settings, db):
    state = start_install(client)
    params = callback_params(settings, state, shop="evil.example.com")

    assert client.get("/auth/callback", params).status_code == 400
    assert OAuthState.objects.get(state=state).used_at is None


@pytest.mark.parametrize("age_seconds", [10 * 60, 2 * 86400, -10 * 60])
def test_callback_with_a_stale_or_future_timestamp_is_refused(client, settings, db, age_seconds):
    state = start_install(client)
    params = callback_params(settings, state, timestamp=str(int(time.time()) - age_seconds))

    assert client.get("/auth/callback", params).status_code == 403
    assert OAuthState.objects.get(state=state).used_at is None


def test_callback_with_an_unknown_state_is_refused(client, settings, db):
    # given a state the app never issued, in a correctly signed cookie
    start_install(client)
    forged = "ab" * 32
    signed = HttpResponse()
    signed.set_signed_cookie(STATE_COOKIE, forged, salt=STATE_COOKIE_SALT)
    client.cookies[STATE_COOKIE] = signed.cookies[STATE_COOKIE].value

    response = client.get("/auth/callback", callback_params(settings, forged))

    assert response.status_code == 403
    assert not Shop.objects.exists()
    assert not OAuthState.objects.filter(used_at__isnull=False).exists()


def test_callback_with_a_state_not_matching_the_cookie_is_refused(client, settings, db):
    # given two installs started in the same browser: the cookie holds the second state
    first = start_install(client)
    start_install(client)

    response = client.get("/auth/callback", callback_params(settings, first))

    assert response.status_code == 403
    assert OAuthState.objects.get(state=first).used_at is None


def test_callback_without_the_state_cookie_is_refused(client, settings, db):
    state = start_install(client)
    client.cookies.clear()

    assert client.get("/auth/callback", callback_params(settings, state)).status_code == 403
    assert OAuthState.objects.get(state=state).used_at is None


def test_callback_with_a_forged_cookie_is_refused(client, settings, db):
    state = start_install(client)
    client.cookies[STATE_COOKIE] = state  # unsigned

    assert client.get("/auth/callback", callback_params(settings, state)).status_code == 403


def test_callback_with_a_state_for_another_shop_is_refused(client, settings, db):
    state = start_install(client, "someone-else.myshopify.com")

    assert client.get("/auth/callback", callback_params(settings, state)).status_code == 403
    assert OAuthState.objects.get(state=state).used_at is None


def test_callback_with_an_expired_state_is_refused(client, settings, db):
    from datetime import timedelta

    from django.utils import timezone

    state = start_install(client)
    OAuthState.objects.filter(state=state).update(created_at=timezone.now() - timedelta(hours=1))

    assert client.get("/auth/callback", callback_params(settings, state)).status_code == 403


def _authorize_at_devshop(client, devshop, domain: str) -> dict[str, str]:
    """Install → the store's authorize page (auto-approved) → the callback's query."""
    install = client.get("/auth/install", {"shop": domain})
    at_store = requests.get(install["Location"], allow_redirects=False, timeout=10)
    assert at_store.status_code == 302
    back = urlsplit(at_store.headers["Location"])
    assert back.path == "/auth/callback"
    return {key: values[0] for key, values in parse_qs(back.query).items()}


def test_code_grant_installs_the_shop_through_the_devshop(client, devshop, settings, db):
    # given a store, and a merchant who starts the install from outside the admin
    domain = "code-grant.myshopify.com"
    devshop.client.shop_create(domain)
    params = _authorize_at_devshop(client, devshop, domain)

    # when Shopify redirects back
    response = client.get("/auth/callback", params)

    # then the shop is installed with an expiring token and the merchant lands in the admin
    assert response.status_code == 302
    assert response["Location"] == (
        f"https://admin.shopify.com/store/code-grant/apps/{settings.SHOPIFY_API_KEY}"
    )
    shop = Shop.objects.get(myshopify_domain=domain)
    assert shop.is_active is True
    assert shop.access_token_expires_at is not None
    assert shop.missing_scopes == ""
    assert OAuthState.objects.get(state=params["state"]).used_at is not None
    assert devshop.client.shop_get(domain)["app_installed"] is True

    # and the same callback replayed is refused (state spent), changing nothing
    stored = shop.access_token_encrypted
    assert client.get("/auth/callback", params).status_code == 403
    shop.refresh_from_db()
    assert shop.access_token_encrypted == stored


def test_code_grant_reinstall_reactivates_the_shop(client, devshop, db):
    from django.utils import timezone

    domain = "code-again.myshopify.com"
    devshop.client.shop_create(domain)
    Shop.objects.create(
        myshopify_domain=domain, is_active=False, uninstalled_at=timezone.now(), needs_reauth=True
    )

    response = client.get("/auth/callback", _authorize_at_devshop(client, devshop, domain))

    assert response.status_code == 302
    shop = Shop.objects.get(myshopify_domain=domain)
    assert shop.is_active is True
    assert shop.uninstalled_at is None
    assert shop.needs_reauth is False


def test_code_used_twice_is_refused_by_shopify(client, devshop, settings, db):
    # given a code the app already exchanged
    domain = "code-twice.myshopify.com"
    devshop.client.shop_create(domain)
    params = _authorize_at_devshop(client, devshop, domain)
    assert client.get("/auth/callback", params).status_code == 302
    Shop.objects.filter(myshopify_domain=domain).delete()

    # when a fresh, correctly signed callback carries the same code
    second = _authorize_at_devshop(client, devshop, domain)
    replay = {**second, "code": params["code"]}
    replay["hmac"] = sign(replay, settings.SHOPIFY_API_SECRET)
    response = client.get("/auth/callback", replay)

    # then Shopify's invalid_grant becomes a 400 and nothing is stored
    assert response.status_code == 400
    assert not Shop.objects.filter(myshopify_domain=domain).exists()


def test_bounce_page_loads_app_bridge_only(client, settings):
    response = client.get(
        "/auth/session-token", {"shopify-reload": "/app/orders?page=2", "shop": DOMAIN}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert f'<meta name="shopify-api-key" content="{settings.SHOPIFY_API_KEY}">' in body
    assert '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' in body
    assert body.count("<script") == 1
    assert response["Content-Security-Policy"] == (
        "frame-ancestors https://callback.myshopify.com https://admin.shopify.com;"
    )


def test_bounce_page_accepts_an_absolute_url_on_the_app(client, settings):
    target = f"{settings.APP_URL}/app/"
    assert client.get("/auth/session-token", {"shopify-reload": target}).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "",
        "https://evil.example.com/app/",
        "//evil.example.com/app/",
        "/\\evil.example.com",
        "\\\\evil.example.com",
        "javascript:alert(1)",
        "app/relative",
        "http://127.0.0.1:9999/app/",
    ],
)
def test_bounce_page_refuses_an_open_redirect(client, target):
    response = client.get("/auth/session-token", {"shopify-reload": target})

    assert response.status_code == 400


def test_install_syncs_the_shop_details_and_pulls_its_orders(
    client, devshop, db, rq_worker, django_capture_on_commit_callbacks
):
    # given a store in Paris that already has orders when the merchant installs the app
    domain = "after-install.myshopify.com"
    devshop.client.shop_create(
        domain, name="Après Install", iana_timezone="Europe/Paris", currency_code="EUR"
    )
    devshop.client.orders_create(domain, count=3)

    # when the install completes and the worker runs what it queued
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get("/auth/callback", _authorize_at_devshop(client, devshop, domain))
    assert response.status_code == 302
    rq_worker()

    # then the shop's details come from the Admin API and its orders are mirrored
    shop = Shop.objects.get(myshopify_domain=domain)
    assert shop.name == "Après Install"
    assert shop.timezone == "Europe/Paris"
    assert shop.currency == "EUR"
    assert shop.shopify_id == devshop.client.shop_get(domain)["id"]
    assert Order.objects.filter(shop=shop).count() == 3
    assert shop.orders_synced_at is not None


def test_code_grant_lands_in_the_development_stores_admin_when_configured(
    client, devshop, settings, db
):
    # given the app pointed at the devshop's admin frame instead of Shopify's admin
    settings.SHOPIFY_EMBEDDED_APP_URL_TEMPLATE = devshop.base_url + "/store/{shop}/admin/apps/app"
    domain = "lands-in-devshop.myshopify.com"
    devshop.client.shop_create(domain)

    response = client.get("/auth/callback", _authorize_at_devshop(client, devshop, domain))

    assert response.status_code == 302
    assert response["Location"] == f"{devshop.base_url}/store/{domain}/admin/apps/app"

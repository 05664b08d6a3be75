"""Install, refresh, migration, reauth and scopes, against the devshop over real HTTP."""

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.utils import timezone

from shopapp.auth.services import (
    REFRESH_MARGIN,
    ShopNeedsReauth,
    ShopNotInstalled,
    scopes_missing,
    shop_access_token_get,
    shop_install_from_session_token,
    shop_scopes_update,
)
from shopapp.auth.shopify_oauth import TokenRequestRejected, token_refresh
from shopapp.auth.tokens import shop_access_token_read, shop_refresh_token_read, shop_tokens_assign
from shopapp.models import Shop, WebhookEvent
from shopapp.webhooks.handlers import TOPIC_HANDLERS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "webhooks"


def _installed(devshop, domain: str) -> Shop:
    devshop.client.shop_create(domain)
    return shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )


def _legacy_token(devshop, domain: str) -> str:
    """A non-expiring offline token, as apps got before expiring tokens (expiring absent)."""
    from django.conf import settings

    response = requests.post(
        devshop.client.shop_url(domain) + "/admin/oauth/access_token",
        data={
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": settings.SHOPIFY_API_SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": devshop.client.session_token(domain),
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        },
        timeout=10,
    )
    body = response.json()
    assert "expires_in" not in body
    assert "refresh_token" not in body
    return body["access_token"]


def test_token_exchange_installs_an_expiring_token_encrypted_at_rest(devshop, db):
    # given a store whose merchant installed the app (managed install)
    domain = "exchange.myshopify.com"
    devshop.client.shop_create(domain)

    # when the app exchanges a session token
    before = timezone.now()
    shop = shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )

    # then the shop is active with an expiring token and a refresh token
    shop.refresh_from_db()
    assert shop.is_active is True
    assert shop.needs_reauth is False
    assert shop.installed_at >= before
    assert shop.missing_scopes == ""
    access = shop_access_token_read(shop=shop)
    refresh = shop_refresh_token_read(shop=shop)
    assert access.startswith("shpat_")
    assert refresh.startswith("shprt_")
    assert (
        timedelta(minutes=59)
        < shop.access_token_expires_at - before
        <= timedelta(hours=1, seconds=5)
    )
    assert shop.refresh_token_expires_at - before > timedelta(days=89)
    assert devshop.client.access_token_valid(domain, access) is True
    # and neither token is in the database in the clear
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token_encrypted, refresh_token_encrypted"
            " FROM shopapp_shop WHERE id = %s",
            [shop.pk],
        )
        stored_access, stored_refresh = cursor.fetchone()
    assert access not in stored_access
    assert "shpat_" not in stored_access
    assert refresh not in stored_refresh
    assert "shprt_" not in stored_refresh


def test_token_exchange_with_a_forged_session_token_stores_nothing(devshop, db):
    # given a session token signed for another app
    domain = "forged-exchange.myshopify.com"
    devshop.client.shop_create(domain)
    import jwt

    forged = jwt.encode(
        {
            "iss": f"https://{domain}/admin",
            "dest": f"https://{domain}",
            "aud": "devshop-client-id",
            "sub": "1",
            "exp": int(timezone.now().timestamp()) + 60,
            "nbf": int(timezone.now().timestamp()),
        },
        "not-the-secret",
        algorithm="HS256",
    )

    # when / then the store refuses it and the app stores no shop
    with pytest.raises(TokenRequestRejected) as excinfo:
        shop_install_from_session_token(shop_domain=domain, session_token=forged)
    assert excinfo.value.status == 400
    assert excinfo.value.error == "invalid_subject_token"
    assert not Shop.objects.filter(myshopify_domain=domain).exists()


def test_access_token_get_returns_the_stored_token_while_fresh(devshop, db):
    # given an installed shop whose token has an hour left
    shop = _installed(devshop, "fresh.myshopify.com")
    stored = shop_access_token_read(shop=shop)
    refreshed_at = shop.token_refreshed_at

    # when / then no refresh happens
    assert shop_access_token_get(shop=shop) == stored
    shop.refresh_from_db()
    assert shop.token_refreshed_at == refreshed_at
    assert shop_access_token_read(shop=shop) == stored


def test_access_token_get_refreshes_within_the_margin(devshop, db):
    # given a token that expires within the refresh margin
    devshop.client.knobs_set(access_token_ttl=int(REFRESH_MARGIN.total_seconds()) - 60)
    domain = "refresh.myshopify.com"
    shop = _installed(devshop, domain)
    old_access = shop_access_token_read(shop=shop)
    old_refresh = shop_refresh_token_read(shop=shop)
    devshop.client.knobs_set(access_token_ttl=3600, refresh_retry_window=0)

    # when a job asks for a token
    token = shop_access_token_get(shop=shop)

    # then it got a new pair, stored, and the old refresh token is void
    assert token != old_access
    assert shop_access_token_read(shop=shop) == token
    assert shop_refresh_token_read(shop=shop) != old_refresh
    assert shop.access_token_expires_at - timezone.now() > timedelta(minutes=59)
    assert devshop.client.access_token_valid(domain, token) is True
    with pytest.raises(TokenRequestRejected) as excinfo:
        token_refresh(shop_domain=domain, refresh_token=old_refresh)
    assert excinfo.value.error == "invalid_grant"


def test_a_worker_with_a_stale_row_does_not_refresh_again(devshop, db):
    # given two workers that loaded the shop while its token was due
    devshop.client.knobs_set(access_token_ttl=60, refresh_retry_window=0)
    domain = "stale-row.myshopify.com"
    shop = _installed(devshop, domain)
    worker_a = Shop.objects.get(pk=shop.pk)
    worker_b = Shop.objects.get(pk=shop.pk)
    devshop.client.knobs_set(access_token_ttl=3600)

    # when the first refreshes, then the second asks with its stale copy
    token_a = shop_access_token_get(shop=worker_a)
    refresh_after_a = shop_refresh_token_read(shop=worker_a)
    token_b = shop_access_token_get(shop=worker_b)

    # then the second re-read the row under the lock and used the first's token
    assert token_b == token_a
    assert shop_refresh_token_read(shop=worker_b) == refresh_after_a
    shop.refresh_from_db()
    assert shop.needs_reauth is False
    # and the stored refresh token is the live one
    assert token_refresh(shop_domain=domain, refresh_token=refresh_after_a).access_token


@pytest.mark.django_db(transaction=True)
def test_two_threads_refreshing_at_once_end_with_one_valid_token(devshop):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's in-memory test database does not share row locks across threads")
    # given a due token and a store that voids a used refresh token at once
    devshop.client.knobs_set(access_token_ttl=60, refresh_retry_window=0)
    domain = "race.myshopify.com"
    shop = _installed(devshop, domain)
    devshop.client.knobs_set(access_token_ttl=3600)
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait()
            results.append(shop_access_token_get(shop=Shop.objects.get(pk=shop.pk)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when two workers refresh at the same time
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then both got the same token, the shop is fine and its refresh token works
    assert errors == []
    assert len(results) == 2
    assert results[0] == results[1]
    shop.refresh_from_db()
    assert shop.needs_reauth is False
    assert shop_access_token_read(shop=shop) == results[0]
    assert devshop.client.access_token_valid(domain, results[0]) is True
    assert token_refresh(shop_domain=domain, refresh_token=shop_refresh_token_read(shop=shop))


def test_expired_refresh_token_marks_needs_reauth(devshop, db):
    # given a due access token whose refresh token has expired
    devshop.client.knobs_set(access_token_ttl=60, refresh_token_ttl=0)
    shop = _installed(devshop, "expired-refresh.myshopify.com")
    stored = shop.access_token_encrypted

    # when a job asks for a token
    with pytest.raises(ShopNeedsReauth) as excinfo:
        shop_access_token_get(shop=shop)

    # then the shop waits for its merchant, tokens untouched
    assert excinfo.value.reason == "refresh_token_expired"
    shop.refresh_from_db()
    assert shop.needs_reauth is True
    assert shop.access_token_encrypted == stored
    # and later calls fail fast without asking Shopify
    with pytest.raises(ShopNeedsReauth):
        shop_access_token_get(shop=shop)


def test_refresh_token_rejected_by_shopify_marks_needs_reauth(devshop, db):
    # given a due token whose refresh token the store no longer honours
    devshop.client.knobs_set(access_token_ttl=60)
    domain = "revoked-refresh.myshopify.com"
    shop = _installed(devshop, domain)
    devshop.client.app_uninstall(domain)

    # when / then
    with pytest.raises(ShopNeedsReauth) as excinfo:
        shop_access_token_get(shop=shop)
    assert excinfo.value.reason == "invalid_grant"
    shop.refresh_from_db()
    assert shop.needs_reauth is True


def test_needs_reauth_is_cleared_by_the_next_token_exchange(devshop, db):
    # given a shop waiting for its merchant
    shop = _installed(devshop, "reauth.myshopify.com")
    Shop.objects.filter(pk=shop.pk).update(needs_reauth=True)

    # when the merchant opens the app (a token exchange)
    shop = shop_install_from_session_token(
        shop_domain="reauth.myshopify.com",
        session_token=devshop.client.session_token("reauth.myshopify.com"),
    )

    # then
    shop.refresh_from_db()
    assert shop.needs_reauth is False
    assert shop_access_token_get(shop=shop) == shop_access_token_read(shop=shop)


def test_legacy_token_is_migrated_and_revoked(devshop, db):
    # given a shop holding a legacy non-expiring token
    domain = "legacy.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.app_install(domain)
    legacy = _legacy_token(devshop, domain)
    shop = Shop(myshopify_domain=domain, is_active=True, installed_at=timezone.now())
    shop_tokens_assign(
        shop=shop,
        access_token=legacy,
        access_token_expires_at=None,
        refresh_token=None,
        refresh_token_expires_at=None,
    )
    shop.save()

    # when a job asks for a token
    token = shop_access_token_get(shop=shop)

    # then it is an expiring token, and the legacy one is dead
    assert token != legacy
    assert shop.access_token_expires_at is not None
    assert shop_refresh_token_read(shop=shop).startswith("shprt_")
    assert devshop.client.access_token_valid(domain, token) is True
    assert devshop.client.access_token_valid(domain, legacy) is False


def test_access_token_get_for_an_uninstalled_shop_raises(db):
    shop = Shop.objects.create(myshopify_domain="gone.myshopify.com", is_active=False)
    with pytest.raises(ShopNotInstalled):
        shop_access_token_get(shop=shop)


def test_missing_scopes_are_detected_on_install(devshop, db):
    # given a merchant who granted fewer scopes than the app requires
    domain = "narrow.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.app_install(domain, scopes="read_orders,write_returns")

    # when the app installs
    shop = shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )

    # then the missing ones are stored (write_returns covers read_returns)
    shop.refresh_from_db()
    assert shop.granted_scopes == "read_orders,write_returns"
    assert shop.missing_scopes == (
        "read_customers,read_fulfillments,write_fulfillments,read_products,read_themes,write_app_proxy"
    )


def test_scopes_missing_honours_write_implies_read(settings):
    assert scopes_missing(required="read_orders,read_returns", granted="write_orders") == [
        "read_returns"
    ]
    assert scopes_missing(required="write_orders", granted="read_orders") == ["write_orders"]
    assert (
        scopes_missing(
            required="unauthenticated_read_checkouts", granted="unauthenticated_write_checkouts"
        )
        == []
    )


def test_reinstall_by_token_exchange_reactivates_the_shop(devshop, db):
    # given a shop that uninstalled the app (the app/uninstalled handler forgot the token)
    domain = "comeback.myshopify.com"
    shop = _installed(devshop, domain)
    devshop.client.app_uninstall(domain)
    uninstalled_at = timezone.now() - timedelta(days=3)
    Shop.objects.filter(pk=shop.pk).update(
        is_active=False,
        uninstalled_at=uninstalled_at,
        needs_reauth=True,
        access_token_encrypted="",
        refresh_token_encrypted="",
    )
    devshop.client.app_install(domain)

    # when the merchant installs again and opens the app
    shop = shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )

    # then
    shop.refresh_from_db()
    assert shop.is_active is True
    assert shop.uninstalled_at is None
    assert shop.needs_reauth is False
    assert shop.installed_at > uninstalled_at
    assert devshop.client.access_token_valid(domain, shop_access_token_get(shop=shop)) is True


def _scopes_event(shop: Shop, payload: dict, webhook_id: str) -> WebhookEvent:
    return WebhookEvent.objects.create(
        shop=shop,
        shop_domain=shop.myshopify_domain,
        webhook_id=webhook_id,
        topic="app/scopes_update",
        payload=payload,
    )


def test_scopes_update_handler_stores_the_current_scopes(db):
    # given an installed shop and Shopify's app/scopes_update payload
    shop = Shop.objects.create(
        myshopify_domain="scopes.myshopify.com", is_active=True, granted_scopes="read_orders"
    )
    payload = json.loads((FIXTURES / "app__scopes_update.json").read_text())
    event = _scopes_event(shop, payload, "w-1")

    # when the registered handler runs
    TOPIC_HANDLERS["app/scopes_update"](shop=shop, event=event, payload=payload)

    # then
    shop.refresh_from_db()
    assert TOPIC_HANDLERS["app/scopes_update"] is shop_scopes_update
    assert shop.granted_scopes == "read_products,write_products"
    assert "read_orders" in shop.missing_scopes.split(",")
    assert "read_products" not in shop.missing_scopes.split(",")
    assert shop.scopes_updated_at.isoformat() == "2024-06-25T00:00:00+00:00"


def test_scopes_update_older_than_stored_changes_nothing(db):
    # given scopes learnt after the delivery's updated_at
    learnt = timezone.now()
    shop = Shop.objects.create(
        myshopify_domain="late.myshopify.com",
        is_active=True,
        granted_scopes="read_orders",
        missing_scopes="read_customers",
        scopes_updated_at=learnt,
    )
    payload = json.loads((FIXTURES / "app__scopes_update.json").read_text())

    # when a late delivery arrives
    shop_scopes_update(shop=shop, event=_scopes_event(shop, payload, "w-2"), payload=payload)

    # then nothing changed
    shop.refresh_from_db()
    assert shop.granted_scopes == "read_orders"
    assert shop.missing_scopes == "read_customers"
    assert shop.scopes_updated_at == learnt

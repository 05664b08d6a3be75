"""The notification settings page: sender identity, quiet hours, Twilio credentials (the auth
token stored encrypted, never shown, kept when left empty); bad input refused with nothing
saved; Post/Redirect/Get. Real session tokens, the token in the Authorization header."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from devshop.session_tokens import session_token_mint
from notifications.models import NotificationSettings
from shopapp.auth.tokens import token_decrypt
from tests.shopapp.test_embedded import get_page, make_shop

pytestmark = pytest.mark.django_db

PATH = "/app/notifications/settings"
SID = "AC" + "0123456789abcdef" * 2
VALID = {
    "sender_name": "Alpha Goods",
    "reply_to": "help@alpha.example",
    "email_quiet_start": "22:00",
    "email_quiet_end": "07:00",
    "sms_quiet_start": "21:00",
    "sms_quiet_end": "08:30",
    "combine_shipments_minutes": "15",
    "is_sms_enabled": "on",
    "twilio_account_sid": SID,
    "twilio_auth_token": "super-secret-token",
    "twilio_from_number": "+15005550006",
}


@pytest.fixture
def shop_a():
    return make_shop("alpha.myshopify.com")


def post(client, shop, data):
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    return client.post(
        f"{PATH}?shop={shop.myshopify_domain}", data, HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_settings_are_saved_with_the_twilio_token_encrypted_and_never_shown(client, shop_a):
    # when
    response = post(client, shop_a, VALID)
    # then
    assert response.status_code == 303
    assert parse_qs(urlsplit(response["Location"]).query)["notice"] == ["settings_saved"]
    row = NotificationSettings.objects.get(shop=shop_a)
    assert (row.sender_name, row.reply_to) == ("Alpha Goods", "help@alpha.example")
    assert (row.email_quiet_start, row.email_quiet_end) == ("22:00", "07:00")
    assert (row.sms_quiet_start, row.sms_quiet_end) == ("21:00", "08:30")
    assert row.combine_shipments_minutes == 15
    assert (row.is_sms_enabled, row.twilio_account_sid) == (True, SID)
    assert "super-secret-token" not in row.twilio_auth_token_encrypted
    assert token_decrypt(encrypted=row.twilio_auth_token_encrypted) == "super-secret-token"
    html = get_page(client, shop_a, PATH, notice="settings_saved").content.decode()
    assert "Settings saved." in html
    assert "super-secret-token" not in html
    assert "data-token-saved" in html
    assert 'value="22:00"' in html


def test_an_empty_token_keeps_the_saved_one(client, shop_a):
    post(client, shop_a, VALID)
    response = post(client, shop_a, {**VALID, "twilio_auth_token": "", "sender_name": "Alpha"})
    assert response.status_code == 303
    row = NotificationSettings.objects.get(shop=shop_a)
    assert row.sender_name == "Alpha"
    assert token_decrypt(encrypted=row.twilio_auth_token_encrypted) == "super-secret-token"


@pytest.mark.parametrize(
    "change",
    [
        {"email_quiet_start": "25:00"},
        {"sms_quiet_end": "8am"},
        {"twilio_account_sid": "AC123"},
        {"twilio_from_number": "5005550006"},
        {"twilio_auth_token": ""},
        {"reply_to": "not an email"},
        {"combine_shipments_minutes": "-1"},
        # the review page is shown to shoppers: https only, a real address
        {"review_page_url": "http://reviews.alpha.example/write"},
        {"review_page_url": "javascript:alert(1)"},
        {"review_page_url": "https://"},
        {"review_page_url": "https://example.com/" + "a" * 500},
    ],
)
def test_bad_settings_are_refused_and_nothing_is_saved(client, shop_a, change):
    response = post(client, shop_a, {**VALID, **change})
    assert response.status_code == 400
    assert not NotificationSettings.objects.filter(shop=shop_a).exists()


def test_the_review_page_is_saved_and_shown_back(client, shop_a):
    url = "https://reviews.alpha.example/write?product=linen"
    assert post(client, shop_a, {**VALID, "review_page_url": url}).status_code == 303
    assert NotificationSettings.objects.get(shop=shop_a).review_page_url == url
    html = get_page(client, shop_a, PATH).content.decode()
    assert 'value="https://reviews.alpha.example/write?product=linen"' in html.replace("&amp;", "&")
    # and emptied, it is gone
    assert post(client, shop_a, {**VALID, "review_page_url": ""}).status_code == 303
    assert NotificationSettings.objects.get(shop=shop_a).review_page_url == ""


def test_settings_page_of_the_embedded_admin_links_every_setting(client, shop_a):
    html = get_page(client, shop_a, "/app/settings").content.decode()
    assert "Coming" not in html
    for path in (
        PATH,
        "/app/notifications/",
        "/app/notifications/templates",
        "/app/returns/policy",
    ):
        assert f'href="{path}?' in html

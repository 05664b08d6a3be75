"""Branding follows the storefront theme's colours (shopapp.branding.theme) until the merchant
sets their own: read at install, and again when Shopify says the published theme changed.

The journeys go through the devshop: its theme (GraphQL ``themes`` with the theme's
``config/settings_data.json``, as Shopify's theme editor writes it), its themes/* webhooks
signed as Shopify signs them, and a real RQ worker.
"""

import json
import uuid

import pytest

from shopapp.auth.services import shop_after_install, shop_install_from_session_token
from shopapp.branding.selectors import brand_look
from shopapp.branding.services import BrandingChange, branding_save
from shopapp.branding.theme import ThemeColours, theme_colours_parse
from shopapp.models import Shop, ShopBranding, Task
from tests.devshop.capture_server import CaptureServer
from tests.shopapp.branding_support import tracking_html

EDITOR_COMMENT = "/*\n * IMPORTANT: The contents of this file are auto-generated.\n */\n"


# -- reading settings_data.json ---------------------------------------------------------------


def _settings(current, presets=None) -> str:
    return EDITOR_COMMENT + json.dumps({"current": current, "presets": presets or {}})


def test_colour_schemes_of_an_online_store_2_theme_after_the_editors_comment():
    text = _settings(
        {
            "color_schemes": {
                "scheme-1": {
                    "settings": {"background": "#FDFBF7", "text": "#242833", "button": "#C7392F"}
                },
                "scheme-2": {"settings": {"background": "#000000", "button": "#FFFFFF"}},
            }
        }
    )
    assert theme_colours_parse(text) == ThemeColours(
        accent="#c7392f", text="#242833", background="#fdfbf7"
    )


def test_current_naming_a_preset_reads_the_preset():
    text = _settings("Bold", {"Bold": {"colors_accent_1": "#0B5FFF", "colors_text": "#111"}})
    assert theme_colours_parse(text) == ThemeColours(
        accent="#0b5fff", text="#111111", background=""
    )


def test_flat_colour_settings_of_an_older_theme():
    text = _settings({"color_button": "#6d28d9", "color_body_bg": "#fafafa"})
    assert theme_colours_parse(text) == ThemeColours(
        accent="#6d28d9", text="", background="#fafafa"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/* a comment that never ends",
        "not json",
        "[1, 2]",
        _settings({"type_body_font": "assistant_n4"}),
        _settings({"color_schemes": {"scheme-1": {"settings": {"button": "rgba(0,0,0,0.5)"}}}}),
        _settings({"colors_accent_1": "red; } body { display:none"}),
        _settings("Missing preset"),
    ],
    ids=["empty", "open-comment", "not-json", "list", "no-colours", "rgba", "css", "no-preset"],
)
def test_nothing_that_is_not_a_colour_is_taken(text):
    assert theme_colours_parse(text) is None


# -- the journeys -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


def _install(devshop, *, scopes: str | None = None) -> Shop:
    domain = f"theme-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    devshop.client.app_install(domain, scopes=scopes)
    # What the first embedded page load does (shopapp.auth.session).
    shop = shop_install_from_session_token(
        shop_domain=domain, session_token=devshop.client.session_token(domain)
    )
    shop_after_install(shop=shop)
    return shop


def _post_captured(devshop, capture, client, shop: Shop, topic: str) -> None:
    devshop.client.webhooks_flush()
    with capture._lock:
        mine = [
            r
            for r in capture.requests
            if r.header("X-Shopify-Shop-Domain") == shop.myshopify_domain
            and r.header("X-Shopify-Topic") == topic
        ]
        capture.requests[:] = [r for r in capture.requests if r not in mine]
    assert mine, f"no {topic} delivery"
    for request in mine:
        headers = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in request.headers
            if name.lower().startswith("x-shopify-")
        }
        response = client.post(
            "/webhooks/", data=request.body, content_type="application/json", **headers
        )
        assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_new_shop_looks_like_its_store_and_follows_a_newly_published_theme(
    devshop, capture, client, rq_worker
):
    # given a store on Dawn's default colours, when the app is installed
    shop = _install(devshop)
    rq_worker()

    # then the branding follows the theme without the merchant visiting the screen
    row = ShopBranding.objects.get(shop=shop)
    assert (row.follows_theme, row.theme_name) == (True, "Dawn")
    look = brand_look(shop=shop)
    assert (look.accent, look.text, look.background) == ("#121212", "#121212", "#ffffff")
    assert look.support_email == shop.email  # the shop's, as without a row

    # when the merchant publishes a red theme (themes/publish, signed, through the webhook path)
    for topic in ("themes/publish", "themes/update"):
        devshop.client.webhook_subscription_create(
            shop.myshopify_domain, topic, f"{capture.url}/webhooks/"
        )
    devshop.client.theme_publish(
        shop.myshopify_domain, "Sense", background="#FDFBF7", text="#242833", button="#C7392F"
    )
    _post_captured(devshop, capture, client, shop, "themes/publish")
    rq_worker()

    # then pages and emails take its colours
    look = brand_look(shop=shop)
    assert (look.accent, look.text, look.background) == ("#c7392f", "#242833", "#fdfbf7")
    assert ShopBranding.objects.get(shop=shop).theme_name == "Sense"
    assert "--pp-accent: #c7392f;" in tracking_html(client, shop)

    # and a colour saved later in the theme editor (themes/update of the main theme) follows
    devshop.client.theme_colours_save(shop.myshopify_domain, button="#0B5FFF")
    _post_captured(devshop, capture, client, shop, "themes/update")
    rq_worker()
    assert brand_look(shop=shop).accent == "#0b5fff"


@pytest.mark.django_db(transaction=True)
def test_a_merchant_who_chose_their_colours_keeps_them_and_can_follow_the_theme_again(
    devshop, capture, client, rq_worker
):
    shop = _install(devshop)
    rq_worker()
    branding_save(
        shop=shop,
        change=BrandingChange(
            accent_color="#c2185b",
            text_color="#222222",
            background_color="#ffffff",
            font="georgia",
            follows_theme=False,
        ),
    )
    devshop.client.webhook_subscription_create(
        shop.myshopify_domain, "themes/publish", f"{capture.url}/webhooks/"
    )
    devshop.client.theme_publish(shop.myshopify_domain, "Sense", button="#C7392F")
    _post_captured(devshop, capture, client, shop, "themes/publish")
    rq_worker()

    # the theme was read (its colours kept for later) but the merchant's are in use
    row = ShopBranding.objects.get(shop=shop)
    assert (row.theme_accent_color, row.theme_name) == ("#c7392f", "Sense")
    assert brand_look(shop=shop).accent == "#c2185b"

    # ticking "use my theme's colours" again brings the theme's back, the own ones kept
    branding_save(
        shop=shop,
        change=BrandingChange(
            accent_color="#c2185b",
            text_color="#222222",
            background_color="#ffffff",
            font="georgia",
            follows_theme=True,
        ),
    )
    assert brand_look(shop=shop).accent == "#c7392f"
    assert ShopBranding.objects.get(shop=shop).accent_color == "#c2185b"


@pytest.mark.django_db(transaction=True)
def test_an_edit_to_an_unpublished_theme_reads_nothing(devshop, client, rq_worker):
    shop = _install(devshop)
    rq_worker()
    read_at = ShopBranding.objects.get(shop=shop).theme_read_at
    payload = {
        "id": 1,
        "name": "Draft",
        "role": "unpublished",
        "updated_at": "2026-12-05T10:00:00Z",
    }

    from shopapp.webhooks.handlers import TOPIC_HANDLERS

    # the handler itself, as the webhook job calls it: no read is queued
    before = Task.objects.filter(key=f"branding.theme_read:{shop.pk}").count()
    TOPIC_HANDLERS["themes/update"](shop=shop, event=None, payload=payload)
    assert Task.objects.filter(key=f"branding.theme_read:{shop.pk}").count() == before
    rq_worker()
    assert ShopBranding.objects.get(shop=shop).theme_read_at == read_at


@pytest.mark.django_db(transaction=True)
def test_without_the_read_themes_scope_the_read_gives_up_quietly_and_keeps_the_defaults(
    devshop, rq_worker, caplog
):
    # given a shop installed before the app asked for read_themes
    shop = _install(
        devshop,
        scopes="read_orders,read_customers,read_fulfillments,write_fulfillments,"
        "write_returns,read_products,write_app_proxy",
    )
    assert "read_themes" in shop.missing_scopes

    rq_worker()

    # then Shopify's ACCESS_DENIED ends the task (no retry can help) and nothing is guessed
    assert not ShopBranding.objects.filter(shop=shop).exists()
    assert brand_look(shop=shop) is None
    task = Task.objects.get(key=f"branding.theme_read:{shop.pk}")
    assert task.status == Task.Status.DONE
    assert any(r.msg == "shopapp.branding.theme_access_denied" for r in caplog.records)

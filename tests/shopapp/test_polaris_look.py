"""The embedded admin's Polaris look: the design tokens come from npm (@shopify/polaris-tokens,
pinned in scripts/polaris) and are served by the app itself (whitenoise), and no admin page
names anything off the app but App Bridge's script. The pages in Chromium (axe, LCP, CLS) are
in tests/browser/test_admin_pages.py."""

import json
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from notifications.defaults import notification_defaults_install
from notifications.models import Sequence
from returns.models import ReturnLineItem, ReturnRequest
from shopapp.models import Shop
from tests.conftest import REPO
from tests.shopapp.test_embedded import HOST, make_shop, token_for
from tests.tracking.tracking_support import fulfil, order_create, scan
from tracking.models import Shipment
from tracking.services import delay_open

pytestmark = pytest.mark.django_db

APP_BRIDGE = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
POLARIS = REPO / "scripts" / "polaris"
SERVED = REPO / "shopapp" / "static" / "polaris" / "polaris-tokens.css"
PACKAGE_CSS = (
    POLARIS / "node_modules" / "@shopify" / "polaris-tokens" / "dist" / "css" / "styles.css"
)


def admin_pages_store() -> tuple[Shop, dict[str, str]]:
    """A store with something on every admin page: an order with two parcels (one delayed),
    the default notification sequences and templates, and a requested return; and every
    page's path."""
    shop = make_shop("polaris-pages.myshopify.com", name="Maple and Thread")
    notification_defaults_install(shop=shop)
    order = order_create(shop)
    fulfil(shop, order, fulfillment_id=901, line_item_ids=[487817672276298554], name="#9999.1")
    fulfil(shop, order, fulfillment_id=902, line_item_ids=[315789986012684393], name="#9999.2")
    first = Shipment.objects.get(shop=shop, fulfillment_id=901)
    second = Shipment.objects.get(shop=shop, fulfillment_id=902)
    scan(shop, first, "in_transit", timezone.now() - timedelta(hours=3))
    delay_open(
        shop=shop,
        order=order,
        shipment=second,
        kind="no_movement",
        dedupe_key=f"shipment:{second.pk}:no_movement",
        detected_at=timezone.now(),
    )
    returned = ReturnRequest.objects.create(
        shop=shop,
        order=order,
        name="#9999-R1",
        status="REQUESTED",
        sync_state="synced",
        resolution="refund",
        customer_email=order.email,
        refund_estimate=Decimal("19.99"),
        currency=order.currency,
    )
    ReturnLineItem.objects.create(
        shop=shop,
        return_request=returned,
        line_item=order.line_items.order_by("shopify_id").first(),
        quantity=1,
        reason="DEFECTIVE",
    )
    sequence = Sequence.objects.filter(shop=shop).order_by("pk").first()
    assert sequence is not None
    pages = {
        "insights": "/app/",
        "orders": "/app/orders",
        "delayed": "/app/orders/delayed",
        "order": f"/app/orders/{order.shopify_id}",
        "sequences": "/app/notifications/",
        "sequence": f"/app/notifications/sequences/{sequence.pk}",
        "templates": "/app/notifications/templates",
        "template": "/app/notifications/templates/shipped/email/en",
        "messages": "/app/notifications/messages",
        "suppressions": "/app/notifications/suppressions",
        "notification-settings": "/app/notifications/settings",
        "returns": "/app/returns/",
        "return": f"/app/returns/{returned.pk}",
        "blocklist": "/app/returns/blocklist",
        "policy": "/app/returns/policy",
        "branding": "/app/branding",
        "privacy": "/app/privacy",
        "settings": "/app/settings",
    }
    return shop, pages


def test_the_polaris_tokens_are_served_by_the_app(client):
    # when
    response = client.get("/static/polaris/polaris-tokens.css")
    # then: whitenoise answers with the committed copy of the package's CSS
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    body = b"".join(response.streaming_content).decode()
    assert body == SERVED.read_text()
    assert body.startswith(":root,.p-theme-light{")
    assert "--p-color-bg:rgba(241, 241, 241, 1)" in body
    assert "--p-font-family-sans:" in body
    # and the package's licence travels with it
    assert client.get("/static/polaris/LICENSE.md").status_code == 200


def test_the_tokens_are_pinned_and_the_served_copy_is_the_packages():
    package = json.loads((POLARIS / "package.json").read_text())
    lock = json.loads((POLARIS / "package-lock.json").read_text())
    version = package["dependencies"]["@shopify/polaris-tokens"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pin an exact version"
    assert lock["packages"]["node_modules/@shopify/polaris-tokens"]["version"] == version
    if not PACKAGE_CSS.exists():
        pytest.skip("scripts/polaris not installed (scripts/setup-extras.sh runs npm ci)")
    # The committed copy is the installed package's file, byte for byte: not edited by hand.
    assert SERVED.read_bytes() == PACKAGE_CSS.read_bytes()


def test_every_admin_page_uses_polaris_and_nothing_off_the_app_but_app_bridge(client):
    # given
    shop, pages = admin_pages_store()
    query = {"shop": shop.myshopify_domain, "host": HOST}
    for name, path in pages.items():
        # when
        response = client.get(path, {**query, "id_token": token_for(shop)})
        # then
        assert response.status_code == 200, name
        html = response.content.decode()
        # What the page loads (scripts, images, frames, stylesheets, icons): links to Shopify's
        # admin or a carrier are places to go, not things the page pulls in.
        loaded = re.findall(r'\s(?:src|srcset)="([^"]+)"', html) + re.findall(
            r'<link\b[^>]*\shref="([^"]+)"', html
        )
        external = [url for url in loaded if re.match(r"(https?:)?//", url)]
        assert external == [APP_BRIDGE], (name, external)
        assert "@import" not in html, name
        sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
        assert sheets[:2] == ["/static/polaris/polaris-tokens.css", "/static/shopapp/embedded.css"]
        assert '<a class="skip-link" href="#main">' in html, name
        assert '<main class="page" id="main" tabindex="-1">' in html, name


def test_no_admin_stylesheet_reaches_off_the_app():
    # Fonts, images and imports in every static stylesheet stay on the app.
    for sheet in REPO.glob("*/static/**/*.css"):
        text = sheet.read_text()
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), sheet
        assert "@import" not in text, sheet


def test_a_page_of_another_shop_is_not_shown_in_the_new_look_either(client):
    # A token for shop B on shop A's order: the look changes nothing of who sees what.
    shop, pages = admin_pages_store()
    other = make_shop("polaris-other.myshopify.com")
    response = client.get(
        pages["order"],
        {"shop": other.myshopify_domain, "host": HOST, "id_token": token_for(other)},
    )
    assert response.status_code == 404
    assert urlencode({"shop": shop.myshopify_domain}) not in response.content.decode()

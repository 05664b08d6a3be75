"""The embedded admin shell: real session tokens, pages scoped by the token's shop, and pages
that render fully on the server (no Shopify CDN needed)."""

import inspect
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from devshop.session_tokens import session_token_mint
from shopapp.auth.tokens import token_encrypt
from shopapp.models import CustomerDataExport, LineItem, Order, OrderEvent, Shop
from tracking import admin_views

pytestmark = pytest.mark.django_db

HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYWxwaGE"  # base64 of admin.shopify.com/store/alpha


def make_shop(domain: str, **fields) -> Shop:
    # A shop with a usable offline token, so the session-token guard runs no token exchange.
    values = {
        "is_active": True,
        "name": domain.split(".")[0].title(),
        "access_token_encrypted": token_encrypt(plain="shpat_test"),
        "access_token_expires_at": timezone.now() + timedelta(hours=1),
    }
    values.update(fields)
    return Shop.objects.create(myshopify_domain=domain, **values)


def make_order(shop: Shop, number: int, **fields) -> Order:
    values = {
        "shopify_id": 5_000_000 + number,
        "name": f"#{number}",
        "order_number": number,
        "email": f"buyer{number}@example.com",
        "customer_first_name": "Ada",
        "customer_last_name": "Lovelace",
        "currency": "EUR",
        "total_price": Decimal("42.50"),
        "financial_status": "paid",
        "shopify_created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number),
    }
    values.update(fields)
    return Order.objects.create(shop=shop, **values)


def token_for(shop: Shop) -> str:
    return session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )


def get_page(client, shop: Shop, path: str, **params):
    query = {"shop": shop.myshopify_domain, "host": HOST, "id_token": token_for(shop), **params}
    return client.get(path, query)


def order_names(html: str) -> list[str]:
    return re.findall(r'class="order-link"[^>]*>([^<]+)</a>', html)


@pytest.fixture
def shop_a() -> Shop:
    return make_shop("alpha.myshopify.com")


@pytest.fixture
def shop_b() -> Shop:
    return make_shop("bravo.myshopify.com")


def test_orders_list_renders_server_side(client, shop_a):
    # given
    make_order(shop_a, 1001)
    # when
    response = get_page(client, shop_a, "/app/orders")
    # then: the content is in the HTML itself, nothing waits on App Bridge to show it
    assert response.status_code == 200
    html = response.content.decode()
    assert order_names(html) == ["#1001"]
    assert "buyer1001@example.com" in html
    assert "42.50 EUR" in html


def test_page_loads_app_bridge_first_in_head(client, shop_a):
    # when
    response = get_page(client, shop_a, "/app/orders")
    # then: Shopify's rule: the api-key meta then app-bridge.js, first in <head>, not deferred
    html = response.content.decode()
    head = html[html.index("<head>") + len("<head>") : html.index("</head>")]
    tags = re.findall(r"<(?:meta|script|link|title)\b[^>]*>", head)
    assert tags[0] == f'<meta name="shopify-api-key" content="{settings.SHOPIFY_API_KEY}">'
    assert tags[1] == '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js">'


def test_page_needs_nothing_from_shopify_cdn_but_app_bridge(client, shop_a):
    # when
    html = get_page(client, shop_a, "/app/orders").content.decode()
    # then: styles and scripts are the app's own; no inline script depends on window.shopify
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == ["https://cdn.shopify.com/shopifycloud/app-bridge.js"]
    assert re.findall(r"<script>", html) == []
    assert '<link rel="stylesheet" href="/static/shopapp/embedded.css">' in html


def test_static_assets_are_served(client):
    # when / then: the page's own CSS and JS answer without collectstatic (whitenoise finders)
    for path in ("/static/shopapp/embedded.css", "/static/shopapp/embedded.js"):
        response = client.get(path)
        assert response.status_code == 200, path


def test_in_app_links_carry_shop_host_and_id_token(client, shop_a):
    # given
    order = make_order(shop_a, 1001)
    token = token_for(shop_a)
    # when
    response = client.get(
        "/app/orders", {"shop": shop_a.myshopify_domain, "host": HOST, "id_token": token}
    )
    # then: every in-app link keeps the navigation, so the next document load is authenticated
    html = response.content.decode()
    links = [unescape(h) for h in re.findall(r'<a data-app-link[^>]*href="([^"]+)"', html)]
    assert (
        f"/app/orders/{order.shopify_id}?shop=alpha.myshopify.com&host={HOST}&id_token={token}"
        in links
    )
    for link in links:
        params = parse_qs(urlsplit(link).query)
        assert params["shop"] == ["alpha.myshopify.com"], link
        assert params["host"] == [HOST], link
        assert params["id_token"] == [token], link
    # and the search form carries them as hidden fields
    assert f'<input type="hidden" name="id_token" value="{token}">' in html
    assert f'<input type="hidden" name="host" value="{HOST}">' in html


def test_links_take_shop_from_the_token_not_from_the_url(client, shop_a):
    # given: a URL that names another shop than the token does
    token = token_for(shop_a)
    # when
    response = client.get("/app/orders", {"shop": "evil.myshopify.com", "id_token": token})
    # then
    html = unescape(response.content.decode())
    assert "evil.myshopify.com" not in html
    assert "/app/privacy?shop=alpha.myshopify.com&id_token=" in html


def test_navigation_links_to_returns(client, shop_a):
    # when
    html = get_page(client, shop_a, "/app/orders").content.decode()
    # then
    assert 'href="/app/returns/?shop=alpha.myshopify.com' in html
    assert "Coming</span>" not in html
    assert "<ui-nav-menu>" in html


def test_orders_list_is_newest_first_and_skips_deleted(client, shop_a):
    # given
    make_order(shop_a, 1001)
    make_order(shop_a, 1003)
    make_order(shop_a, 1002)
    make_order(shop_a, 1004, deleted_at=timezone.now())
    # when
    html = get_page(client, shop_a, "/app/orders").content.decode()
    # then
    assert order_names(html) == ["#1003", "#1002", "#1001"]


@pytest.mark.parametrize("query", ["#1002", "1002", " #1002 "])
def test_orders_search_by_name_with_or_without_hash(client, shop_a, query):
    # given
    make_order(shop_a, 1001)
    make_order(shop_a, 1002)
    make_order(shop_a, 2002)
    # when
    html = get_page(client, shop_a, "/app/orders", q=query).content.decode()
    # then
    assert order_names(html) == ["#1002"]


def test_orders_search_by_email_ignores_case(client, shop_a):
    # given
    make_order(shop_a, 1001, email="grace@example.com")
    make_order(shop_a, 1002, email="ada@example.com")
    # when
    html = get_page(client, shop_a, "/app/orders", q="Grace@Example.com").content.decode()
    # then
    assert order_names(html) == ["#1001"]


def test_orders_search_without_match_says_so(client, shop_a):
    # given
    make_order(shop_a, 1001)
    # when
    html = get_page(client, shop_a, "/app/orders", q="#9999").content.decode()
    # then
    assert order_names(html) == []
    assert "No orders match “#9999”." in html


def test_orders_list_pages_by_25(client, shop_a):
    # given: 30 orders, #1001 the oldest
    for number in range(1001, 1031):
        make_order(shop_a, number)
    # when
    first = get_page(client, shop_a, "/app/orders").content.decode()
    second = get_page(client, shop_a, "/app/orders", page="2").content.decode()
    # then
    assert order_names(first) == [f"#{n}" for n in range(1030, 1005, -1)]
    assert order_names(second) == [f"#{n}" for n in range(1005, 1000, -1)]
    assert "Page 1 of 2" in first
    next_link = unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))
    assert parse_qs(urlsplit(next_link).query)["page"] == ["2"]
    assert parse_qs(urlsplit(next_link).query)["shop"] == ["alpha.myshopify.com"]


def test_paging_keeps_the_search(client, shop_a):
    # given: 26 orders of one customer, one of another
    for number in range(1001, 1027):
        make_order(shop_a, number, email="many@example.com")
    make_order(shop_a, 1100, email="other@example.com")
    # when
    first = get_page(client, shop_a, "/app/orders", q="many@example.com").content.decode()
    # then
    next_link = unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))
    assert parse_qs(urlsplit(next_link).query)["q"] == ["many@example.com"]
    second = client.get("/app/orders" + next_link).content.decode()
    assert order_names(second) == ["#1001"]


def test_order_page_shows_header_items_totals_and_customer(client, shop_a):
    # given
    order = make_order(
        shop_a,
        1001,
        subtotal_price=Decimal("40.00"),
        total_shipping=Decimal("5.00"),
        total_discounts=Decimal("2.50"),
        fulfillment_status="partial",
    )
    LineItem.objects.create(
        shop=shop_a,
        order=order,
        shopify_id=1,
        title="Blue mug",
        sku="MUG-1",
        quantity=2,
        price=Decimal("20.00"),
    )
    # when
    response = get_page(client, shop_a, f"/app/orders/{order.shopify_id}")
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>#1001</h1>" in html
    assert "Ada Lovelace" in html
    assert "buyer1001@example.com" in html
    assert '<span class="badge badge--success">Payment: Paid</span>' in html
    assert '<span class="badge badge--warning">Partially fulfilled</span>' in html
    assert "Blue mug" in html
    assert "MUG-1" in html
    assert '<dt class="strong">Total</dt><dd class="strong">42.50 EUR</dd>' in html
    assert "<dt>Shipping</dt><dd>5.00 EUR</dd>" in html


def test_order_timeline_is_newest_first_in_the_shops_timezone(client):
    # given: a shop in New York (UTC-5 in January) and three events out of order
    shop = make_shop("alpha.myshopify.com", timezone="America/New_York")
    order = make_order(shop, 1001)
    for hour, kind in [(15, "order.paid"), (14, "order.created"), (16, "shipment.in_transit")]:
        OrderEvent.objects.create(
            shop=shop,
            order=order,
            kind=kind,
            occurred_at=datetime(2026, 1, 15, hour, 0, tzinfo=UTC),
            source=OrderEvent.Source.WEBHOOK,
            summary=f"summary of {kind}",
            detail={"carrier": "UPS"} if kind.startswith("shipment") else {},
        )
    # when
    html = get_page(client, shop, f"/app/orders/{order.shopify_id}").content.decode()
    # then
    assert re.findall(r'data-kind="([^"]+)"', html) == [
        "shipment.in_transit",
        "order.paid",
        "order.created",
    ]
    assert "Jan 15, 2026, 11:00 AM EST" in html  # 16:00 UTC
    assert "Jan 15, 2026, 9:00 AM EST" in html  # 14:00 UTC
    assert "times in America/New_York" in html
    # in plain words (tests/tracking/test_support.py covers every kind)
    assert ">Parcel on its way</span>" in html
    assert ">Payment received</span>" in html


def test_order_page_of_a_deleted_order_still_shows_its_timeline(client, shop_a):
    # given
    order = make_order(shop_a, 1001, deleted_at=timezone.now())
    # when
    response = get_page(client, shop_a, f"/app/orders/{order.shopify_id}")
    # then
    assert response.status_code == 200
    assert "Deleted in Shopify" in response.content.decode()


def test_another_shops_order_is_not_found(client, shop_a, shop_b):
    # given: an order of shop A
    order = make_order(shop_a, 1001)
    # when: shop B's token asks for it
    response = get_page(client, shop_b, f"/app/orders/{order.shopify_id}")
    # then
    assert response.status_code == 404
    assert b"buyer1001@example.com" not in response.content


def test_orders_list_and_search_never_show_another_shops_orders(client, shop_a, shop_b):
    # given
    make_order(shop_a, 1001)
    make_order(shop_b, 2001)
    # when
    listed = get_page(client, shop_b, "/app/orders").content.decode()
    searched = get_page(client, shop_b, "/app/orders", q="buyer1001@example.com").content.decode()
    # then
    assert order_names(listed) == ["#2001"]
    assert order_names(searched) == []


def test_document_without_a_valid_token_shows_no_data(client, shop_a):
    # given
    make_order(shop_a, 1001)
    forged = session_token_mint(
        shop_domain=shop_a.myshopify_domain,
        secret="not-the-secret",
        audience=settings.SHOPIFY_API_KEY,
    )
    # when
    response = client.get("/app/orders", {"shop": shop_a.myshopify_domain, "id_token": forged})
    # then: the guard sends the document to the bounce page, the page is never rendered
    assert response.status_code == 302
    assert b"#1001" not in response.content


def test_reauth_banner_for_a_shop_waiting_for_the_merchant(rf):
    # given: a shop whose refresh token died. The session guard would run a token exchange
    # first, so the view is called behind it, as the guard calls it
    shop = make_shop("alpha.myshopify.com", needs_reauth=True)
    request = rf.get("/app/orders", {"shop": shop.myshopify_domain})
    request.shop = shop
    # when
    response = inspect.unwrap(admin_views.order_list)(request)
    # then
    html = response.content.decode()
    assert 'data-banner="reauth"' in html
    assert "Order updates, tracking and messages are paused." in html


def test_missing_scopes_banner(client):
    # given
    shop = make_shop("alpha.myshopify.com", missing_scopes="read_returns")
    # when
    html = get_page(client, shop, "/app/orders").content.decode()
    # then
    assert 'data-banner="scopes"' in html
    assert "The app needs read_returns to work fully." in html
    assert 'data-banner="reauth"' not in html


def test_healthy_shop_shows_no_banner(client, shop_a):
    # when
    html = get_page(client, shop_a, "/app/orders").content.decode()
    # then
    assert "data-banner=" not in html


def test_privacy_lists_the_shops_exports_with_download_links(client, shop_a, shop_b):
    # given
    mine = CustomerDataExport.objects.create(
        shop=shop_a,
        data_request_id=9999,
        customer_id=7,
        customer_email="ada@example.com",
        data={"orders": []},
    )
    CustomerDataExport.objects.create(
        shop=shop_b, data_request_id=8888, customer_id=8, customer_email="bob@example.com"
    )
    # when
    html = unescape(get_page(client, shop_a, "/app/privacy").content.decode())
    # then
    assert "ada@example.com" in html
    assert "bob@example.com" not in html
    assert f"/app/privacy/exports/{mine.pk}.json?shop=alpha.myshopify.com" in html


def test_privacy_export_downloads_as_json(client, shop_a):
    # given
    export = CustomerDataExport.objects.create(
        shop=shop_a,
        data_request_id=9999,
        customer_id=7,
        customer_email="ada@example.com",
        data={"orders": [{"name": "#1001", "email": "ada@example.com"}]},
    )
    # when
    response = get_page(client, shop_a, f"/app/privacy/exports/{export.pk}.json")
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="customer-data-request-{export.pk}.json"'
    )
    assert response["Cache-Control"] == "no-store"
    body = json.loads(response.content)
    assert body["shop"] == "alpha.myshopify.com"
    assert body["data_request_id"] == 9999
    assert body["customer_id"] == 7
    assert body["data"] == {"orders": [{"name": "#1001", "email": "ada@example.com"}]}


def test_another_shops_export_is_not_found(client, shop_a, shop_b):
    # given
    export = CustomerDataExport.objects.create(
        shop=shop_a, customer_id=7, customer_email="ada@example.com", data={"x": 1}
    )
    # when
    response = get_page(client, shop_b, f"/app/privacy/exports/{export.pk}.json")
    # then
    assert response.status_code == 404
    assert b"ada@example.com" not in response.content


def test_export_download_logs_no_shopper_data(client, shop_a, caplog):
    # given
    export = CustomerDataExport.objects.create(
        shop=shop_a, customer_id=7, customer_email="ada@example.com", data={"x": 1}
    )
    # when
    with caplog.at_level("INFO"):
        get_page(client, shop_a, f"/app/privacy/exports/{export.pk}.json")
    # then
    records = [r for r in caplog.records if r.getMessage() == "embedded.privacy.export_downloaded"]
    assert len(records) == 1
    assert records[0].export_id == export.pk
    assert "ada@example.com" not in caplog.text


def test_settings_page_shows_the_shop(client):
    # given
    shop = make_shop("alpha.myshopify.com", timezone="Europe/Paris")
    # when
    html = get_page(client, shop, "/app/settings").content.decode()
    # then
    assert "<dd>alpha.myshopify.com</dd>" in html
    assert "<dd>Europe/Paris</dd>" in html

"""The devshop's storefront and app proxy: a capture server plays the app's /proxy/, so each
test sees exactly what Shopify's proxy would hand the app, and what it hands the shopper."""

import time
import uuid

import pytest
import requests
from django.conf import settings

from shopapp.proxy import app_proxy_signature_valid
from tests.conftest import start_devshop
from tests.devshop.capture_server import CaptureServer, Reply

TIMEOUT = 10


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    """A devshop whose app (APP_URL, so the proxy target APP_URL/proxy/) is the capture server."""
    server = start_devshop(
        tmp_path_factory.mktemp("devshop-storefront"),
        {"APP_URL": capture.url, "SHOPIFY_APP_PROXY_SUBPATH": "postpurchase"},
    )
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def shop(store, capture):
    capture.reset()
    domain = f"sf-{uuid.uuid4().hex[:10]}.myshopify.com"
    store.client.shop_create(domain, name="Acme Outdoor")
    store.client.app_install(domain)
    return domain


@pytest.fixture
def shopper():
    """A browser: keeps the storefront's cookies."""
    with requests.Session() as session:
        yield session


def proxy_url(store, shop: str, path: str) -> str:
    return store.client.app_proxy_url(shop, path)


def test_proxy_adds_shopify_parameters_and_a_valid_signature(store, capture, shop, shopper):
    # given a shopper opening the tracking page with their own parameters
    before = int(time.time())

    # when the storefront proxies it
    response = shopper.get(
        proxy_url(store, shop, "track") + "?order=1001&extra=1&extra=2", timeout=TIMEOUT
    )

    # then the app got /proxy/track with the shopper's query plus Shopify's, signed
    assert response.status_code == 200
    [received] = capture.received()
    assert (received.method, received.path) == ("GET", "/proxy/track")
    pairs = received.query_pairs
    assert pairs[:3] == [("order", "1001"), ("extra", "1"), ("extra", "2")]
    query = dict(pairs)
    assert query["shop"] == shop
    assert query["logged_in_customer_id"] == ""
    assert query["path_prefix"] == "/apps/postpurchase"
    assert before <= int(query["timestamp"]) <= int(time.time())
    assert [key for key, _ in pairs][-1] == "signature"
    assert app_proxy_signature_valid(pairs, secret=settings.SHOPIFY_API_SECRET)
    # and a tampered value breaks it
    tampered = [(k, "1002" if k == "order" else v) for k, v in pairs]
    assert not app_proxy_signature_valid(tampered, secret=settings.SHOPIFY_API_SECRET)


def test_a_shopper_cannot_choose_the_parameters_shopify_sets(store, capture, shop, shopper):
    # when a shopper puts Shopify's parameters in the URL themselves
    shopper.get(
        proxy_url(store, shop, "returns")
        + "?logged_in_customer_id=5&shop=victim.myshopify.com&signature=x&timestamp=1",
        timeout=TIMEOUT,
    )

    # then the app sees Shopify's values only, once each
    [received] = capture.received()
    keys = [key for key, _ in received.query_pairs]
    assert sorted(keys) == sorted(
        ["shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature"]
    )
    assert dict(received.query_pairs)["shop"] == shop
    assert dict(received.query_pairs)["logged_in_customer_id"] == ""


def test_post_keeps_method_body_and_content_type(store, capture, shop, shopper):
    # when the shopper submits a form through the proxy
    shopper.post(
        proxy_url(store, shop, "returns/new"),
        data={"order": "#1001", "reason": "too small"},
        timeout=TIMEOUT,
    )

    # then the app receives the same request
    [received] = capture.received()
    assert (received.method, received.path) == ("POST", "/proxy/returns/new")
    assert received.body == b"order=%231001&reason=too+small"
    assert received.header("Content-Type") == "application/x-www-form-urlencoded"
    assert app_proxy_signature_valid(received.query_pairs, secret=settings.SHOPIFY_API_SECRET)


def test_forwarded_headers_are_added(store, capture, shop, shopper):
    shopper.get(proxy_url(store, shop, "track"), timeout=TIMEOUT)

    [received] = capture.received()
    assert received.header("X-Forwarded-For") == "127.0.0.1"
    assert received.header("X-Forwarded-Host") == shop


def test_cookies_are_stripped_both_ways(store, capture, shop, shopper):
    # given an app that tries to set a cookie and sends headers Shopify disallows
    capture.replies = [
        Reply(
            status=200,
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Set-Cookie": "sessionid=abc; Path=/",
                "X-Powered-By": "Django",
                "P3P": 'CP="x"',
                "Cache-Control": "no-store",
                "X-App-Version": "7",
            },
            body=b"<p>page</p>",
        )
    ]

    # when a shopper with cookies of their own opens the page
    response = shopper.get(
        proxy_url(store, shop, "track"), headers={"Cookie": "_shopify_y=1; cart=abc"}, timeout=10
    )

    # then the app saw no Cookie, and the shopper got no Set-Cookie nor the disallowed headers
    [received] = capture.received()
    assert "cookie" not in received.header_names()
    assert "set-cookie" not in {name.lower() for name in response.headers}
    assert "x-powered-by" not in {name.lower() for name in response.headers}
    assert "p3p" not in {name.lower() for name in response.headers}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-App-Version"] == "7"
    assert response.content == b"<p>page</p>"
    assert shopper.cookies.get("sessionid") is None


def test_liquid_is_rendered_inside_the_theme_layout(store, capture, shop, shopper):
    # given an app answering Liquid
    capture.replies = [
        Reply(
            headers={"Content-Type": "application/liquid"},
            body=b"<section id='app'>Tracking for {{ shop.name }}: {{ 'on its way' | upcase }}"
            b"</section>",
        )
    ]

    # when the shopper opens the page
    response = shopper.get(proxy_url(store, shop, "track"), timeout=TIMEOUT)

    # then it is rendered, inside the store's layout (header with nav, footer)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.text
    assert "<section id='app'>Tracking for Acme Outdoor: ON ITS WAY</section>" in html
    assert '<header class="site-header">' in html
    assert f"/store/{shop}/apps/postpurchase/returns" in html
    assert '<footer class="site-footer">' in html
    assert (
        html.index('<header class="site-header">')
        < html.index("<section id='app'>")
        < html.index('<footer class="site-footer">')
    )


def test_layout_none_returns_the_body_alone(store, capture, shop, shopper):
    capture.replies = [
        Reply(
            headers={"Content-Type": "application/liquid; charset=utf-8"},
            body=b"{% layout none %}<p>bare {{ shop.name }}</p>",
        )
    ]

    response = shopper.get(proxy_url(store, shop, "track"), timeout=TIMEOUT)

    assert response.text.strip() == "<p>bare Acme Outdoor</p>"


def test_other_content_types_pass_through_unchanged(store, capture, shop, shopper):
    capture.replies = [
        Reply(status=404, headers={"Content-Type": "application/json"}, body=b'{"error":"nope"}')
    ]

    response = shopper.get(proxy_url(store, shop, "track.json"), timeout=TIMEOUT)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == b'{"error":"nope"}'


def test_a_redirect_from_the_app_goes_to_the_browser(store, capture, shop, shopper):
    # given an app that answers a POST with a relative 303 (Post/Redirect/Get)
    capture.replies = [
        Reply(status=303, headers={"Location": "track/abc?locale=fr"}, body=b""),
        Reply(status=200, headers={"Content-Type": "text/plain"}, body=b"arrived"),
    ]

    # when the shopper's browser posts through the storefront
    response = shopper.post(proxy_url(store, shop, "track"), data={"a": "1"}, timeout=TIMEOUT)

    # then the browser gets the redirect, resolves it against the storefront URL and GETs it
    # through the proxy again (signed afresh)
    assert response.status_code == 200
    assert response.content == b"arrived"
    assert response.history[0].status_code == 303
    assert response.history[0].headers["Location"] == "track/abc?locale=fr"
    assert response.url.startswith(proxy_url(store, shop, "track/abc"))
    first, second = capture.received()
    assert (first.method, first.path) == ("POST", "/proxy/track")
    assert (second.method, second.path) == ("GET", "/proxy/track/abc")
    assert app_proxy_signature_valid(second.query_pairs, secret=settings.SHOPIFY_API_SECRET)
    assert dict(second.query_pairs)["locale"] == "fr"


def test_logged_in_customer_id_is_passed_and_the_login_cookie_is_not(store, capture, shop, shopper):
    # given a shopper who logs in on the storefront as customer 4242
    login = shopper.post(
        store.client.storefront_url(shop, "/account/login"),
        data={"customer_id_entered": "4242"},
        timeout=TIMEOUT,
    )
    assert login.status_code == 200  # redirected to the store's home page

    # when they open an app page
    shopper.get(proxy_url(store, shop, "returns"), timeout=TIMEOUT)

    # then the app learns who they are only from the signed parameter
    [received] = capture.received()
    assert dict(received.query_pairs)["logged_in_customer_id"] == "4242"
    assert "cookie" not in received.header_names()
    assert app_proxy_signature_valid(received.query_pairs, secret=settings.SHOPIFY_API_SECRET)

    # and after logging out, nobody is logged in
    capture.reset()
    shopper.get(store.client.storefront_url(shop, "/account/logout"), timeout=TIMEOUT)
    shopper.get(proxy_url(store, shop, "returns"), timeout=TIMEOUT)
    [received] = capture.received()
    assert dict(received.query_pairs)["logged_in_customer_id"] == ""


def test_login_refuses_a_non_numeric_customer(store, shop, shopper):
    response = shopper.post(
        store.client.storefront_url(shop, "/account/login"),
        data={"customer_id_entered": "alice"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert not shopper.cookies


def test_home_page_links_to_tracking_and_returns(store, shop, shopper):
    response = shopper.get(store.client.storefront_url(shop), timeout=TIMEOUT)

    assert response.status_code == 200
    assert "Acme Outdoor" in response.text
    assert f'href="/store/{shop}/apps/postpurchase/track"' in response.text
    assert f'href="/store/{shop}/apps/postpurchase/returns"' in response.text
    assert f'href="/store/{shop}/account/login"' in response.text


def test_no_proxy_while_the_app_is_not_installed(store, capture, shopper):
    capture.reset()
    domain = f"sf-{uuid.uuid4().hex[:10]}.myshopify.com"
    store.client.shop_create(domain)

    response = shopper.get(proxy_url(store, domain, "track"), timeout=TIMEOUT)

    assert response.status_code == 404
    assert capture.received() == []

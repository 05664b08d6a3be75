"""The tracking page through the devshop's storefront, as a shopper meets it: the devshop
forwards /store/<shop>/apps/postpurchase/track… to the live app's /proxy/track… signed as
Shopify signs it, strips cookies, and renders application/liquid answers with python-liquid in
its theme layout. So a Liquid payload that survived the app would really run here.

    requests (shopper) ─▶ devshop storefront ─ signed proxy ─▶ live_server (the app, test DB)
"""

import re
import subprocess
import time
import uuid
from urllib.parse import urlencode, urljoin

import pytest
import requests
from django.conf import settings

from shopapp.proxy import app_proxy_signature
from shopapp.storefront.links import tracking_link_token
from tests.conftest import start_devshop
from tests.tracking.test_page import (
    PAYLOAD,
    make_event,
    make_line_item,
    make_order,
    make_shipment,
    make_shop,
)
from tracking.models import Stage, TrackingPageView, TrackingSettings

TIMEOUT = 15
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def storefront(live_server, tmp_path_factory):
    """A devshop whose app (APP_URL, so its proxy target) is the live test server."""
    server = start_devshop(
        tmp_path_factory.mktemp("devshop-tracking"),
        {"APP_URL": live_server.url, "SHOPIFY_APP_PROXY_SUBPATH": "postpurchase"},
    )
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def shop(storefront, transactional_db, settings):
    """The same shop on both sides: a devshop store with the app installed, and its Shop row."""
    import redis

    connection = redis.Redis.from_url(settings.REDIS_URL)
    for key in connection.scan_iter("tracking:rl:*"):
        connection.delete(key)
    domain = f"track-{uuid.uuid4().hex[:10]}.myshopify.com"
    storefront.client.shop_create(domain, name="Acme Outdoor")
    storefront.client.app_install(domain)
    return make_shop(domain, name="Acme Outdoor", timezone="Europe/Paris")


@pytest.fixture
def shopper():
    with requests.Session() as session:
        yield session


def track_url(storefront, shop, path: str = "track") -> str:
    return storefront.client.app_proxy_url(shop.myshopify_domain, path)


def order_with_history(shop, number: int = 1001, **fields):
    order = make_order(shop, number, **fields)
    line = make_line_item(order, "Trail shoe", 1)
    shipment = make_shipment(order, stage=Stage.IN_TRANSIT, items=[(line, 1)])
    make_event(shipment, "in_transit", stage="in_transit", message="Arrived at hub")
    return order


def region(html: str) -> str:
    """The app's part of the storefront page (the theme's header and footer around it)."""
    start = html.index('<section class="pp-track"')
    return html[start : html.rindex("</section>") + len("</section>")]


def lookup(shopper, storefront, shop, **data):
    form = shopper.get(track_url(storefront, shop), timeout=TIMEOUT)
    token = FORM_TOKEN.search(form.text).group(1)
    return shopper.post(
        track_url(storefront, shop),
        data={"form_token": token, "lookup": "order", **data},
        timeout=TIMEOUT,
    )


def test_a_shopper_looks_up_an_order_inside_the_theme(storefront, shop, shopper):
    # given an order with a shipment and its history
    order = order_with_history(shop)

    # when the shopper opens the tracking page on the storefront and looks the order up
    page = shopper.get(track_url(storefront, shop), timeout=TIMEOUT)
    found = lookup(shopper, storefront, shop, order="#1001", contact="ada@example.com")

    # then both pages are the app's, inside the store's theme, with no cookie from the app
    assert page.status_code == 200
    assert '<header class="site-header">' in page.text
    assert '<main id="MainContent">' in page.text
    assert "Find your order" in region(page.text)
    assert found.status_code == 200
    html = region(found.text)
    assert "Order #1001" in html
    assert "Arrived at hub" in html
    assert "Set-Cookie" not in found.headers
    assert TrackingPageView.objects.get(order=order).views == 1


def test_the_signed_link_works_through_the_storefront_and_its_links_resolve(
    storefront, shop, shopper
):
    order = order_with_history(shop, fulfillment_status="fulfilled")
    url = track_url(storefront, shop, "track/" + tracking_link_token(order))

    response = shopper.get(url, timeout=TIMEOUT)

    html = region(response.text)
    assert response.status_code == 200
    assert "Order #1001" in html
    # the relative links land on the storefront's proxy paths, whatever the base
    back = re.search(r'<a href="([^"]+)">Track another order</a>', html).group(1)
    assert urljoin(url, back) == track_url(storefront, shop)
    returns = re.search(r'class="pp-button" href="([^"]+)"', html).group(1)
    assert urljoin(url, returns.replace("&amp;", "&")).startswith(
        track_url(storefront, shop, "returns?order=1001&token=")
    )


def test_liquid_in_order_data_and_in_the_lookup_is_not_run_by_the_storefront(
    storefront, shop, shopper
):
    # given order data full of Liquid, a custom message with Liquid, and a shopper typing some
    TrackingSettings.objects.create(shop=shop, custom_message=PAYLOAD)
    order = make_order(shop, 1002)
    line = make_line_item(order, PAYLOAD, 1)
    shipment = make_shipment(order, items=[(line, 1)], tracking_company=PAYLOAD)
    make_event(shipment, message=PAYLOAD, city=PAYLOAD)

    # when the storefront renders the order's page, and a lookup that echoes what was typed
    page = shopper.get(
        track_url(storefront, shop, "track/" + tracking_link_token(order)), timeout=TIMEOUT
    )
    typed = lookup(shopper, storefront, shop, order=PAYLOAD[:40], contact="x")

    # then Liquid ran on none of it: the theme layout is still there ({% layout none %} not
    # obeyed), the shop's name was not substituted, and the text reads as typed
    for response in (page, typed):
        assert response.status_code == 200
        assert '<header class="site-header">' in response.text
        html = region(response.text)
        assert "&#123;&#123; shop.name &#125;&#125;" in html
        assert "Acme Outdoor" not in html
    assert region(page.text).count("&#123;% layout none %&#125;") >= 4


def test_a_logged_in_customer_sees_their_orders_and_no_one_elses(storefront, shop, shopper):
    # given two customers' orders
    order_with_history(shop, 2001, customer_id=424242)
    order_with_history(shop, 2002, customer_id=515151)

    # when customer 424242 logs in on the storefront and opens the tracking page
    login = storefront.client.storefront_url(shop.myshopify_domain, "/account/login")
    shopper.post(login, data={"customer_id_entered": "424242"}, timeout=TIMEOUT)
    html = region(shopper.get(track_url(storefront, shop), timeout=TIMEOUT).text)

    # then only their order is listed
    assert "Your recent orders" in html
    assert "Order #2001" in html
    assert "#2002" not in html


def test_requests_not_signed_by_shopify_are_refused(storefront, shop, live_server):
    order = order_with_history(shop)
    token = tracking_link_token(order)
    stale = [
        ("shop", shop.myshopify_domain),
        ("logged_in_customer_id", ""),
        ("path_prefix", "/apps/postpurchase"),
        ("timestamp", str(int(time.time()) - 3600)),
    ]
    stale.append(("signature", app_proxy_signature(stale, secret=settings.SHOPIFY_API_SECRET)))

    unsigned = requests.get(f"{live_server.url}/proxy/track/{token}", timeout=TIMEOUT)
    replayed = requests.get(
        f"{live_server.url}/proxy/track/{token}?{urlencode(stale)}", timeout=TIMEOUT
    )

    for response in (unsigned, replayed):
        assert response.status_code == 403
        assert response.text == "Forbidden"


def test_the_storefront_language_reaches_the_page(storefront, shop, shopper):
    order_with_history(shop)

    page = shopper.get(
        track_url(storefront, shop), headers={"Accept-Language": "de-DE,de;q=0.9"}, timeout=10
    )
    found = shopper.post(
        track_url(storefront, shop) + "?locale=fr",
        data={
            "form_token": FORM_TOKEN.search(page.text).group(1),
            "order": "1001",
            "contact": "ada@example.com",
        },
        timeout=TIMEOUT,
    )

    assert "Bestellung verfolgen" in region(page.text)
    assert "Commande #1001" in region(found.text)
    assert "Historique de suivi" in region(found.text)


def test_the_rate_limit_page_reaches_the_shopper(storefront, shop, shopper, settings):
    settings.TRACKING_LOOKUP_RATE_PER_IP = 2
    settings.TRACKING_LOOKUP_RATE_PER_ORDER = 100

    answers = [
        lookup(shopper, storefront, shop, order=str(3000 + i), contact="eve@example.com")
        for i in range(3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Too many attempts" in region(answers[-1].text)
    assert '<header class="site-header">' in answers[-1].text

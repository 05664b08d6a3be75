"""The returns portal through the devshop's storefront: the devshop signs every request as
Shopify's proxy does and renders our Liquid answer inside its theme, so what a shopper gets is
tested end to end. The app is pytest-django's live server; the job that sends a request to
Shopify runs through Redis with a burst worker.
"""

import re
import subprocess
from html import unescape

import pytest
import requests

from returns import shopify
from returns.eligibility import order_eligibility
from returns.models import ReturnRequest
from shopapp.admin_api.client import admin_client_for_shop
from tests.conftest import start_devshop
from tests.returns.test_portal import JPEG, delivered_order, lines, portal_shop

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 15
HIDDEN_RE = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@pytest.fixture(scope="module")
def store(live_server, tmp_path_factory):
    """A devshop whose app proxy target is the live app."""
    server = start_devshop(
        tmp_path_factory.mktemp("returns-storefront"), {"APP_URL": live_server.url}
    )
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def app(store, settings, live_server, tmp_path):
    settings.APP_URL = live_server.url
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = store.admin_url_template
    # The store's webhooks would reach the live app on its own thread while the test thread
    # uses the same in-memory SQLite connection: the orders are mirrored by reconciliation
    # instead, and deliveries wait.
    store.client.knobs_set(
        access_token_ttl=3600, refresh_token_ttl=90 * 86400, webhook_delivery_paused=True
    )
    return store


@pytest.fixture
def shopper():
    with requests.Session() as session:
        yield session


def hidden(html: str, form_index: int = 0) -> dict[str, str]:
    """The hidden fields of the page's ``form_index``-th form."""
    form = html.split("<form")[form_index + 1].split("</form>")[0]
    return {name: unescape(value) for name, value in HIDDEN_RE.findall(form)}


def test_a_shopper_returns_an_item_through_the_storefront(app, shopper, rq_worker):
    # given a delivered order in the store, mirrored in the app
    shop = portal_shop(app)
    order = delivered_order(app, shop, line_items=2)
    first = lines(order)[0]
    url = app.client.app_proxy_url(shop.myshopify_domain, "returns")

    # when the shopper opens the portal from the tracking page's hint
    page = shopper.get(url, params={"order": order.name}, timeout=TIMEOUT)

    # then the store's theme wraps the lookup form, the number filled in
    assert page.status_code == 200
    assert '<header class="site-header">' in page.text
    assert f'value="{order.name}"' in page.text

    # when they look it up, choose one item with a photo, and review
    found = shopper.post(
        url,
        data={**hidden(page.text), "order": order.name, "contact": order.email},
        timeout=TIMEOUT,
    )
    assert f'name="quantity-{first.pk}"' in found.text, found.text[-3000:]
    review = shopper.post(
        url,
        data={
            **hidden(found.text),
            f"quantity-{first.pk}": "1",
            f"reason-{first.pk}": "DEFECTIVE",
            f"note-{first.pk}": "Sole came off",
            "resolution": "store_credit",
        },
        files={f"photos-{first.pk}": ("sole.jpg", JPEG, "image/jpeg")},
        timeout=TIMEOUT,
    )
    assert "Review your return" in review.text, review.text[-3000:]
    assert "1 photo" in review.text

    # and submit
    done = shopper.post(url, data=hidden(review.text), timeout=TIMEOUT)

    # then the request is stored with its photo, and the status page says it is on its way
    assert done.status_code == 201
    assert "we've received your return request" in done.text
    [rr] = ReturnRequest.objects.filter(shop=shop)
    [line] = rr.line_items.all()
    assert line.photos.count() == 1
    assert line.photos.get().content_type == "image/jpeg"
    assert rr.resolution == "store_credit"

    # when the job sends it to Shopify, the status link shows it requested
    rq_worker()
    rr.refresh_from_db()
    assert rr.sync_state == ReturnRequest.SyncState.SYNCED
    link = re.search(r'href="(returns/[^"]+)"', done.text).group(1)
    status = shopper.get(url.rsplit("/", 1)[0] + "/" + unescape(link), timeout=TIMEOUT)
    assert status.status_code == 200
    assert 'data-status="requested"' in status.text or 'data-status="approved"' in status.text
    assert '<header class="site-header">' in status.text


def test_liquid_in_a_note_is_shown_as_text_not_run(app, shopper):
    # given a shopper whose note holds Liquid
    shop = portal_shop(app)
    order = delivered_order(app, shop, line_items=1)
    [line] = lines(order)
    url = app.client.app_proxy_url(shop.myshopify_domain, "returns")
    page = shopper.get(url, timeout=TIMEOUT)
    found = shopper.post(
        url,
        data={**hidden(page.text), "order": order.name, "contact": order.email},
        timeout=TIMEOUT,
    )
    injected = "{{ shop.name }}{% layout none %}"

    # when the review page shows it through the store's Liquid
    review = shopper.post(
        url,
        data={
            **hidden(found.text),
            f"quantity-{line.pk}": "1",
            f"reason-{line.pk}": "UNWANTED",
            f"note-{line.pk}": injected,
            "resolution": "refund",
        },
        timeout=TIMEOUT,
    )

    # then the theme layout is still there and the note is literal text
    assert review.status_code == 200
    assert '<header class="site-header">' in review.text
    assert "&#123;&#123; shop.name &#125;&#125;&#123;% layout none %&#125;" in review.text
    assert unescape("&#123;&#123; shop.name &#125;&#125;") == "{{ shop.name }}"
    assert "Acme Outdoor{% layout" not in review.text


def test_shopifys_user_errors_become_a_clear_status(app, shopper, rq_worker):
    # given a stored request, and the merchant returning the same unit in Shopify's admin
    # before our job sends it
    shop = portal_shop(app)
    order = delivered_order(app, shop, line_items=1)
    [line] = lines(order)
    url = app.client.app_proxy_url(shop.myshopify_domain, "returns")
    page = shopper.get(url, timeout=TIMEOUT)
    found = shopper.post(
        url,
        data={**hidden(page.text), "order": order.name, "contact": order.email},
        timeout=TIMEOUT,
    )
    review = shopper.post(
        url,
        data={
            **hidden(found.text),
            f"quantity-{line.pk}": str(line.quantity),
            f"reason-{line.pk}": "UNWANTED",
            "resolution": "refund",
        },
        timeout=TIMEOUT,
    )
    [elig] = order_eligibility(shop=shop, order=order)
    done = shopper.post(url, data=hidden(review.text), timeout=TIMEOUT)
    assert done.status_code == 201
    shopify.return_request_send(
        admin_client_for_shop(shop),
        order_gid=order.admin_graphql_api_id,
        lines=[
            {"fulfillmentLineItemId": gid, "quantity": quantity, "returnReason": "OTHER"}
            for gid, quantity in elig.fulfillment_lines
        ],
        shipping_fee=0,
        currency="",
    )

    # when the job sends ours
    rq_worker()

    # then it is marked failed, and the status page explains in words, without a trace
    [rr] = ReturnRequest.objects.filter(shop=shop)
    assert rr.sync_state == ReturnRequest.SyncState.FAILED
    assert "returnable quantity" in rr.sync_error
    link = re.search(r'href="(returns/[^"]+)"', done.text).group(1)
    status = shopper.get(url.rsplit("/", 1)[0] + "/" + unescape(link), timeout=TIMEOUT)
    assert 'data-status="failed"' in status.text
    assert "We couldn&#x27;t send your return to the store" in status.text
    assert "returnable quantity" in status.text
    assert "Traceback" not in status.text

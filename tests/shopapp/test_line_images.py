"""Line item pictures: read from the devshop's Admin GraphQL in the background when an order
arrives by webhook, kept when the order's webhooks come again, refreshed by a later read.

    devshop orders/create ─ capture ─▶ /webhooks/ ─ RQ ─ order_upsert ─ Task ─ RQ (syncs)
        ─▶ order_line_images_refresh_job ─ LineItem.image { url(transform) } ─▶ image_url
"""

import io

import pytest
import requests
from django.db import connection
from PIL import Image

from shopapp.admin_api.client import AdminApiClient
from shopapp.models import LineItem, Order, Shop, Task
from shopapp.orders.images import (
    IMAGE_TRANSFORM_PX,
    image_url_clean,
    order_line_images_defer,
    order_line_images_refresh,
)
from shopapp.orders.jobs import order_line_images_refresh_job
from tests.devshop.capture_server import CaptureServer
from tests.returns.flow_support import Store, deliver, shop_installed_with_token

pytestmark = pytest.mark.django_db(transaction=True)

ORDER_TOPICS = ["orders/create", "orders/updated", "orders/fulfilled", "orders/partially_fulfilled"]


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


def _store(devshop, capture) -> Store:
    shop, grant = shop_installed_with_token(devshop, "img")
    domain = shop.myshopify_domain
    for topic in ORDER_TOPICS:
        devshop.client.webhook_subscription_create(domain, topic, f"{capture.url}/webhooks/")
    api = AdminApiClient(domain, grant["access_token"])
    return Store(devshop=devshop, capture=capture, shop=shop, api=api, order=None)  # type: ignore[arg-type]


PRODUCTS = """
query($id: ID!) { order(id: $id) { lineItems(first: 20) { nodes { id product { id } } } } }"""


def _product_ids(store: Store, order: Order) -> dict[int, int]:
    """{line item id: product id} as the store has them."""
    data = store.api.execute(PRODUCTS, {"id": f"gid://shopify/Order/{order.shopify_id}"})
    return {
        int(n["id"].rsplit("/", 1)[-1]): int(n["product"]["id"].rsplit("/", 1)[-1])
        for n in data["order"]["lineItems"]["nodes"]
    }


def test_a_new_orders_line_pictures_are_read_and_survive_its_webhooks(
    devshop, capture, client, rq_worker
):
    # Given a store whose orders reach the app by webhook
    store = _store(devshop, capture)
    (order_id,) = devshop.client.orders_create(store.domain, count=1, line_items=2)

    # When orders/create is processed and the background work runs (a real burst worker)
    deliver(store, client, rq_worker, expect={"orders/create"})

    # Then every line has the devshop's picture, a 128 px transform that resolves to a PNG
    order = Order.objects.get(shop=store.shop, shopify_id=order_id)
    products = _product_ids(store, order)
    lines = list(LineItem.objects.filter(order=order).order_by("id"))
    assert len(lines) == 2
    for line in lines:
        assert line.image_url == (
            f"{devshop.base_url}/cdn/products/{products[line.shopify_id]}.png"
            f"?width={IMAGE_TRANSFORM_PX}&height={IMAGE_TRANSFORM_PX}"
        )
        response = requests.get(line.image_url, timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size == (128, 128)
    # One read per order, done
    tasks = Task.objects.filter(key=f"orders.line-images:{order.pk}")
    assert [t.status for t in tasks] == [Task.Status.DONE]

    # When the order ships: orders/updated (and orders/fulfilled) rewrite its lines
    devshop.client.order_fulfil(store.domain, order_id)
    deliver(store, client, rq_worker, expect={"orders/updated"})

    # Then the pictures are still there (the webhooks carry none and do not wipe them)
    order.refresh_from_db()
    assert order.fulfillment_status == "fulfilled"
    assert [li.image_url for li in LineItem.objects.filter(order=order).order_by("id")] == [
        line.image_url for line in lines
    ]
    # ...and no second read was started: no line was new
    assert Task.objects.filter(key=f"orders.line-images:{order.pk}").count() == 1


def test_a_later_read_stores_what_shopify_says_now(devshop, capture, client, rq_worker):
    # Given an order of two different products whose pictures were read (the store draws
    # two variants at random: two sizes of one shirt share its picture, so draw again)
    store = _store(devshop, capture)
    for _attempt in range(20):
        (order_id,) = devshop.client.orders_create(store.domain, count=1, line_items=2)
        deliver(store, client, rq_worker, expect={"orders/create"})
        order = Order.objects.get(shop=store.shop, shopify_id=order_id)
        first, second = LineItem.objects.filter(order=order).order_by("id")
        products = _product_ids(store, order)
        if products[first.shopify_id] != products[second.shopify_id]:
            break
    else:
        raise AssertionError("the store drew one product for both lines 20 times")
    assert first.image_url
    assert second.image_url
    version = Order.objects.get(pk=order.pk).version

    # When the merchant removes one product's picture and replaces the other's
    devshop.client.product_update(store.domain, products[first.shopify_id], has_image=False)
    cdn = "https://cdn.shopify.example/s/files/1/0001/products/tote.png?v=2"
    devshop.client.product_update(store.domain, products[second.shopify_id], image_url=cdn)
    order_line_images_defer(shop=store.shop, order=order)
    rq_worker()

    # Then the next read clears the one and stores the other
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.image_url == ""
    assert second.image_url == cdn
    if connection.vendor == "postgresql":
        # The order's version moved: the cached tracking page is rendered afresh
        assert Order.objects.get(pk=order.pk).version > version

    # And a read that finds nothing new writes nothing (the version stays)
    version = Order.objects.get(pk=order.pk).version
    assert order_line_images_refresh_job(order.pk) == 0
    assert Order.objects.get(pk=order.pk).version == version


def test_a_read_for_another_shops_order_is_refused(devshop, capture, client, rq_worker):
    store = _store(devshop, capture)
    other = _store(devshop, capture)
    (order_id,) = devshop.client.orders_create(store.domain, count=1, line_items=1)
    deliver(store, client, rq_worker, expect={"orders/create"})
    order = Order.objects.get(shop=store.shop, shopify_id=order_id)
    LineItem.objects.filter(order=order).update(image_url="")

    with pytest.raises(ValueError, match="does not belong"):
        order_line_images_refresh(shop=other.shop, order=order)

    assert list(LineItem.objects.filter(order=order).values_list("image_url", flat=True)) == [""]


def test_the_job_does_nothing_for_a_shop_that_left(devshop, capture, client, rq_worker):
    store = _store(devshop, capture)
    (order_id,) = devshop.client.orders_create(store.domain, count=1, line_items=1)
    deliver(store, client, rq_worker, expect={"orders/create"})
    order = Order.objects.get(shop=store.shop, shopify_id=order_id)
    LineItem.objects.filter(order=order).update(image_url="")
    Shop.objects.filter(pk=store.shop.pk).update(is_active=False)
    calls = devshop.client.admin_api_requests(store.domain)

    assert order_line_images_refresh_job(order.pk) == 0

    assert devshop.client.admin_api_requests(store.domain) == calls
    assert list(LineItem.objects.filter(order=order).values_list("image_url", flat=True)) == [""]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (
            "https://cdn.shopify.com/s/files/1/a.png?v=1",
            "https://cdn.shopify.com/s/files/1/a.png?v=1",
        ),
        ("//cdn.shopify.com/s/files/1/a.png", "https://cdn.shopify.com/s/files/1/a.png"),
        ("http://127.0.0.1:8001/cdn/products/1.png", "http://127.0.0.1:8001/cdn/products/1.png"),
        ("javascript:alert(1)", ""),
        ("data:image/png;base64,AAAA", ""),
        ('https://cdn.example/a.png" onerror="alert(1)', ""),
        ("https://cdn.example/" + "a" * 3000, ""),
        ("/relative.png", ""),
        (None, ""),
    ],
)
def test_only_absolute_http_urls_are_kept(given, kept):
    assert image_url_clean(given) == kept

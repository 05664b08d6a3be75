""" "You may also like" on the tracking page: the shop's products read through the Admin API
from the devshop by a real RQ worker (burst), kept in Redis, shown without any Admin API call
on a page view, left out of the order's own products, turned off by the merchant in the
admin, and off-safe (nothing kept: no section)."""

import json
import re
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shopapp.admin_api.client import AdminApiClient
from shopapp.models import Order, Shop, Task
from shopapp.orders.reconcile import orders_reconcile
from shopapp.storefront.links import tracking_link_token
from tests.tracking.test_page import body, proxy_get
from tests.tracking.test_support import post
from tracking.jobs import product_suggestions_refresh_all_job
from tracking.models import TrackingSettings
from tracking.suggestions import (
    PRODUCT_SUGGESTIONS_QUERY,
    PRODUCTS_FIRST,
    PRODUCTS_SEARCH,
    VARIANTS_FIRST,
    product_suggestions_cached,
    product_suggestions_drop,
    product_suggestions_refresh,
)

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCTS_LIST = """
query { products(first: 50) { nodes { id legacyResourceId title handle
  variants(first: 10) { nodes { id legacyResourceId } } } } }
"""


@pytest.fixture(autouse=True)
def _fresh_redis(settings):
    connection = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in ("tracking:rl:*", "*tracking:suggestions:*", "*tracking:order:*"):
        for key in connection.scan_iter(pattern):
            connection.delete(key)


def _installed_shop(devshop) -> Shop:
    from shopapp.auth.tokens import shop_tokens_assign

    domain = f"sug-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    grant = devshop.client.app_install_with_token(domain)
    now = timezone.now()
    shop = Shop(
        myshopify_domain=domain,
        name="Maple and Thread",
        is_active=True,
        installed_at=now,
        timezone="Europe/Paris",
        primary_locale="en",
    )
    shop_tokens_assign(
        shop=shop,
        access_token=grant["access_token"],
        access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
        refresh_token=grant["refresh_token"],
        refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
    )
    shop.save()
    return shop


def _store_products(devshop, shop) -> list[dict]:
    token = devshop.client.app_install_with_token(shop.myshopify_domain)["access_token"]
    data = AdminApiClient(shop.myshopify_domain, token).execute(PRODUCTS_LIST)
    return data["products"]["nodes"]


def _mirrored_order(devshop, shop) -> Order:
    [order_id] = devshop.client.orders_create(shop.myshopify_domain, count=1)
    orders_reconcile(shop=shop)
    return Order.objects.get(shop=shop, shopify_id=order_id)


def _page(client, shop, order, **kwargs) -> str:
    # In English unless asked (the store's orders come in several languages).
    kwargs.setdefault("extra", [("locale", "en")])
    response = proxy_get(client, shop, "/" + tracking_link_token(order), **kwargs)
    assert response.status_code == 200
    return body(response)


def _cards(html: str) -> list[str]:
    return re.findall(r'<span class="pp-suggestion__title">([^<]*)</span>', html)


def test_the_worker_reads_the_catalogue_and_the_page_shows_it_without_an_admin_call(
    client, devshop, rq_worker
):
    # given an installed shop with an order (the store creates its catalogue with it), one
    # product made a draft and one sold out in the store
    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    products = _store_products(devshop, shop)
    held = {int(line.product_id) for line in order.line_items.all() if line.product_id}
    others = [p for p in products if int(p["legacyResourceId"]) not in held]
    draft, sold_out = others[0], others[1]
    devshop.client.product_status_set(
        shop.myshopify_domain, int(draft["legacyResourceId"]), "DRAFT"
    )
    for variant in sold_out["variants"]["nodes"]:
        devshop.client.variant_update(
            shop.myshopify_domain, int(variant["legacyResourceId"]), available_for_sale=False
        )

    # when the hourly round runs and a burst worker takes the task from the syncs queue
    assert product_suggestions_refresh_all_job() == 1
    task = Task.objects.get(shop=shop, key=f"tracking.suggestions:{shop.pk}")
    assert task.queue == "syncs"
    rq_worker()

    # then the kept list holds active, published, available products only
    rows, digest = product_suggestions_cached(shop=shop)
    assert digest
    kept = {row["product_id"] for row in rows}
    assert int(draft["legacyResourceId"]) not in kept
    assert int(sold_out["legacyResourceId"]) not in kept
    assert 0 < len(rows) <= PRODUCTS_FIRST
    assert all(row["url"].startswith(f"https://{shop.myshopify_domain}/products/") for row in rows)

    # and the page shows up to four of them, none the order holds, with no Admin API call
    calls = devshop.client.admin_api_requests(shop.myshopify_domain)
    html = _page(client, shop, order)
    assert devshop.client.admin_api_requests(shop.myshopify_domain) == calls
    assert "You may also like" in html
    titles = {p["title"] for p in products if int(p["legacyResourceId"]) in held}
    cards = _cards(html)
    assert 1 <= len(cards) <= 4
    assert not titles & set(cards)
    assert draft["title"] not in cards
    # the devshop's products have no media: a neutral box, no <img>
    assert 'class="pp-suggestion__image" aria-hidden="true"' in html
    assert '<img class="pp-suggestion__image"' not in html
    # priced in the page's language
    assert re.search(r'pp-suggestion__price">\$\d+\.\d\d<', html)
    fr = _page(client, shop, order, extra=[("locale", "fr")])
    assert "Vous aimerez aussi" in fr
    assert re.search(r'pp-suggestion__price">\d+,\d\d\xa0\$US<', fr)


def test_the_query_is_within_shopifys_single_query_cost(devshop):
    shop = _installed_shop(devshop)
    devshop.client.orders_create(shop.myshopify_domain, count=1)
    token = devshop.client.app_install_with_token(shop.myshopify_domain)["access_token"]
    client = AdminApiClient(shop.myshopify_domain, token)
    client.execute(
        PRODUCT_SUGGESTIONS_QUERY,
        {"first": PRODUCTS_FIRST, "variantsFirst": VARIANTS_FIRST, "query": PRODUCTS_SEARCH},
    )
    assert client.last_cost["requestedQueryCost"] <= 1000


def test_the_merchant_turns_it_off_in_the_admin_and_the_section_goes(client, devshop, rq_worker):
    # given a shop showing suggestions
    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    product_suggestions_refresh_all_job()
    rq_worker()
    assert "You may also like" in _page(client, shop, order)

    # when the merchant unticks it on the tracking page settings (other choices kept)
    response = post(
        client,
        shop,
        "/app/tracking-page",
        {"show_line_items": "on", "show_event_timeline": "on", "show_return_link": "on"},
    )

    # then: saved, the kept list dropped, no section, and the next round leaves the shop out
    assert response.status_code == 303
    assert "/app/tracking-page?" in response["Location"]
    row = TrackingSettings.objects.get(shop=shop)
    assert row.show_product_suggestions is False
    assert row.show_line_items is True
    assert product_suggestions_cached(shop=shop) == ([], "")
    assert "You may also like" not in _page(client, shop, order)
    assert product_suggestions_refresh_all_job() == 0
    # a refresh that still runs (queued before) keeps nothing for a shop that turned it off
    assert product_suggestions_refresh(shop=shop) == 0
    assert product_suggestions_cached(shop=shop) == ([], "")

    # when it is turned on again, the products are read at once (not at the next round)
    calls = devshop.client.admin_api_requests(shop.myshopify_domain)
    response = post(client, shop, "/app/tracking-page", {"show_product_suggestions": "on"})
    assert response.status_code == 303
    rq_worker()
    assert devshop.client.admin_api_requests(shop.myshopify_domain) > calls
    assert "You may also like" in _page(client, shop, order)


def test_the_settings_form_shows_the_choice_and_needs_a_session_token(client, devshop):
    from tests.shopapp.test_embedded import get_page

    shop = _installed_shop(devshop)
    html = get_page(client, shop, "/app/tracking-page").content.decode()
    assert re.search(r'<input type="checkbox" name="show_product_suggestions"[^>]* checked', html)
    # no token: refused, nothing changed
    response = client.post(
        f"/app/tracking-page?shop={shop.myshopify_domain}", {"show_line_items": "on"}
    )
    assert response.status_code in (401, 403, 302)
    assert not TrackingSettings.objects.filter(shop=shop, show_product_suggestions=False).exists()


def test_nothing_kept_means_no_section_and_no_call(client, devshop):
    # off-safe: a shop whose list was never read (or Redis lost it)
    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    calls = devshop.client.admin_api_requests(shop.myshopify_domain)
    html = _page(client, shop, order)
    assert "pp-suggestions" not in html
    assert devshop.client.admin_api_requests(shop.myshopify_domain) == calls


class ShopifyAnswer:
    """Shopify's documented answer to the products query, for shapes the devshop does not
    serve yet (product media): a stand-in for Shopify, not for any code of ours."""

    def __init__(self, nodes: list[dict]) -> None:
        self.nodes = nodes
        self.calls: list[tuple[str, dict]] = []

    def execute(self, query: str, variables: dict | None = None) -> dict:
        self.calls.append((query, variables or {}))
        return {"products": {"nodes": self.nodes}}


def _node(n: int, **changes) -> dict:
    node = {
        "id": f"gid://shopify/Product/{n}",
        "legacyResourceId": str(n),
        "title": f"Product {n}",
        "status": "ACTIVE",
        "onlineStoreUrl": f"https://maple.example/products/p-{n}",
        "featuredMedia": {
            "preview": {"image": {"url": f"https://cdn.shopify.com/p{n}.jpg", "altText": "x"}}
        },
        "priceRangeV2": {"minVariantPrice": {"amount": "24.5", "currencyCode": "EUR"}},
        "variants": {"nodes": [{"availableForSale": True}]},
    }
    node.update(changes)
    return node


def test_images_prices_and_hostile_product_data(client, devshop):
    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    held = next(int(line.product_id) for line in order.line_items.all() if line.product_id)
    answer = ShopifyAnswer(
        [
            _node(held),  # what the order holds: never suggested
            _node(11, featuredMedia=None),  # no image: a neutral box
            _node(12, title="{{ shop.secret }} <b>bold</b>"),
            _node(13, onlineStoreUrl="javascript:alert(1)"),  # unsafe: dropped
            _node(14, onlineStoreUrl=None),  # not on the online store: dropped
            _node(15, status="DRAFT"),
            _node(16, variants={"nodes": [{"availableForSale": False}]}),
            _node(17, priceRangeV2={"minVariantPrice": {"amount": "NaN", "currencyCode": "EUR"}}),
            _node(
                18,
                featuredMedia={"preview": {"image": {"url": "javascript:x", "altText": ""}}},
            ),
            _node(19),
            _node(20),
        ]
    )
    assert product_suggestions_refresh(shop=shop, client=answer) == 6
    html = _page(client, shop, order)
    cards = _cards(html)
    assert len(cards) == 4
    assert f"Product {held}" not in cards
    assert cards[0] == "Product 11"
    # Liquid and HTML in a title are shown as text, never run by the storefront
    assert "<b>bold</b>" not in html
    assert "{{" not in html
    assert "javascript:" not in html
    assert '<img class="pp-suggestion__image" src="https://cdn.shopify.com/p12.jpg"' in html
    assert 'width="320" height="320"' in html
    assert "€24.50" in html
    de = _page(client, shop, order, extra=[("locale", "de")])
    assert "24,50\xa0€" in de
    assert "Das könnte dir auch gefallen" in de


def test_a_refreshed_list_is_not_served_from_a_stale_cached_page(client, devshop, settings):
    settings.TRACKING_PAGE_CACHE_SECONDS = 600
    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    product_suggestions_refresh(shop=shop, client=ShopifyAnswer([_node(31)]))
    assert _cards(_page(client, shop, order)) == ["Product 31"]
    product_suggestions_refresh(shop=shop, client=ShopifyAnswer([_node(32)]))
    assert _cards(_page(client, shop, order)) == ["Product 32"]


def test_a_page_with_suggestions_is_served_from_the_cache_until_the_list_changes(
    client, devshop, settings
):
    # given a page with a kept list, rendered once
    settings.TRACKING_PAGE_CACHE_SECONDS = 600
    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    product_suggestions_refresh(shop=shop, client=ShopifyAnswer([_node(51)]))
    first = _page(client, shop, order)

    # when it is opened again, then after the list was dropped
    with CaptureQueriesContext(db_connection) as cached:
        again = _page(client, shop, order)
    product_suggestions_drop(shop=shop)
    with CaptureQueriesContext(db_connection) as after_drop:
        dropped = _page(client, shop, order)

    # then the second view is the cached page (the shop, then the order's row: no page
    # reads), and the one after the drop is rendered afresh, without the section
    assert again == first
    assert len(cached.captured_queries) == 2
    assert _cards(first) == ["Product 51"]
    assert len(after_drop.captured_queries) > 2
    assert _cards(dropped) == []


def test_the_kept_list_expires(devshop):
    shop = _installed_shop(devshop)
    product_suggestions_refresh(shop=shop, client=ShopifyAnswer([_node(41)]))
    from shopapp.storefront.redis_store import storefront_key_prefix as cache_prefix

    connection = redis.Redis.from_url(django_settings.REDIS_URL)
    ttl = connection.ttl(cache_prefix() + f"tracking:suggestions:{shop.pk}")
    assert 0 < ttl <= 3 * 3600
    raw = connection.get(cache_prefix() + f"tracking:suggestions:{shop.pk}")
    assert [row["product_id"] for row in json.loads(raw)] == [41]

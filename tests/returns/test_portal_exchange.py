"""Exchange for another variant of the same product, from the portal: the items page offers
the other variants Shopify (the devshop) has for sale, a variant the page did not offer is
refused, and the chosen one reaches Shopify in returnCreate when the merchant approves."""

import re

import pytest
from django.conf import settings as django_settings

from devshop.session_tokens import session_token_mint
from returns import services
from returns.models import ReturnRequest
from shopapp.models import LineItem
from tests.returns.flow_support import store_with_delivered_order
from tests.returns.test_portal import (  # noqa: F401 - the portal tests' Redis reset
    _fresh_redis,
    body,
    choose,
    delivered_order,
    lines,
    lookup,
    portal_shop,
    proxy_post,
    state_of,
    submit,
)

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCT_VARIANTS = """
query($id: ID!) { product(id: $id) { variants(first: 50) { nodes { id title availableForSale } } } }
"""


def variant_options(html: str, line: LineItem) -> list[tuple[int, str]]:
    """The options of the item's exchange select: [(variant id, title)], placeholder left out."""
    select = re.search(rf'<select[^>]*name="variant-{line.pk}"[^>]*>(.*?)</select>', html, re.S)
    assert select, html[:3000]
    return [
        (int(value), title)
        for value, title in re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', select[1])
    ]


def choose_exchange(client, shop, state: str, line: LineItem, variant: object):
    """The items step: one unit of ``line`` for an exchange against ``variant``."""
    data = {
        "step": "items",
        "state": state,
        "resolution": "exchange",
        f"quantity-{line.pk}": "1",
        f"reason-{line.pk}": "SIZE_TOO_SMALL",
        f"variant-{line.pk}": str(variant),
    }
    return proxy_post(client, shop, data)


def store_variants(devshop, shop, line: LineItem) -> list[dict]:
    """The product's variants as the devshop's Admin API lists them."""
    from shopapp.admin_api.client import admin_client_for_shop

    data = admin_client_for_shop(shop).execute(
        PRODUCT_VARIANTS, {"id": f"gid://shopify/Product/{line.product_id}"}
    )
    return data["product"]["variants"]["nodes"]


@pytest.fixture
def shop(devshop, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return portal_shop(devshop)


def test_items_page_offers_the_other_variants_for_sale(client, devshop, shop):
    # given an order of one apparel item (sizes and colours) and one of its other variants
    # sold out in the store
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    variants = store_variants(devshop, shop, line)
    others = [v for v in variants if int(v["id"].rsplit("/", 1)[-1]) != line.variant_id]
    assert len(others) == len(variants) - 1 >= 2
    sold_out = int(others[0]["id"].rsplit("/", 1)[-1])
    devshop.client.variant_update(shop.myshopify_domain, sold_out, available_for_sale=False)

    # when the shopper looks the order up
    response = lookup(client, shop, order)

    # then the item's select lists the other variants by title, without the ordered one
    # and without the sold-out one
    assert response.status_code == 200
    expected = [(int(v["id"].rsplit("/", 1)[-1]), v["title"]) for v in others[1:]]
    assert variant_options(body(response), line) == expected
    assert all(" / " in title for _id, title in expected)


def test_item_without_other_variants_says_so(client, devshop, shop):
    # given an order of a product with one variant only
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Home")
    (line,) = lines(order)
    state = state_of(lookup(client, shop, order))

    # when the shopper still asks for an exchange
    response = choose(client, shop, state, {line: (1, "SIZE_TOO_SMALL")}, resolution="exchange")

    # then there is no select, the item says why, and nothing moves on
    html = body(response)
    assert f'name="variant-{line.pk}"' not in html
    assert "No other size or colour of this item is available to exchange for." in html
    assert 'name="step" value="submit"' not in html


def test_forged_variant_id_is_refused_and_nothing_is_stored(client, devshop, shop):
    # given an apparel item, and a real variant of another product of the same store
    order = delivered_order(devshop, shop, line_items=2, line_item_product_type="Apparel")
    first, second = lines(order)
    state = state_of(lookup(client, shop, order))
    foreign = second.variant_id if second.product_id != first.product_id else 1

    # when the form comes back with a variant the page did not offer for the first item
    response = choose_exchange(client, shop, state, first, foreign)

    # then the shopper sees a clear error on that item, stays on the items step, and
    # nothing is stored
    html = body(response)
    assert response.status_code == 200
    assert "That option isn&#x27;t available. Choose one from the list." in html
    assert f'id="pp-variant-{first.pk}" name="variant-{first.pk}" aria-describedby' in html
    assert 'aria-invalid="true"' in html
    assert 'name="step" value="submit"' not in html
    assert not ReturnRequest.objects.filter(shop=shop).exists()


def test_exchange_from_the_portal_reaches_shopify_as_return_create_with_that_variant(
    client, devshop, capture, rq_worker, settings, tmp_path
):
    # given a delivered apparel order on a store with the app installed
    settings.MEDIA_ROOT = str(tmp_path / "media")
    store = store_with_delivered_order(
        devshop,
        capture,
        rq_worker,
        line_items=1,
        line_item_product_type="Apparel",
        # The assertions below read the English page.
        customer_locale="en",
    )
    shop, order = store.shop, store.order
    (line,) = lines(order)
    page = lookup(client, shop, order)
    wanted_id, wanted_title = variant_options(body(page), line)[-1]

    # when the shopper picks that variant, reviews and submits
    review = choose_exchange(client, shop, state_of(page), line, wanted_id)
    assert f"exchange for {wanted_title}" in body(review)
    done = submit(client, shop, state_of(review))
    assert done.status_code == 201
    rq_worker()

    # then the request holds the variant, waiting for the merchant
    request = ReturnRequest.objects.get(shop=shop, order=order)
    assert (request.resolution, request.sync_state) == ("exchange", "held")
    assert request.line_items.get().exchange_variant_id == wanted_id
    # and the merchant's page names it as the shopper saw it
    assert request.line_items.get().exchange_variant_title == wanted_title
    detail = client.get(
        f"/app/returns/{request.pk}",
        {
            "shop": shop.myshopify_domain,
            "id_token": session_token_mint(
                shop_domain=shop.myshopify_domain,
                secret=django_settings.SHOPIFY_API_SECRET,
                audience=django_settings.SHOPIFY_API_KEY,
            ),
        },
    )
    assert f"Exchange for {wanted_title}" in body(detail)

    # when the merchant approves: Shopify gets returnCreate with that variant
    services.return_request_approve(shop=shop, request=request, instructions="")
    request.refresh_from_db()
    shopify_return = store.return_state(request.shopify_return_id)
    assert (request.status, shopify_return["status"]) == ("OPEN", "OPEN")
    (exchange,) = shopify_return["exchangeLineItems"]["nodes"]
    assert (exchange["variantId"], exchange["quantity"]) == (
        f"gid://shopify/ProductVariant/{wanted_id}",
        1,
    )


def test_the_items_page_reads_no_shopify_so_an_outage_after_the_lookup_changes_nothing(
    client, devshop, shop
):
    # given an apparel order looked up (its products' facts and variants stored), and Shopify
    # failing every call from then on
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    state = state_of(lookup(client, shop, order))
    (line,) = lines(order)
    devshop.client.admin_api_fail_next(10, status=503)

    # when the items are posted
    response = choose(client, shop, state, {line: (1, "SIZE_TOO_SMALL")}, resolution="refund")

    # then the review comes from local state, and no Admin API call was spent
    remaining = devshop.client.knobs_get()["admin_api_fail_next"]["count"]
    devshop.client.admin_api_fail_next(0)
    assert response.status_code == 200
    assert 'data-view="review"' in body(response)
    assert remaining == 10


def test_unreachable_shopify_at_the_first_look_at_a_product_says_try_again(client, devshop, shop):
    # given an order whose products the app has never read, and Shopify failing
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    devshop.client.admin_api_fail_next(10, status=503)

    # when the shopper looks the order up
    response = lookup(client, shop, order)

    # then they are asked to try again, nothing stored
    devshop.client.admin_api_fail_next(0)
    assert response.status_code == 503
    assert not ReturnRequest.objects.filter(shop=shop).exists()

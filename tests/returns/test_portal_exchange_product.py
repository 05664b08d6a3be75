"""Exchange for a different product, from the portal, against the devshop over HTTP: the
catalogue job (a real burst worker) keeps the shop's products for sale in Redis, the items page
offers them with images and prices without calling Shopify, the review shows the price
difference (returns.eligibility.return_quote), the submission checks the chosen variant live
and stores the estimate, and the merchant's approval sends returnCreate with that variant.
Hostile posts: a variant not offered (the item's own product, another shop's, made up), a
tampered state, a variant sold out between the review and the submit, the option turned off."""

import io
import re
from decimal import Decimal
from html import escape, unescape

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from devshop.session_tokens import session_token_mint
from returns import services
from returns.catalogue import exchange_catalogue_cached, exchange_catalogue_refresh
from returns.jobs import exchange_catalogue_refresh_all_job
from returns.models import ReturnPolicy, ReturnRequest
from shopapp.admin_api.client import admin_client_for_shop
from shopapp.models import LineItem
from tests.returns.flow_support import store_with_delivered_order
from tests.returns.store_support import unit_value
from tests.returns.test_portal import (  # noqa: F401 - the portal tests' Redis reset
    _fresh_redis,
    body,
    delivered_order,
    lines,
    lookup,
    portal_shop,
    proxy_post,
    state_of,
    submit,
)

pytestmark = pytest.mark.django_db(transaction=True)

STORE_PRODUCTS = """
query { products(first: 30) { nodes {
  legacyResourceId status
  variants(first: 20) { nodes { legacyResourceId price availableForSale } } } } }
"""


@pytest.fixture
def shop(devshop, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return portal_shop(devshop)


def offering(shop, rq_worker, **fields):
    """The merchant turns "exchange for a different product" on; the catalogue read it
    enqueues runs in a burst worker."""
    services.return_policy_update(shop=shop, allow_product_exchange=True, **fields)
    rq_worker()


def delivered_and_offering(devshop, capture, rq_worker, settings, tmp_path, line_items: int):
    """A store with one delivered apparel order of ``line_items`` lines (its returns reach
    Shopify), offering other products: the catalogue read in a burst worker."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    store = store_with_delivered_order(
        devshop, capture, rq_worker, line_items=line_items, customer_locale="en"
    )
    offering(store.shop, rq_worker)
    return store


def store_variants(shop) -> dict[int, tuple[int, Decimal, bool]]:
    """{variant id: (product id, price, available for sale)}, as the devshop's Admin API
    lists the store's products."""
    data = admin_client_for_shop(shop).execute(STORE_PRODUCTS)
    return {
        int(v["legacyResourceId"]): (
            int(p["legacyResourceId"]),
            Decimal(str(v["price"])),
            bool(v["availableForSale"]),
        )
        for p in data["products"]["nodes"]
        for v in p["variants"]["nodes"]
    }


def product_radios(html: str, line: LineItem) -> list[int]:
    return [int(v) for v in re.findall(rf'name="product-variant-{line.pk}" value="(\d+)"', html)]


def choose_product(client, shop, state: str, line: LineItem, variant: object, **extra):
    data = {
        "step": "items",
        "state": state,
        f"quantity-{line.pk}": "1",
        f"reason-{line.pk}": "SIZE_TOO_SMALL",
        f"resolution-{line.pk}": "exchange",
        f"exchange-kind-{line.pk}": "product",
        f"product-variant-{line.pk}": str(variant),
        **extra,
    }
    return proxy_post(client, shop, data)


def priced(devshop, shop, line: LineItem, *, cheaper: bool) -> tuple[int, Decimal]:
    """An offered variant of another product cheaper (or dearer) than what the line cost."""
    found = priced_with_label(devshop, shop, line, cheaper=cheaper)
    return found[0], found[1]


def priced_with_label(devshop, shop, line: LineItem, *, cheaper: bool) -> tuple[int, Decimal, str]:
    """As ``priced``, with the name the portal shows. When the store's random catalogue holds
    none priced that way, the merchant reprices one (as in Shopify's admin) and the catalogue
    is read again: the test never depends on the draw."""
    value = unit_value(line)
    for _round in range(2):
        others = [
            p for p in exchange_catalogue_cached(shop=shop) if p.product_id != line.product_id
        ]
        for product in others:
            for variant in product.variants:
                if (variant.price < value) if cheaper else (variant.price > value):
                    return variant.variant_id, variant.price, product.variant_label(variant)
        assert others, "the store offers no other product"
        new_price = (value / 2).quantize(Decimal("0.01")) if cheaper else value + Decimal("10.00")
        devshop.client.variant_update(
            shop.myshopify_domain, others[0].variants[0].variant_id, price=str(new_price)
        )
        exchange_catalogue_refresh(shop=shop)
    raise AssertionError("no variant priced that way after repricing one")


# ---------------------------------------------------------------------------------------------
# The catalogue


def test_the_catalogue_job_keeps_the_products_for_sale_with_their_prices(devshop, shop, rq_worker):
    # given a store with its catalogue, one product wholly sold out and one variant of
    # another sold out
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    variants = store_variants(shop)
    by_product: dict[int, list[int]] = {}
    for variant_id, (product_id, _price, _available) in variants.items():
        by_product.setdefault(product_id, []).append(variant_id)
    (line,) = lines(order)
    gone_product = next(p for p in by_product if p != line.product_id)
    for variant_id in by_product[gone_product]:
        devshop.client.variant_update(shop.myshopify_domain, variant_id, available_for_sale=False)
    partly = next(p for p, ids in by_product.items() if len(ids) > 1 and p != gone_product)
    sold_out = by_product[partly][0]
    devshop.client.variant_update(shop.myshopify_domain, sold_out, available_for_sale=False)
    assert exchange_catalogue_cached(shop=shop) == []

    # when the merchant turns the option on (the read runs in a burst worker)
    offering(shop, rq_worker)

    # then every product with something for sale is kept, with Shopify's prices, and
    # nothing sold out is
    kept = exchange_catalogue_cached(shop=shop)
    kept_variants = {v.variant_id: (p.product_id, v.price) for p in kept for v in p.variants}
    expected = {
        vid: (pid, price)
        for vid, (pid, price, available) in store_variants(shop).items()
        if available
    }
    assert kept_variants == expected
    assert sold_out not in kept_variants
    assert gone_product not in {p.product_id for p in kept}
    # with their pictures, small (Shopify's transform), where they have one
    assert any(p.image_url for p in kept)
    assert all(
        p.image_url.startswith("http") and "width=128" in p.image_url for p in kept if p.image_url
    )

    # and the hourly round enqueues the shops that offer it only
    other = portal_shop(devshop)
    assert exchange_catalogue_refresh_all_job() == 1
    rq_worker()
    assert exchange_catalogue_cached(shop=other) == []

    # and turning it off drops the kept list
    services.return_policy_update(shop=shop, allow_product_exchange=False)
    assert exchange_catalogue_cached(shop=shop) == []
    assert exchange_catalogue_refresh_all_job() == 0


# ---------------------------------------------------------------------------------------------
# The portal


def test_the_items_page_offers_other_products_with_images_and_prices(
    client, devshop, shop, rq_worker
):
    # given a shop that offers other products, and an apparel order
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    offering(shop, rq_worker)
    catalogue = exchange_catalogue_cached(shop=shop)

    # when the shopper looks the order up
    html = body(lookup(client, shop, order))

    # then the item offers its own sizes and colours, or a different product: every product
    # of the catalogue but its own, with its image and each variant's price
    assert "Exchange for something else" in html
    assert f'name="exchange-kind-{line.pk}" value="product"' in html
    offered = product_radios(html, line)
    expected = [
        v.variant_id for p in catalogue if p.product_id != line.product_id for v in p.variants
    ]
    assert offered == expected
    assert line.variant_id not in offered
    other = next(p for p in catalogue if p.product_id != line.product_id)
    assert f'src="{escape(other.image_url)}"' in html
    assert f"{other.variants[0].price} USD" in html
    assert 'loading="lazy"' in html


def test_an_exchange_for_a_cheaper_product_refunds_the_difference_and_reaches_shopify(
    client, devshop, capture, rq_worker, settings, tmp_path
):
    # given a delivered apparel order, and a shop offering other products
    store = delivered_and_offering(devshop, capture, rq_worker, settings, tmp_path, 1)
    shop, order = store.shop, store.order
    (line,) = lines(order)
    variant_id, price, label = priced_with_label(devshop, shop, line, cheaper=True)
    difference = unit_value(line) - price

    # when the shopper picks a cheaper product, the items step reading no Shopify at all
    state = state_of(lookup(client, shop, order))
    devshop.client.admin_api_fail_next(10, status=503)
    review = choose_product(client, shop, state, line, variant_id)
    devshop.client.admin_api_fail_next(0, status=503)

    # then the review shows the new item's price and the difference refunded
    html = body(review)
    assert review.status_code == 200, html[:3000]
    assert f"1 × {price} USD" in html
    assert "Difference refunded" in html
    assert f"{difference} USD" in html
    assert "To pay for the exchange" not in html

    # when they submit: the variant is checked live and the request stores the estimate
    done = submit(client, shop, state_of(review))
    assert done.status_code == 201, body(done)[:2000]
    rq_worker()
    request = ReturnRequest.objects.get(shop=shop, order=order)
    stored = request.line_items.get()
    assert (stored.exchange_variant_id, request.resolution) == (variant_id, "exchange")
    assert request.refund_estimate == difference
    # named as the shopper saw it: the other product's title and its size and colour
    assert stored.exchange_variant_title == label
    assert f"exchange for {label}" in html

    # and the merchant's approval sends returnCreate with the other product's variant
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=django_settings.SHOPIFY_API_SECRET,
        audience=django_settings.SHOPIFY_API_KEY,
    )
    detail = client.get(
        f"/app/returns/{request.pk}", {"shop": shop.myshopify_domain, "id_token": token}
    )
    assert stored.exchange_variant_title in body(detail)
    services.return_request_approve(shop=shop, request=request, instructions="")
    request.refresh_from_db()
    (exchange,) = store.return_state(request.shopify_return_id)["exchangeLineItems"]["nodes"]
    assert exchange["variantId"] == f"gid://shopify/ProductVariant/{variant_id}"


def test_a_dearer_product_shows_what_the_shopper_will_pay(client, devshop, shop, rq_worker):
    # given a shop offering other products, without fees
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    offering(shop, rq_worker)
    variant_id, price = priced(devshop, shop, line, cheaper=False)
    owed = price - unit_value(line)

    # when the shopper picks a dearer product
    review = choose_product(client, shop, state_of(lookup(client, shop, order)), line, variant_id)

    # then the review says what they will pay, and when the new item ships
    html = body(review)
    assert "You pay the difference" in html
    assert "To pay for the exchange" in html
    assert f"it will ask you to pay {owed} USD" in html
    assert "Estimated refund" not in html

    # and the submission stores no refund
    done = submit(client, shop, state_of(review))
    assert done.status_code == 201
    request = ReturnRequest.objects.get(shop=shop, order=order)
    assert request.refund_estimate == Decimal("0.00")
    assert request.line_items.get().exchange_variant_id == variant_id


def test_the_review_and_errors_speak_the_shoppers_language(client, devshop, shop, rq_worker):
    order = delivered_order(
        devshop, shop, line_items=1, line_item_product_type="Apparel", customer_locale="fr"
    )
    (line,) = lines(order)
    offering(shop, rq_worker)
    html = body(lookup(client, shop, order))
    assert "Un autre produit" in html
    assert "Choisissez un autre produit" in html
    refused = choose_product(client, shop, state_of(lookup(client, shop, order)), line, "")
    assert "Choisissez le produit que vous souhaitez à la place." in body(refused)


# ---------------------------------------------------------------------------------------------
# Hostile posts


def test_a_variant_not_offered_is_refused_and_nothing_is_stored(client, devshop, shop, rq_worker):
    # given a shop offering other products, and another shop's store with its own variants
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    offering(shop, rq_worker)
    stranger = portal_shop(devshop)
    delivered_order(devshop, stranger, line_items=1)
    foreign = next(iter(store_variants(stranger)))
    state = state_of(lookup(client, shop, order))

    # when the form comes back with the item's own variant, another shop's, or a made-up one
    for forged in (line.variant_id, foreign, 999_999_999, "12abc", "-1"):
        response = choose_product(client, shop, state, line, forged)

        # then the item says so, the page stays the items step, nothing is stored
        html = body(response)
        assert "That option isn&#x27;t available. Choose one from the list." in html, forged
        assert 'name="step" value="submit"' not in html
    assert not ReturnRequest.objects.filter(shop=shop).exists()


def test_with_the_option_off_no_product_is_offered_nor_accepted(client, devshop, shop, rq_worker):
    # given a catalogue kept while the option was on, then the option turned off
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    offering(shop, rq_worker)
    variant_id = next(
        v.variant_id
        for p in exchange_catalogue_cached(shop=shop)
        if p.product_id != line.product_id
        for v in p.variants
    )
    ReturnPolicy.objects.filter(shop=shop).update(allow_product_exchange=False)

    # then the page offers none, and a post naming one is refused
    page = lookup(client, shop, order)
    assert product_radios(body(page), line) == []
    refused = choose_product(client, shop, state_of(page), line, variant_id)
    assert "No other product is available to exchange for." in body(refused)
    assert not ReturnRequest.objects.filter(shop=shop).exists()


def test_a_tampered_state_is_refused(client, devshop, shop, rq_worker):
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    offering(shop, rq_worker)
    variant_id, _price = priced(devshop, shop, line, cheaper=True)
    review = choose_product(client, shop, state_of(lookup(client, shop, order)), line, variant_id)
    state = state_of(review)

    # when the signed state is altered (a price, a variant) before the submit
    tampered = state[:-6] + ("A" if state[-6] != "A" else "B") + state[-5:]
    response = submit(client, shop, tampered)

    # then the shopper starts again and nothing is stored
    assert "This page has expired" in body(response)
    assert not ReturnRequest.objects.filter(shop=shop).exists()


def test_a_product_sold_out_before_the_submit_sends_the_shopper_back(
    client, devshop, shop, rq_worker
):
    # given a review for a different product
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    offering(shop, rq_worker)
    variant_id, _price = priced(devshop, shop, line, cheaper=True)
    review = choose_product(client, shop, state_of(lookup(client, shop, order)), line, variant_id)
    assert review.status_code == 200

    # when the variant sells out in the store before the shopper submits
    devshop.client.variant_update(shop.myshopify_domain, variant_id, available_for_sale=False)
    response = submit(client, shop, state_of(review))

    # then they are sent back to the items with a clear message, and nothing is stored
    html = body(response)
    assert response.status_code == 409
    assert "is no longer available" in html
    assert "Please choose them again." in html
    assert not ReturnRequest.objects.filter(shop=shop).exists()


POLICY_FORM = {
    "window_days": "30",
    "transit_allowance_days": "7",
    "allow_refund": "on",
    "allow_exchange": "on",
    "restocking_fee_percent": "0",
    "return_shipping_fee": "0",
    "store_credit_bonus_percent": "0",
    "reasons": ["SIZE_TOO_SMALL", "DEFECTIVE", "OTHER"],
    "auto_approve_max_value": "100",
    "high_return_ratio": "0.5",
}


def test_turning_the_option_on_in_the_policy_page_fills_the_catalogue(
    client, devshop, shop, rq_worker
):
    delivered_order(devshop, shop, line_items=1)
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=django_settings.SHOPIFY_API_SECRET,
        audience=django_settings.SHOPIFY_API_KEY,
    )
    url = f"/app/returns/policy?shop={shop.myshopify_domain}"

    # when the merchant asks for other products without exchanges: refused, nothing saved
    refused = client.post(
        url,
        {**POLICY_FORM, "allow_exchange": "", "allow_product_exchange": "on"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert refused.status_code == 400
    assert "Turn on exchanges to offer a different product." in refused.content.decode()
    assert not ReturnPolicy.objects.get(shop=shop).allow_product_exchange

    # when they turn it on with exchanges: saved, and a burst worker reads the catalogue
    saved = client.post(
        url, {**POLICY_FORM, "allow_product_exchange": "on"}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert saved.status_code == 303
    assert ReturnPolicy.objects.get(shop=shop).allow_product_exchange
    assert exchange_catalogue_cached(shop=shop) == []
    rq_worker()
    assert {p.product_id for p in exchange_catalogue_cached(shop=shop)} == {
        pid for pid, _price, available in store_variants(shop).values() if available
    }


def test_the_policy_page_offers_the_option_with_its_help(client, devshop, shop):
    token = session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=django_settings.SHOPIFY_API_SECRET,
        audience=django_settings.SHOPIFY_API_KEY,
    )
    page = client.get("/app/returns/policy", {"shop": shop.myshopify_domain, "id_token": token})
    html = page.content.decode()
    assert "Exchange for a different product" in html
    assert "Dearer: the shopper pays the difference before the new item ships." in html
    assert 'name="allow_product_exchange"' in html


def test_a_new_price_or_an_archived_product_before_the_submit_sends_the_shopper_back(
    client, devshop, shop, rq_worker
):
    # given two reviews for two different products
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    (line,) = lines(order)
    offering(shop, rq_worker)
    others = [p for p in exchange_catalogue_cached(shop=shop) if p.product_id != line.product_id]
    repriced, archived = others[0], others[1]
    reviews = [
        choose_product(
            client, shop, state_of(lookup(client, shop, order)), line, p.variants[0].variant_id
        )
        for p in (repriced, archived)
    ]

    # when the merchant changes the first one's price and archives the second product
    new_price = repriced.variants[0].price + Decimal("5.00")
    devshop.client.variant_update(
        shop.myshopify_domain, repriced.variants[0].variant_id, price=str(new_price)
    )
    devshop.client.product_status_set(shop.myshopify_domain, archived.product_id, "ARCHIVED")

    # then each submission goes back to the items, saying what changed; nothing is stored
    first, second = (submit(client, shop, state_of(review)) for review in reviews)
    assert first.status_code == second.status_code == 409
    label = repriced.variant_label(repriced.variants[0])
    assert f"{label} now costs {new_price} USD." in unescape(body(first))
    assert "is no longer available" in body(second)
    assert not ReturnRequest.objects.filter(shop=shop).exists()


def test_a_dearer_product_processed_leaves_the_balance_the_review_showed_on_the_order(
    client, devshop, capture, rq_worker, settings, tmp_path
):
    # given a delivered apparel order, a shop offering other products, and a dearer one
    store = delivered_and_offering(devshop, capture, rq_worker, settings, tmp_path, 1)
    shop, order = store.shop, store.order
    (line,) = lines(order)
    variant_id, price = priced(devshop, shop, line, cheaper=False)

    # when the shopper asks for it, and the review says what they will pay
    review = choose_product(client, shop, state_of(lookup(client, shop, order)), line, variant_id)
    owed = re.search(r"data-amount-due><dt>[^<]*</dt><dd>([\d.]+) USD", body(review))
    assert owed, body(review)[:3000]
    assert submit(client, shop, state_of(review)).status_code == 201
    rq_worker()
    request = ReturnRequest.objects.get(shop=shop, order=order)

    # and the merchant approves and processes it
    services.return_request_approve(shop=shop, request=request, instructions="")
    request.refresh_from_db()
    services.return_request_process(shop=shop, request=request)

    # then Shopify books the exchange and the order owes what the review said, nothing refunded
    request.refresh_from_db()
    shopify_return = store.return_state(request.shopify_return_id)
    assert shopify_return["exchangeLineItems"]["nodes"][0]["processedQuantity"] == 1
    assert request.amount_outstanding == Decimal(owed[1]) == price - unit_value(line)
    outstanding = shopify_return["order"]["totalOutstandingSet"]["shopMoney"]["amount"]
    assert Decimal(outstanding) == Decimal(owed[1])
    assert request.refunded_amount == 0


def test_the_policy_command_turns_product_exchange_on_as_the_demo_does(devshop, shop, rq_worker):
    # given a store with products, its exchanges off altogether (the command turns them on)
    delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    services.return_policy_update(shop=shop, allow_exchange=False)
    out = io.StringIO()

    # when the demo's command asks for exchanges for a different product
    call_command("return_policy_set", shop=shop.myshopify_domain, product_exchange="on", stdout=out)
    rq_worker()

    # then the policy offers them and the catalogue was read, as the policy page would do
    policy = ReturnPolicy.objects.get(shop=shop)
    assert (policy.allow_exchange, policy.allow_product_exchange) == (True, True)
    assert "for a different product on" in out.getvalue()
    assert exchange_catalogue_cached(shop=shop) != []

    # and off again drops the kept catalogue; an unknown shop is refused
    call_command("return_policy_set", shop=shop.myshopify_domain, product_exchange="off")
    assert not ReturnPolicy.objects.get(shop=shop).allow_product_exchange
    assert exchange_catalogue_cached(shop=shop) == []
    with pytest.raises(CommandError, match="no installed shop"):
        call_command("return_policy_set", shop="nope.myshopify.com", product_exchange="on")


def test_one_item_refunded_and_another_exchanged_for_a_different_product_in_one_return(
    client, devshop, capture, rq_worker, settings, tmp_path
):
    # given a delivered order of two apparel items, and a shop offering other products
    store = delivered_and_offering(devshop, capture, rq_worker, settings, tmp_path, 2)
    shop, order = store.shop, store.order
    kept, swapped = lines(order)
    variant_id, price = priced(devshop, shop, swapped, cheaper=False)

    # when the shopper sends the first back for a refund and swaps the second for a dearer
    # product of the shop, each with its own resolution
    review = choose_product(
        client,
        shop,
        state_of(lookup(client, shop, order)),
        swapped,
        variant_id,
        **{
            f"quantity-{kept.pk}": "1",
            f"reason-{kept.pk}": "SIZE_TOO_LARGE",
            f"resolution-{kept.pk}": "refund",
        },
    )
    html = body(review)
    assert review.status_code == 200, html[:3000]
    assert f"1 × {price} USD" in html
    assert submit(client, shop, state_of(review)).status_code == 201
    rq_worker()
    request = ReturnRequest.objects.get(shop=shop, order=order)
    by_line = {line.line_item_id: line for line in request.line_items.all()}
    assert request.resolution == "mixed"
    assert (by_line[kept.pk].resolution, by_line[swapped.pk].resolution) == ("refund", "exchange")
    assert by_line[swapped.pk].exchange_variant_id == variant_id

    # and the merchant approves and processes it in Shopify
    services.return_request_approve(shop=shop, request=request, instructions="")
    request.refresh_from_db()
    services.return_request_process(shop=shop, request=request)

    # then Shopify refunds the first item and books the exchange, the dearer product's
    # difference set against that refund as Shopify settles the order's balance: what was
    # refunded less what is owed is what the two items were worth less the new one's price
    request.refresh_from_db()
    shopify_return = store.return_state(request.shopify_return_id)
    (exchange,) = shopify_return["exchangeLineItems"]["nodes"]
    assert exchange["variantId"] == f"gid://shopify/ProductVariant/{variant_id}"
    assert exchange["processedQuantity"] == 1
    net = unit_value(kept) + unit_value(swapped) - price
    assert request.refunded_amount - request.amount_outstanding == net
    assert request.refunded_amount == max(net, Decimal(0))
    assert request.refunded_amount == request.refund_estimate

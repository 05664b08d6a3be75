"""A resolution per item, and what each brings back shown before submitting: the portal asks
refund, store credit or exchange for every item, the review lists each item's price, the
restocking fee, the store credit bonus, the return shipping fee and the totals per resolution,
and the request stores the same numbers (returns.eligibility.return_quote computes them all).
Processing pays a mixed return back in one returnProcess: the refund to the order's payment,
the store credit (bonus included) as store credit, in the devshop as in Shopify.

Also here: reasons in a natural order and per product type, and the status page's own refresh.
"""

import json
import re
from decimal import Decimal
from html import unescape

import pytest
from django.conf import settings

from devshop.session_tokens import session_token_mint
from returns import portal, services
from returns.eligibility import line_item_unit_value, return_quote
from returns.models import ReturnLineItem, ReturnPolicy, ReturnRequest
from shopapp.models import LineItem
from tests.returns.flow_support import store_with_delivered_order
from tests.returns.test_portal import (  # noqa: F401 - the portal tests' Redis reset
    _fresh_redis,
    body,
    delivered_order,
    lines,
    lookup,
    portal_shop,
    proxy_get,
    proxy_post,
    state_of,
    submit,
)
from tests.returns.test_portal_exchange import store_variants

pytestmark = pytest.mark.django_db(transaction=True)

CENT = Decimal("0.01")
RESTOCKING = Decimal("10")
SHIPPING = Decimal("5.00")
BONUS = Decimal("10")


@pytest.fixture
def shop(devshop, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return portal_shop(devshop)


def admin_token(shop) -> str:
    return session_token_mint(
        shop_domain=shop.myshopify_domain,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )


def with_fees(shop, **fields):
    return services.return_policy_update(
        shop=shop,
        restocking_fee_percent=RESTOCKING,
        return_shipping_fee=SHIPPING,
        store_credit_bonus_percent=BONUS,
        **fields,
    )


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def expected_item(line: LineItem, quantity: int, resolution: str) -> Decimal:
    """What one item brings back, worked out here from the policy's numbers."""
    if resolution == "exchange":
        return Decimal("0.00")
    value = money(line_item_unit_value(line) * quantity)
    after_fee = value - money(value * RESTOCKING / 100)
    if resolution == "store_credit":
        return after_fee + money(after_fee * BONUS / 100)
    return after_fee


def choose_each(client, shop, state: str, picks: dict, **extra):
    """The items step with a resolution per item: ``picks`` maps a LineItem to (quantity,
    reason, resolution); no form-wide resolution is posted."""
    data: dict = {"step": "items", "state": state, **extra}
    for line, (quantity, reason, resolution) in picks.items():
        data[f"quantity-{line.pk}"] = str(quantity)
        data[f"reason-{line.pk}"] = reason
        data[f"resolution-{line.pk}"] = resolution
    return proxy_post(client, shop, data)


def review_numbers(html: str) -> dict[str, str]:
    """The review's per-item totals ({line item pk: "12.34"}) and its two totals."""
    numbers = {
        pk: amount
        for pk, amount in re.findall(
            r'data-review-item="(\d+)".*?data-item-total><dt>[^<]*</dt><dd>([\d.]+) ', html, re.S
        )
    }
    for key in ("estimate-total", "credit-total"):
        found = re.search(rf"data-{key}><dt>[^<]*</dt><dd>([\d.]+) ", html)
        if found:
            numbers[key] = found[1]
    return numbers


# ---------------------------------------------------------------------------------------------
# One computation


def test_the_quote_takes_fees_per_item_adds_the_bonus_and_the_shipping_fee_once(devshop, shop):
    # given a policy with a 10% restocking fee, a 5.00 shipping fee and a 10% credit bonus
    policy = with_fees(shop)
    order = delivered_order(devshop, shop, line_items=2, line_item_quantity=1)
    first, second = lines(order)

    # when one item is refunded and the other taken as store credit
    quote = return_quote(
        shop=shop,
        order=order,
        items=[(first.pk, 1, "refund"), (second, 1, "store_credit")],
        policy=policy,
    )

    # then each item keeps its own fee back, store credit gets the bonus on what is left, and
    # the shipping fee comes off the refund first, then off the credit
    refund_item = expected_item(first, 1, "refund")
    credit_item = expected_item(second, 1, "store_credit")
    assert [i.total for i in quote.items] == [refund_item, credit_item]
    from_refund = min(refund_item, SHIPPING)
    assert quote.refund_total == refund_item - from_refund
    assert quote.store_credit_total == credit_item - (SHIPPING - from_refund)
    assert quote.store_credit_bonus == credit_item - expected_item(second, 1, "refund")
    assert quote.shipping_fee == SHIPPING


def test_a_line_of_another_order_cannot_be_quoted(devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    other = delivered_order(devshop, shop, line_items=1)

    with pytest.raises(ValueError, match="does not belong"):
        return_quote(shop=shop, order=order, items=[(lines(other)[0].pk, 1, "refund")])


# ---------------------------------------------------------------------------------------------
# The portal


def test_each_item_gets_its_own_resolution_and_the_review_shows_what_is_stored(
    client, devshop, shop
):
    # given a policy with fees and a store credit bonus, and an order of two items
    with_fees(shop)
    order = delivered_order(devshop, shop, line_items=2, line_item_quantity=1)
    first, second = lines(order)
    items_page = lookup(client, shop, order)

    # then every item offers the three resolutions, store credit with its bonus, and shows
    # its price
    html = body(items_page)
    for line in (first, second):
        for code in ("refund", "store_credit", "exchange"):
            assert f'id="pp-resolution-{line.pk}-{code}" name="resolution-{line.pk}"' in html
        assert f"{line_item_unit_value(line)} USD each" in html
    assert "Store credit (+10% bonus)" in html

    # when the shopper wants a refund for one and store credit for the other
    review = choose_each(
        client,
        shop,
        state_of(items_page),
        {first: (1, "NOT_AS_DESCRIBED", "refund"), second: (1, "UNWANTED", "store_credit")},
    )

    # then the review shows each item's price, fee, bonus and total, and the totals per
    # resolution
    html = body(review)
    assert 'data-view="review"' in html, html[:3000]
    numbers = review_numbers(html)
    refund_item = expected_item(first, 1, "refund")
    credit_item = expected_item(second, 1, "store_credit")
    assert numbers[str(first.pk)] == str(refund_item)
    assert numbers[str(second.pk)] == str(credit_item)
    assert "Restocking fee" in html
    assert "Store credit bonus" in html
    assert "Return shipping" in html
    from_refund = min(refund_item, SHIPPING)
    assert numbers.get("estimate-total") == str(refund_item - from_refund)
    assert numbers["credit-total"] == str(credit_item - (SHIPPING - from_refund))

    # when they submit
    status = submit(client, shop, state_of(review))

    # then the request stores the same numbers, item by item
    assert status.status_code == 201
    [rr] = ReturnRequest.objects.filter(shop=shop)
    assert rr.resolution == "mixed"
    assert rr.original_payment_estimate == Decimal(numbers["estimate-total"])
    assert rr.store_credit_estimate == Decimal(numbers["credit-total"])
    assert rr.refund_estimate == rr.original_payment_estimate + rr.store_credit_estimate
    assert rr.store_credit_bonus_percent == BONUS
    stored = {li.line_item_id: (li.resolution, li.estimate) for li in rr.line_items.all()}
    assert stored == {
        first.pk: ("refund", refund_item),
        second.pk: ("store_credit", credit_item),
    }
    # and the status page shows each item's resolution
    html = body(status)
    assert f'data-status-item="{first.pk}" data-resolution="refund"' in html
    assert f'data-status-item="{second.pk}" data-resolution="store_credit"' in html
    assert f"Estimated store credit: {rr.store_credit_estimate} USD" in html

    # and the merchant's queue and return page show what each item is for
    token = admin_token(shop)
    queue = client.get("/app/returns/", {"shop": shop.myshopify_domain, "id_token": token})
    html = queue.content.decode()
    assert "· Refund to the original payment" in html
    assert "· Store credit" in html
    assert "Refund and store credit" in html
    detail = client.get(
        f"/app/returns/{rr.pk}", {"shop": shop.myshopify_domain, "id_token": token}
    ).content.decode()
    assert 'data-resolution="refund"' in detail
    assert 'data-resolution="store_credit"' in detail
    assert "store credit bonus +10%" in detail


def test_a_forged_resolution_or_fee_changes_nothing(client, devshop, shop):
    # given a policy that does not offer store credit
    with_fees(shop, allow_store_credit=False)
    order = delivered_order(devshop, shop, line_items=2, line_item_quantity=1)
    first, second = lines(order)
    state = state_of(lookup(client, shop, order))

    # when a script posts a resolution the page never offered, and one the policy refuses
    refused = choose_each(
        client,
        shop,
        state,
        {first: (1, "UNWANTED", "teleport"), second: (1, "UNWANTED", "store_credit")},
    )

    # then each item says so, and nothing is stored
    html = body(refused)
    assert 'data-view="items"' in html
    assert html.count("Choose what you&#x27;d like for this item.") == 2
    assert f'id="pp-resolution-{first.pk}-error"' in html
    assert not ReturnRequest.objects.exists()

    # when fees, totals and a bonus are posted alongside a valid choice
    review = choose_each(
        client,
        shop,
        state,
        {first: (1, "UNWANTED", "refund")},
        restocking_fee_percent="0",
        return_shipping_fee="0",
        refund_estimate="999.00",
        **{f"estimate-{first.pk}": "999.00", "store_credit_bonus_percent": "90"},
    )
    submit(client, shop, state_of(review))

    # then the policy's fees were applied all the same
    [rr] = ReturnRequest.objects.filter(shop=shop)
    refund_item = expected_item(first, 1, "refund")
    assert rr.refund_estimate == max(Decimal("0.00"), refund_item - SHIPPING)
    assert rr.store_credit_bonus_percent == BONUS
    assert rr.line_items.get().estimate == refund_item


def test_an_item_of_another_order_or_shop_cannot_be_chosen(client, devshop, shop):
    # given the shopper's order, another order of the shop and an order of another shop
    order = delivered_order(devshop, shop, line_items=1)
    mine = lines(order)[0]
    other_shop = portal_shop(devshop)
    theirs = lines(delivered_order(devshop, other_shop, line_items=1))[0]
    neighbour = lines(delivered_order(devshop, shop, line_items=1))[0]
    state = state_of(lookup(client, shop, order))

    # when their line ids are posted with this order's state
    response = choose_each(
        client,
        shop,
        state,
        {theirs: (1, "UNWANTED", "refund"), neighbour: (1, "UNWANTED", "refund")},
    )

    # then nothing is chosen: the page asks again, nothing stored
    assert "Choose at least one item to return." in body(response)
    assert not ReturnRequest.objects.exists()
    # and the service refuses them too, whoever calls it
    with pytest.raises(services.ReturnRefused) as refused:
        services.return_request_submit(
            shop=shop,
            order=order,
            items=[{"line_item_id": neighbour.pk, "quantity": 1, "reason": "UNWANTED"}],
            resolution="refund",
            customer_email=order.email,
            customer_id=order.customer_id,
        )
    assert refused.value.code == "unknown_item"
    assert mine.pk != neighbour.pk
    assert not ReturnLineItem.objects.exists()


def test_the_form_wide_resolution_still_applies_to_items_without_their_own(client, devshop, shop):
    # (a page rendered before this change, or a script, posts one resolution for all)
    order = delivered_order(devshop, shop, line_items=2, line_item_quantity=1)
    first, second = lines(order)
    data = {
        "step": "items",
        "state": state_of(lookup(client, shop, order)),
        "resolution": "store_credit",
        f"quantity-{first.pk}": "1",
        f"reason-{first.pk}": "UNWANTED",
        f"quantity-{second.pk}": "1",
        f"reason-{second.pk}": "UNWANTED",
        f"resolution-{second.pk}": "refund",
    }
    submit(client, shop, state_of(proxy_post(client, shop, data)))

    [rr] = ReturnRequest.objects.filter(shop=shop)
    assert dict(rr.line_items.values_list("line_item_id", "resolution")) == {
        first.pk: "store_credit",
        second.pk: "refund",
    }


# ---------------------------------------------------------------------------------------------
# Processing a mixed return in Shopify (the devshop), jobs through a real RQ worker


def test_a_mixed_return_pays_the_refund_and_the_credit_with_its_bonus_in_one_process(
    devshop, capture, rq_worker
):
    # given a policy with a 1.00 shipping fee and a 10% credit bonus, and a shopper who
    # refunds one item and takes the other as store credit
    store = store_with_delivered_order(devshop, capture, rq_worker, line_item_quantity=1)
    services.return_policy_update(
        shop=store.shop, return_shipping_fee=Decimal("1.00"), store_credit_bonus_percent=BONUS
    )
    first, second = store.order.line_items.order_by("pk")
    request = services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[
            {"line_item_id": first.pk, "quantity": 1, "reason": "UNWANTED", "resolution": "refund"},
            {
                "line_item_id": second.pk,
                "quantity": 1,
                "reason": "UNWANTED",
                "resolution": "store_credit",
            },
        ],
        resolution="",
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )
    rq_worker()
    request.refresh_from_db()
    assert (request.status, request.sync_state, request.resolution) == (
        "REQUESTED",
        "synced",
        "mixed",
    )
    services.return_request_approve(shop=store.shop, request=request, instructions="")

    # when the merchant processes it as the shopper chose
    services.return_request_process(shop=store.shop, request=request)

    # then Shopify refunded the first item less the shipping fee to the order's payment and
    # issued the second's value plus 10% as store credit, and the app recorded both
    refund = money(line_item_unit_value(first)) - Decimal("1.00")
    value = money(line_item_unit_value(second))
    credit = value + money(value * BONUS / 100)
    in_shopify = devshop.client.return_get(store.domain, request.shopify_return_id)
    assert Decimal(in_shopify["refunded_amount"]) == refund
    assert Decimal(in_shopify["store_credit_amount"]) == credit
    request.refresh_from_db()
    assert request.refunded_amount == refund + credit
    assert request.status == "CLOSED"
    event = request.order.events.filter(kind="return.processed").order_by("-id").first()
    assert event is not None
    assert (event.detail["refund"], event.detail["store_credit"]) == (str(refund), str(credit))
    assert Decimal(event.detail["store_credit_bonus"]) == credit - value


def test_an_exchanged_item_in_a_mixed_return_is_held_for_return_create(devshop, capture, rq_worker):
    # given one item refunded and one exchanged for another variant of the shop
    store = store_with_delivered_order(
        devshop, capture, rq_worker, line_item_quantity=1, line_item_product_type="Apparel"
    )
    first, second = store.order.line_items.order_by("pk")
    variant = next(
        int(node["id"].rsplit("/", 1)[-1])
        for node in store_variants(devshop, store.shop, first)
        if node["availableForSale"] and int(node["id"].rsplit("/", 1)[-1]) != first.variant_id
    )
    request = services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[
            {
                "line_item_id": first.pk,
                "quantity": 1,
                "reason": "SIZE_TOO_SMALL",
                "resolution": "exchange",
                "exchange_variant_id": variant,
            },
            {
                "line_item_id": second.pk,
                "quantity": 1,
                "reason": "UNWANTED",
                "resolution": "refund",
            },
        ],
        resolution="",
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )

    # when the send job runs
    rq_worker()

    # then the request waits for approval (returnRequest has no exchange lines) and the
    # refunded item's line carries no exchange
    request.refresh_from_db()
    assert (request.status, request.sync_state) == ("REQUESTED", "held")
    lines_ = {li.line_item_id: li for li in request.line_items.all()}
    assert lines_[second.pk].exchange_variant_id is None
    assert lines_[first.pk].exchange_variant_id == variant

    # and approval creates one return with the exchange line for the first item only
    services.return_request_approve(shop=store.shop, request=request, instructions="")
    request.refresh_from_db()
    state = store.return_state(request.shopify_return_id)
    assert [n["variantId"] for n in state["exchangeLineItems"]["nodes"]] == [
        f"gid://shopify/ProductVariant/{variant}"
    ]
    assert sorted(n["quantity"] for n in state["returnLineItems"]["nodes"]) == [1, 1]


# ---------------------------------------------------------------------------------------------
# Reasons


def reason_values(html: str, line: LineItem) -> list[str]:
    select = re.search(rf'<select[^>]*name="reason-{line.pk}"[^>]*>(.*?)</select>', html, re.S)
    assert select, html[:3000]
    return [v for v in re.findall(r'<option value="([^"]*)"', select[1]) if v]


def product_type_set(devshop, shop, line: LineItem, product_type: str) -> None:
    """The merchant changes the product's type in Shopify; the app reads it on the next page
    whose product facts are stale (here: none stored yet)."""
    devshop.client.product_update(shop.myshopify_domain, line.product_id, product_type=product_type)


def test_reasons_come_in_a_natural_order_with_other_last(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    [line] = lines(order)

    html = body(lookup(client, shop, order))

    assert reason_values(html, line) == [
        "SIZE_TOO_SMALL",
        "SIZE_TOO_LARGE",
        "COLOR",
        "STYLE",
        "NOT_AS_DESCRIBED",
        "DEFECTIVE",
        "WRONG_ITEM",
        "UNWANTED",
        "OTHER",
    ]
    # a merchant's own order is kept, "Other" still last
    ReturnPolicy.objects.filter(shop=shop).update(reasons=["OTHER", "DEFECTIVE", "SIZE_TOO_SMALL"])
    html = body(lookup(client, shop, order))
    assert reason_values(html, line) == ["DEFECTIVE", "SIZE_TOO_SMALL", "OTHER"]


def test_a_face_serum_is_offered_no_size_reasons_and_a_forged_one_is_refused(client, devshop, shop):
    # given an order of a beauty product and of clothes
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Beauty")
    [serum] = lines(order)
    items_page = lookup(client, shop, order)

    # then the serum is offered no size, colour or style reason
    offered = reason_values(body(items_page), serum)
    assert "SIZE_TOO_SMALL" not in offered
    assert "STYLE" not in offered
    assert offered[-1] == "OTHER"
    assert "DEFECTIVE" in offered

    # when a script posts a size reason for it anyway
    refused = choose_each(
        client, shop, state_of(items_page), {serum: (1, "SIZE_TOO_SMALL", "refund")}
    )

    # then it is refused next to the item, nothing stored
    assert "Choose a reason for this item." in body(refused)
    assert not ReturnRequest.objects.exists()


def test_the_submit_service_refuses_a_reason_the_product_type_is_not_offered(devshop, shop):
    # given a serum: its product type is offered no size reason (the defaults)
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Beauty")
    [serum] = lines(order)

    def submitted(reason):
        return services.return_request_submit(
            shop=shop,
            order=order,
            items=[{"line_item_id": serum.pk, "quantity": 1, "reason": reason}],
            resolution="refund",
            customer_email=order.email,
            customer_id=order.customer_id,
        )

    # when a caller past the portal's form (a forged post, a script) asks for "too small"
    with pytest.raises(services.ReturnRefused) as refused:
        submitted("SIZE_TOO_SMALL")

    # then it is refused with the item named, and nothing is stored or sent
    assert refused.value.code == "reason"
    assert serum.title in refused.value.message
    assert "choose a reason from the list" in refused.value.message
    assert not ReturnRequest.objects.filter(shop=shop).exists()
    assert not ReturnLineItem.objects.filter(shop=shop).exists()

    # and a reason the type is offered is accepted
    accepted = submitted("DEFECTIVE")
    assert [line.reason for line in accepted.line_items.all()] == ["DEFECTIVE"]


def test_the_merchants_mapping_per_product_type_replaces_the_defaults(client, devshop, shop):
    # given a merchant who maps "Apparel" to fit reasons only, through the policy page
    order = delivered_order(devshop, shop, line_items=1, line_item_product_type="Apparel")
    [shirt] = lines(order)
    token = admin_token(shop)
    data = {
        "window_days": "30",
        "transit_allowance_days": "7",
        "allow_refund": "on",
        "allow_store_credit": "on",
        "restocking_fee_percent": "0",
        "return_shipping_fee": "0",
        "store_credit_bonus_percent": "12.5",
        "reasons": ["SIZE_TOO_SMALL", "SIZE_TOO_LARGE", "DEFECTIVE", "OTHER"],
        "reasons_by_product_type": "Apparel: size_too_small, SIZE-TOO-LARGE, OTHER",
        "auto_approve_max_value": "100",
        "high_return_ratio": "0.5",
    }
    saved = client.post(
        f"/app/returns/policy?shop={shop.myshopify_domain}",
        data,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert saved.status_code == 303
    policy = ReturnPolicy.objects.get(shop=shop)
    assert policy.reasons_by_product_type == {
        "apparel": ["SIZE_TOO_SMALL", "SIZE_TOO_LARGE", "OTHER"]
    }
    assert policy.store_credit_bonus_percent == Decimal("12.5")

    # then the shirt is offered those reasons, and the bonus is shown
    html = body(lookup(client, shop, order))
    assert reason_values(html, shirt) == ["SIZE_TOO_SMALL", "SIZE_TOO_LARGE", "OTHER"]
    assert "Store credit (+12.5% bonus)" in html

    # and a line naming no reason, or an unknown one, is refused with the line's number
    for text, words in (
        ("Apparel: TELEPORTED", "Line 1: &#x27;TELEPORTED&#x27; is not a reason"),
        ("Apparel, SIZE_TOO_SMALL", "Line 1: write"),
    ):
        bad = client.post(
            f"/app/returns/policy?shop={shop.myshopify_domain}",
            {**data, "reasons_by_product_type": text, "store_credit_bonus_percent": "5"},
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert bad.status_code == 400
        assert words in bad.content.decode()
    policy.refresh_from_db()
    assert policy.store_credit_bonus_percent == Decimal("12.5")


# ---------------------------------------------------------------------------------------------
# The status page follows the return


def request_in(shop, order, **fields) -> ReturnRequest:
    rr = ReturnRequest.objects.create(
        shop=shop, order=order, resolution="refund", sync_state="synced", **fields
    )
    ReturnLineItem.objects.create(
        shop=shop,
        return_request=rr,
        line_item=lines(order)[0],
        quantity=1,
        reason="UNWANTED",
        resolution="refund",
    )
    return rr


def test_the_status_page_polls_a_cheap_state_until_the_return_is_final(
    client, devshop, shop, django_assert_max_num_queries
):
    # given a return approved in Shopify
    order = delivered_order(devshop, shop, line_items=1)
    rr = request_in(shop, order, status="OPEN")
    token = portal.return_status_token(rr)

    # then its page carries the refresh script and where to ask
    html = body(proxy_get(client, shop, f"/{token}"))
    assert f'data-poll-url="../returns/{token}/state"' in html
    assert 'data-final="false"' in html
    assert "<script>" in html
    assert "pp-status-live" in html

    # and the state answers in a few bytes, from one row
    with django_assert_max_num_queries(3):
        state = proxy_get(client, shop, f"/{token}/state")
    assert state.status_code == 200
    assert state["Cache-Control"] == "private, no-store"
    assert json.loads(state.content) == {"status": "approved", "is_final": False}

    # when the items come back
    ReturnRequest.objects.filter(pk=rr.pk).update(received_at=rr.created_at)

    # then the state says received, and so does the page
    assert json.loads(proxy_get(client, shop, f"/{token}/state").content)["status"] == "received"
    html = body(proxy_get(client, shop, f"/{token}"))
    assert 'data-status="received"' in html
    assert "The store has received your items" in unescape(html)

    # when the store closes it, the page stops refreshing
    ReturnRequest.objects.filter(pk=rr.pk).update(status="CLOSED")
    assert json.loads(proxy_get(client, shop, f"/{token}/state").content) == {
        "status": "closed",
        "is_final": True,
    }
    html = body(proxy_get(client, shop, f"/{token}"))
    assert 'data-final="true"' in html
    assert "data-poll-url" not in html
    assert "<script>" not in html


def test_the_state_of_a_forged_or_other_shops_link_says_nothing(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    token = portal.return_status_token(request_in(shop, order, status="OPEN"))
    other = portal_shop(devshop)

    assert proxy_get(client, other, f"/{token}/state").status_code == 404
    assert proxy_get(client, shop, f"/{token[:-2]}xx/state").status_code == 404
    unsigned = client.get(f"/proxy/returns/{token}/state")
    assert unsigned.status_code in (401, 403)


# ---------------------------------------------------------------------------------------------
# Keep the items


def test_a_low_value_return_is_kept_by_the_shopper_without_a_shipping_fee(client, devshop, shop):
    # given a policy whose "keep the items" value covers one cheap item
    order = delivered_order(devshop, shop, line_items=2, line_item_quantity=1)
    cheap, dear = sorted(lines(order), key=line_item_unit_value)
    with_fees(shop, keep_items_max_value=line_item_unit_value(cheap))
    state = state_of(lookup(client, shop, order))

    # when the shopper returns the cheap item for a refund
    review = choose_each(client, shop, state, {cheap: (1, "UNWANTED", "refund")})

    # then the review says it can be kept, and no return shipping fee is taken
    html = body(review)
    assert "data-returnless" in html
    assert "data-shipping-fee" not in html
    refund_item = expected_item(cheap, 1, "refund")
    assert review_numbers(html)["estimate-total"] == str(refund_item)

    # and the stored request is returnless with the same numbers
    status = submit(client, shop, state_of(review))
    [rr] = ReturnRequest.objects.filter(shop=shop)
    assert (rr.is_returnless, rr.refund_estimate) == (True, refund_item)
    assert "data-returnless" in body(status)


@pytest.mark.parametrize("case", ["above the value", "an exchange"])
def test_a_return_above_the_value_or_with_an_exchange_is_sent_back(client, devshop, shop, case):
    order = delivered_order(
        devshop, shop, line_items=1, line_item_quantity=1, line_item_product_type="Apparel"
    )
    [line] = lines(order)
    value = line_item_unit_value(line)
    with_fees(shop, keep_items_max_value=value - CENT if case == "above the value" else value)
    items_page = lookup(client, shop, order)
    picks = {line: (1, "UNWANTED", "exchange" if case == "an exchange" else "refund")}
    data = {}
    if case == "an exchange":
        variant = re.search(
            rf'name="variant-{line.pk}".*?<option value="(\d+)"', body(items_page), re.S
        )
        data[f"variant-{line.pk}"] = variant[1]

    review = choose_each(client, shop, state_of(items_page), picks, **data)

    html = body(review)
    assert 'data-view="review"' in html, html[:2000]
    assert "data-returnless" not in html
    assert "data-shipping-fee" in html
    submit(client, shop, state_of(review))
    assert ReturnRequest.objects.get(shop=shop).is_returnless is False


def test_a_kept_return_goes_to_shopify_without_shipping_and_is_settled_without_receipt(
    devshop, capture, rq_worker
):
    # given a policy with a shipping fee whose "keep the items" value covers the order
    store = store_with_delivered_order(devshop, capture, rq_worker, line_item_quantity=1)
    first = store.order.line_items.order_by("pk").first()
    services.return_policy_update(
        shop=store.shop,
        return_shipping_fee=Decimal("3.00"),
        keep_items_max_value=line_item_unit_value(first),
    )
    request = services.return_request_submit(
        shop=store.shop,
        order=store.order,
        items=[{"line_item_id": first.pk, "quantity": 1, "reason": "UNWANTED"}],
        resolution="refund",
        customer_email=store.order.email,
        customer_id=store.order.customer_id,
    )
    assert request.is_returnless

    # when it is sent, approved and processed with nothing received
    rq_worker()
    request.refresh_from_db()
    services.return_request_approve(shop=store.shop, request=request, instructions="")
    services.return_request_process(shop=store.shop, request=request)

    # then Shopify refunded the item's whole value: no shipping fee was kept
    request.refresh_from_db()
    value = money(line_item_unit_value(first))
    assert request.refunded_amount == value
    in_shopify = devshop.client.return_get(store.domain, request.shopify_return_id)
    assert Decimal(in_shopify["refunded_amount"]) == value
    assert request.status == "CLOSED"
    assert request.line_items.get().received_quantity == 0


def test_the_status_page_of_a_kept_return_has_no_received_step(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    rr = request_in(shop, order, status="OPEN", is_returnless=True)

    html = unescape(body(proxy_get(client, shop, f"/{portal.return_status_token(rr)}")))

    assert "You can keep the items: there's nothing to send back." in html
    assert "Received" not in html
    assert "Send the items back" not in html


@pytest.mark.parametrize("language", ["de", "es", "fr"])
def test_the_new_sentences_are_in_the_orders_language(client, devshop, shop, language):
    from django.utils.translation import gettext, override

    # given an order placed in another language, a policy with fees and a bonus
    with_fees(shop)
    order = delivered_order(
        devshop, shop, line_items=2, line_item_quantity=1, customer_locale=language
    )
    first, second = lines(order)
    items_page = lookup(client, shop, order)
    review = choose_each(
        client,
        shop,
        state_of(items_page),
        {first: (1, "UNWANTED", "refund"), second: (1, "UNWANTED", "store_credit")},
    )

    # then the items page, the review and the status page say the new sentences in it
    pages = {
        "items": unescape(body(items_page)),
        "review": unescape(body(review)),
        "status": unescape(body(submit(client, shop, state_of(review)))),
    }

    def sentences():
        return {
            "items": [
                gettext("What would you like for this item?"),
                gettext("Store credit (+%(percent)s%% bonus)") % {"percent": "10"},
            ],
            "review": [
                gettext("What you'll get back"),
                gettext("Store credit bonus"),
                gettext("Estimated store credit"),
            ],
            "status": [gettext("Estimated store credit: %(amount)s %(currency)s").split(":")[0]],
        }

    with override(language):
        expected = sentences()
    with override("en"):
        english = sentences()
    for page, said in expected.items():
        for sentence, in_english in zip(said, english[page], strict=True):
            assert sentence != in_english, (language, sentence)
            assert sentence in pages[page], (page, sentence)

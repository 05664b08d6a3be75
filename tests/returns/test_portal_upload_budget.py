"""The photo stash cannot be filled by posting the items step again and again (issue 6).

Every accepted items post reserves its new photos in the order's budget in Redis before a byte
is written (portal.PHOTO_BUDGET_*): beyond it the shopper reads why on the items page and
nothing is stashed or deleted. The items step is rate-limited per client like the lookup.
Photos a re-choice replaces or drops are deleted at once, not left for the hourly cron job.

The stash is measured on disk (each test has its own MEDIA_ROOT); budgets expire through the
key's Redis TTL, which the tests read and then stand in for by deleting the key.
"""

import io
import ipaddress
import itertools
import logging
import random

import pytest
import redis
from django.core.files.storage import default_storage
from django.utils import translation
from PIL import Image

from returns import images, portal
from returns.models import ReturnPhoto, ReturnRequest
from shopapp.storefront import ratelimit
from tests.conftest import need
from tests.returns import test_portal
from tests.returns.test_portal import (
    JPEG,
    body,
    choose,
    delivered_order,
    lines,
    lookup,
    photo,
    proxy_post,
    state_of,
    submit,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The portal tests' fixtures: an installed shop with its own MEDIA_ROOT, fresh Redis keys.
shop = test_portal.shop
_fresh_redis = test_portal._fresh_redis

MiB = 1024 * 1024
BUDGET_MESSAGE = "as many photos as we can take for this order"
# Addresses of this module's own (test_portal's shared iterator has 249 in all).
_addresses = (str(ipaddress.IPv4Address("10.66.0.1") + n) for n in itertools.count())


def new_ip() -> str:
    return next(_addresses)


@pytest.fixture(autouse=True)
def budgets(settings):
    """The Redis behind the budget, with no order's budget left from an earlier test."""
    connection = redis.Redis.from_url(settings.REDIS_URL)
    try:
        connection.ping()
    except redis.RedisError as exc:
        need(f"Redis unreachable: {exc}")
    for key in connection.scan_iter("returns:stash:*"):
        connection.delete(key)
    return connection


def pending(shop) -> dict[str, int]:
    """The shop's stash on disk: name → bytes."""
    folder = f"{portal.PENDING_PHOTO_PREFIX}/{shop.pk}"
    if not default_storage.exists(folder):
        return {}
    return {
        f"{folder}/{name}": default_storage.size(f"{folder}/{name}")
        for name in default_storage.listdir(folder)[1]
    }


def refs(shop, state: str) -> dict[int, list[str]]:
    """The stashed photo names a signed state holds, per line item id."""
    loaded = portal.state_loads(state, shop=shop, customer_id=None)
    assert loaded is not None
    return {item.line_item_id: [ref["name"] for ref in item.photos] for item in loaded.items}


def noisy_jpeg(seed: int, size=(480, 360)) -> bytes:
    """A photo that does not compress: what it weighs once re-encoded is near what it was."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


def full_batch() -> list:
    """Five incompressible photos: the most one item takes in one post."""
    return [photo(f"p{n}.jpg", noisy_jpeg(n)) for n in range(portal.PHOTOS_MAX_PER_ITEM)]


def tiny_batch() -> list:
    return [photo(f"t{n}.jpg") for n in range(portal.PHOTOS_MAX_PER_ITEM)]


def exhaust_by_count(client, shop, order) -> list[str]:
    """Post one state with five tiny photos, each time from a new address (so the per-client
    rate limit never steps in), until the budget refuses. Returns the review states issued."""
    [line] = lines(order)
    state = state_of(lookup(client, shop, order))
    issued = []
    for _ in range(portal.PHOTO_BUDGET_PHOTOS_PER_ORDER // portal.PHOTOS_MAX_PER_ITEM):
        review = choose(client, shop, state, {line: (1, "UNWANTED", "", tiny_batch())}, ip=new_ip())
        assert review.status_code == 200, body(review)[:2000]
        issued.append(state_of(review))
    refused = choose(client, shop, state, {line: (1, "UNWANTED", "", tiny_batch())}, ip=new_ip())
    assert refused.status_code == 429
    return issued


# ---------------------------------------------------------------------------------------------
# A hostile client


def test_reposting_one_state_with_photos_stops_at_the_byte_budget(
    client, devshop, shop, monkeypatch
):
    # given a client holding one valid state of a one-item order, and a byte budget that
    # takes four batches of its incompressible photos and a half (the budget counts the bytes
    # stored: each photo as re-encoded, which is what lands on disk)
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    state = state_of(lookup(client, shop, order))
    per_post = sum(
        len(images.photo_clean(noisy_jpeg(n)).content) for n in range(portal.PHOTOS_MAX_PER_ITEM)
    )
    assert per_post > portal.PHOTOS_MAX_PER_ITEM * 100_000
    monkeypatch.setattr(portal, "PHOTO_BUDGET_BYTES_PER_ORDER", per_post * 9 // 2)

    # when it posts that state again and again, each time with the five photos, from many
    # addresses
    statuses, on_disk, last = [], [], None
    for _ in range(4 + 3):
        last = choose(client, shop, state, {line: (1, "UNWANTED", "", full_batch())}, ip=new_ip())
        statuses.append(last.status_code)
        on_disk.append(sum(pending(shop).values()))

    # then the stash grows by one batch per post up to the budget, and not a byte after
    accepted = 4
    assert statuses == [200] * accepted + [429] * 3
    assert on_disk == [per_post * n for n in range(1, accepted + 1)] + [accepted * per_post] * 3
    assert max(on_disk) <= portal.PHOTO_BUDGET_BYTES_PER_ORDER
    # and the refusal is the items page with the reason, the shopper's state still in it
    html = body(last)
    assert BUDGET_MESSAGE in html
    assert 'role="alert"' in html
    assert f'name="quantity-{line.pk}"' in html
    assert refs(shop, state_of(last)) == {}
    assert 0 < int(last["Retry-After"]) <= portal.photo_budget_seconds()
    assert ReturnRequest.objects.count() == 0


def test_reposting_with_tiny_photos_stops_at_the_photo_budget(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)

    exhaust_by_count(client, shop, order)

    assert len(pending(shop)) == portal.PHOTO_BUDGET_PHOTOS_PER_ORDER == 60


def test_a_refused_post_stashes_nothing_and_deletes_nothing(client, devshop, shop):
    # given an order whose budget is spent, and a review state holding five stashed photos
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    issued = exhaust_by_count(client, shop, order)
    with_photos = issued[0]
    kept = refs(shop, with_photos)[line.pk]
    before = pending(shop)

    # when the shopper goes back from that review and picks new photos to replace them
    back = proxy_post(client, shop, {"step": "back", "state": with_photos}, ip=new_ip())
    refused = choose(
        client, shop, state_of(back), {line: (1, "UNWANTED", "", [photo("new.jpg")])}, ip=new_ip()
    )

    # then they are told why, nothing new is stashed and the photos they had stay attached
    assert refused.status_code == 429
    assert BUDGET_MESSAGE in body(refused)
    assert "5 photos already attached." in body(refused)
    assert pending(shop) == before
    assert refs(shop, state_of(refused)) == {line.pk: kept}

    # and they can still go on with the photos already attached
    review = choose(client, shop, state_of(refused), {line: (1, "UNWANTED")}, ip=new_ip())
    assert review.status_code == 200, body(review)[:2000]
    assert refs(shop, state_of(review)) == {line.pk: kept}
    assert pending(shop) == before


def test_another_orders_budget_is_separate(client, devshop, shop):
    # given one order whose budget is spent
    spent = delivered_order(devshop, shop, line_items=1)
    exhaust_by_count(client, shop, spent)
    before = len(pending(shop))

    # when photos are attached to another order of the same shop
    other = delivered_order(devshop, shop, line_items=1)
    [line] = lines(other)
    review = choose(
        client,
        shop,
        state_of(lookup(client, shop, other)),
        {line: (1, "UNWANTED", "", tiny_batch())},
        ip=new_ip(),
    )

    # then they are taken
    assert review.status_code == 200, body(review)[:2000]
    assert BUDGET_MESSAGE not in body(review)
    assert len(pending(shop)) == before + portal.PHOTOS_MAX_PER_ITEM


def test_photos_are_taken_again_once_the_budget_expires(client, devshop, shop, budgets, settings):
    # given an order whose budget is spent
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    exhaust_by_count(client, shop, order)
    key = portal.photo_budget_key(shop_id=shop.pk, order_id=order.pk)

    # then the budget lives as long as the hourly cron job may keep the photos it counts
    ttl = budgets.ttl(key)
    assert ttl > settings.RETURNS_PHOTO_STASH_TTL_HOURS * 3600
    assert portal.photo_budget_seconds() - 60 < ttl <= portal.photo_budget_seconds()

    # when that time has passed (Redis drops the key)
    budgets.delete(key)
    before = len(pending(shop))
    review = choose(
        client,
        shop,
        state_of(lookup(client, shop, order)),
        {line: (1, "UNWANTED", "", tiny_batch())},
        ip=new_ip(),
    )

    # then new photos are taken again
    assert review.status_code == 200, body(review)[:2000]
    assert len(pending(shop)) == before + portal.PHOTOS_MAX_PER_ITEM


# ---------------------------------------------------------------------------------------------
# A real shopper


def test_a_shopper_with_photos_on_two_items_and_one_rechoice_keeps_only_their_photos(
    client, devshop, shop
):
    # given a two-item order and a shopper on one connection with full-size phone photos
    order = delivered_order(devshop, shop, line_items=2)
    first, second = lines(order)
    ip = new_ip()
    phone = JPEG + b"\x00" * (4 * MiB)
    state = state_of(lookup(client, shop, order, ip=ip))

    # when they attach two photos to the first item and one to the second
    review = choose(
        client,
        shop,
        state,
        {
            first: (
                1,
                "NOT_AS_DESCRIBED",
                "Colour is off",
                [photo("a1.jpg", phone), photo("a2.jpg", phone)],
            ),
            second: (1, "DEFECTIVE", "Torn seam", [photo("b1.jpg", phone)]),
        },
        ip=ip,
    )
    assert review.status_code == 200, body(review)[:2000]
    chosen = refs(shop, state_of(review))
    assert sorted(pending(shop)) == sorted(chosen[first.pk] + chosen[second.pk])
    assert len(chosen[first.pk]) == 2

    # and go back and replace the first item's photos with a better one, the second's kept
    back = proxy_post(client, shop, {"step": "back", "state": state_of(review)}, ip=ip)
    assert "2 photos already attached." in body(back)
    assert "1 photo already attached." in body(back)
    again = choose(
        client,
        shop,
        state_of(back),
        {
            first: (1, "NOT_AS_DESCRIBED", "Colour is off", [photo("a3.jpg", phone)]),
            second: (1, "DEFECTIVE", "Torn seam"),
        },
        ip=ip,
    )

    # then they were never refused, and only the photos they kept are on disk
    assert again.status_code == 200, body(again)[:2000]
    assert BUDGET_MESSAGE not in body(review) + body(back) + body(again)
    rechosen = refs(shop, state_of(again))
    assert rechosen[second.pk] == chosen[second.pk]
    assert len(rechosen[first.pk]) == 1
    assert rechosen[first.pk][0] not in chosen[first.pk]
    assert sorted(pending(shop)) == sorted(rechosen[first.pk] + rechosen[second.pk])

    # and once submitted the request holds those two and the stash is empty
    done = submit(client, shop, state_of(again), ip=ip)
    assert done.status_code == 201, body(done)[:2000]
    assert ReturnPhoto.objects.filter(shop=shop).count() == 2
    assert pending(shop) == {}


def test_an_item_dropped_at_a_rechoice_takes_its_photos_with_it(client, devshop, shop):
    # given photos on both items of an order
    order = delivered_order(devshop, shop, line_items=2)
    first, second = lines(order)
    review = choose(
        client,
        shop,
        state_of(lookup(client, shop, order)),
        {
            first: (1, "UNWANTED", "", [photo("a.jpg")]),
            second: (1, "NOT_AS_DESCRIBED", "", [photo("b.jpg")]),
        },
    )
    chosen = refs(shop, state_of(review))

    # when the shopper goes back and returns the first item only
    back = proxy_post(client, shop, {"step": "back", "state": state_of(review)})
    again = choose(client, shop, state_of(back), {first: (1, "UNWANTED")})

    # then the second item's photo is deleted at once, the first's kept
    assert again.status_code == 200, body(again)[:2000]
    assert refs(shop, state_of(again)) == {first.pk: chosen[first.pk]}
    assert sorted(pending(shop)) == chosen[first.pk]


def test_a_rechoice_with_a_mistake_deletes_nothing(client, devshop, shop):
    # given a photo attached to an item
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    review = choose(
        client, shop, state_of(lookup(client, shop, order)), {line: (1, "UNWANTED", "", [photo()])}
    )
    before = pending(shop)

    # when the shopper goes back and posts a new photo with no reason chosen
    back = proxy_post(client, shop, {"step": "back", "state": state_of(review)})
    wrong = choose(client, shop, state_of(back), {line: (1, "", "", [photo("new.jpg")])})

    # then the mistake is shown and the photo they had is still there, nothing added
    assert "Choose a reason for this item." in body(wrong)
    assert pending(shop) == before
    assert refs(shop, state_of(wrong)) == refs(shop, state_of(review))


# ---------------------------------------------------------------------------------------------
# The rate limit


def test_the_items_step_is_rate_limited_per_client(client, devshop, shop):
    # given a client that has posted the items step as often as one address may
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    ip = new_ip()
    state = state_of(lookup(client, shop, order, ip=ip))
    for _ in range(portal.ITEMS_RATE_PER_CLIENT):
        answer = proxy_post(client, shop, {"step": "items", "state": state}, ip=ip)
        assert answer.status_code == 200
        assert "Choose at least one item to return." in body(answer)

    # when it posts once more, with photos
    response = choose(client, shop, state, {line: (1, "UNWANTED", "", [photo()])}, ip=ip)

    # then it gets the portal's page saying so, as the lookup step answers, and nothing is stashed
    assert response.status_code == 429
    assert response["Content-Type"] == "application/liquid; charset=utf-8"
    assert 0 < int(response["Retry-After"]) <= ratelimit.window_seconds() + 5
    html = body(response)
    assert 'data-view="rate_limited"' in html
    assert "Too many attempts from here. Please try again in" in html
    assert "Traceback" not in html
    assert pending(shop) == {}

    # and another address is served, and this one can still look orders up
    elsewhere = choose(client, shop, state, {line: (1, "UNWANTED", "", [photo()])}, ip=new_ip())
    assert elsewhere.status_code == 200, body(elsewhere)[:2000]
    assert len(pending(shop)) == 1
    assert lookup(client, shop, order, ip=ip).status_code == 200


def test_the_rate_limit_page_speaks_the_shoppers_language(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1)
    ip = new_ip()
    state = state_of(lookup(client, shop, order, ip=ip))
    for _ in range(portal.ITEMS_RATE_PER_CLIENT):
        proxy_post(client, shop, {"step": "items", "state": state}, ip=ip)

    response = proxy_post(
        client, shop, {"step": "items", "state": state}, ip=ip, headers={"Accept-Language": "fr"}
    )

    assert response.status_code == 429
    assert "Trop de tentatives depuis cet appareil. Réessayez dans" in body(response)


def test_the_budget_message_speaks_the_orders_language(client, devshop, shop):
    order = delivered_order(devshop, shop, line_items=1, customer_locale="de")
    [line] = lines(order)
    state = state_of(lookup(client, shop, order))
    exhaust_by_count(client, shop, order)

    refused = choose(client, shop, state, {line: (1, "UNWANTED", "", [photo()])}, ip=new_ip())

    assert refused.status_code == 429
    assert "Du hast so viele Fotos hinzugefügt" in body(refused)


@pytest.mark.parametrize("language", ["es", "fr", "de"])
def test_the_new_messages_are_translated(language):
    budget = (
        "You've added as many photos as we can take for this order. Continue with the photos "
        "already attached, or contact the store."
    )
    attempts = "Too many attempts from here. Please try again in %(counter)s minute."
    with translation.override(language):
        assert translation.gettext(budget) != budget
        for n in (1, 5):
            words = translation.ngettext(attempts, attempts.replace("minute.", "minutes."), n)
            assert words != attempts
            assert "%(counter)s" in words


# ---------------------------------------------------------------------------------------------
# Redis unreachable


def test_without_redis_photos_are_still_taken(client, devshop, shop, settings, caplog):
    # given an order looked up while Redis works
    order = delivered_order(devshop, shop, line_items=1)
    [line] = lines(order)
    state = state_of(lookup(client, shop, order))

    # when Redis is unreachable at the items step
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with caplog.at_level(logging.WARNING, logger="returns.portal"):
        review = choose(client, shop, state, {line: (1, "UNWANTED", "", [photo()])})

    # then the shopper's photo is taken (fail open, like the lookup's limit) and it is logged
    assert review.status_code == 200, body(review)[:2000]
    assert len(pending(shop)) == 1
    assert "returns.portal.photo_budget_unavailable" in caplog.messages
    assert "returns.portal.items_rate_limit_unavailable" in caplog.messages

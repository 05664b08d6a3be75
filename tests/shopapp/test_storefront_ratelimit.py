"""Lookup rate limits on a real Redis: per shop and client IP, per shop and order number,
a clear 429 page when hit, a fresh allowance when the window ends, and open (with a log
line) when Redis is unreachable."""

import logging
import time

import pytest
import redis

from shopapp.storefront.ratelimit import address_subject, client_address, lookup_rate_limit_hit
from tests.conftest import need
from tests.tracking.test_page import _order_with_shipment, body, follow, make_shop, proxy_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    connection = redis.Redis.from_url(settings.REDIS_URL)
    try:
        connection.ping()
    except redis.RedisError as exc:
        need(f"Redis unreachable: {exc}")
    # Shop ids come back after each test's rollback: start every test from no counts.
    for key in connection.scan_iter("tracking:rl:*"):
        connection.delete(key)
    settings.TRACKING_LOOKUP_RATE_PER_IP = 3
    settings.TRACKING_LOOKUP_RATE_PER_ORDER = 2
    settings.TRACKING_LOOKUP_RATE_WINDOW_SECONDS = 60
    return settings


def _wrong(client, shop, order="1001", ip="203.0.113.9"):
    return proxy_post(client, shop, {"order": order, "contact": "eve@example.com"}, ip=ip)


def test_one_client_trying_many_orders_is_paused_with_a_clear_page(client, limits):
    # given a shop and a client allowed 3 lookups per window
    shop = make_shop()

    # when it tries 4 different order numbers
    answers = [_wrong(client, shop, order=str(2000 + i)) for i in range(4)]

    # then the 4th is refused with 429, a message and Retry-After
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert "Too many attempts" in body(refused)
    assert "Please try again in 1 minute." in body(refused)
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert refused["Content-Type"] == "application/liquid; charset=utf-8"
    assert refused["Cache-Control"] == "private, no-store"
    # and another client of the same shop is not affected
    assert _wrong(client, shop, order="3000", ip="198.51.100.7").status_code == 200


def test_many_clients_trying_one_order_are_paused(client, limits):
    shop = make_shop()
    _order_with_shipment(shop)

    answers = [_wrong(client, shop, order="#1001", ip=f"198.51.100.{i}") for i in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    # "1001" and "#1001" are one order number
    assert _wrong(client, shop, order="1001", ip="198.51.100.99").status_code == 429


def test_a_paused_client_cannot_look_up_even_the_right_order(client, limits):
    # the limit is checked before the lookup: a correct guess after the limit reveals nothing
    shop = make_shop()
    _order_with_shipment(shop)
    for i in range(3):
        _wrong(client, shop, order=str(4000 + i))

    response = proxy_post(client, shop, {"order": "1001", "contact": "ada@example.com"})

    assert response.status_code == 429
    assert "Arrived at hub" not in body(response)


def test_limits_are_per_shop(client, limits):
    shop, other = make_shop(), make_shop()
    for i in range(3):
        _wrong(client, shop, order=str(5000 + i))

    assert _wrong(client, shop, order="5100").status_code == 429
    assert _wrong(client, other, order="5100").status_code == 200


def test_the_limit_resets_when_the_window_ends(client, limits):
    # given a one-second window, and a client that used it up
    limits.TRACKING_LOOKUP_RATE_WINDOW_SECONDS = 1
    shop = make_shop()
    # start at the beginning of a window so the three hits share it
    time.sleep(1 - (time.time() % 1) + 0.01)
    answers = [_wrong(client, shop, order=str(6000 + i)) for i in range(4)]
    assert answers[-1].status_code == 429

    # when the next window starts
    time.sleep(1.05)

    # then it may look up again
    assert _wrong(client, shop, order="6100").status_code == 200


def test_tracking_number_lookups_count_too(client, limits):
    shop = make_shop()

    answers = [
        proxy_post(client, shop, {"lookup": "tracking_number", "tracking_number": f"1Z99{i:08d}"})
        for i in range(4)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]


def test_keys_expire_and_hold_no_raw_ip(client, limits):
    shop = make_shop()
    _wrong(client, shop, ip="203.0.113.77")

    connection = redis.Redis.from_url(limits.REDIS_URL)
    keys = [k.decode() for k in connection.scan_iter(f"tracking:rl:*:{shop.pk}:*")]
    assert len(keys) == 2  # ip and order
    assert not any("203.0.113.77" in k or "1001" in k for k in keys)
    assert all(0 < connection.ttl(k) <= 65 for k in keys)


def test_redis_down_fails_open_with_a_log_line(client, limits, caplog):
    # given a Redis that does not answer
    limits.REDIS_URL = "redis://127.0.0.1:1/0"
    shop = make_shop()
    _order_with_shipment(shop)

    # when lookups come in, more than the limit
    with caplog.at_level(logging.WARNING, logger="shopapp.storefront.ratelimit"):
        started = time.monotonic()
        answers = [
            proxy_post(client, shop, {"order": "1001", "contact": "ada@example.com"})
            for _ in range(5)
        ]
        elapsed = time.monotonic() - started

    # then the page keeps working, quickly, and says why in the log
    assert [a.status_code for a in answers] == [303] * 5
    assert "Order #1001" in body(follow(client, shop, answers[-1]))
    assert elapsed < 5
    assert "tracking.lookup.rate_limit_unavailable" in caplog.messages


@pytest.mark.parametrize(
    "spelling",
    [
        "01001",
        "0000001001",
        "#01001",
        "\uff11\uff10\uff10\uff11",  # fullwidth
        "\u0661\u0660\u0660\u0661",  # Arabic-Indic
        "\u0967\u0966\u0966\u0967",  # Devanagari
    ],
)
def test_a_locked_order_stays_locked_in_every_spelling(client, limits, spelling):
    # given an order locked after two wrong guesses from two clients
    shop = make_shop()
    _order_with_shipment(shop)
    for i in range(2):
        _wrong(client, shop, order="1001", ip=f"198.51.100.{i}")

    # when a third client types its number otherwise, with the right email
    response = proxy_post(
        client, shop, {"order": spelling, "contact": "ada@example.com"}, ip="192.0.2.50"
    )

    # then it is refused, and nothing of the order shows
    assert response.status_code == 429
    assert "Arrived at hub" not in body(response)


def test_one_ipv6_subscriber_is_one_client(client, limits):
    # given a client allowed 3 lookups, whose /64 holds 2^64 addresses
    shop = make_shop()
    answers = [
        _wrong(client, shop, order=str(7000 + i), ip=f"2001:db8:1:2::{i + 1:x}") for i in range(4)
    ]

    # then the 4th address of the same /64 is refused, another /64 is not
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert _wrong(client, shop, order="7100", ip="2001:db8:1:3::1").status_code == 200


def test_a_client_cannot_pose_as_many_by_writing_its_own_forwarded_for(client, limits):
    # given a proxy that appends (as Heroku's router and most load balancers do): the client's
    # own X-Forwarded-For comes first, the address the trusted hop saw last
    limits.TRUSTED_PROXY_COUNT = 1
    shop = make_shop()

    answers = [
        _wrong(client, shop, order=str(8000 + i), ip=f"10.9.9.{i}, 203.0.113.9, 172.16.0.1")
        for i in range(4)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]


@pytest.mark.parametrize(
    ("forwarded_for", "remote_addr", "trusted", "via_shopify", "expected"),
    [
        # gunicorn faces the internet; Shopify's proxy sets the shopper's address
        ("203.0.113.9", "23.227.38.1", 0, True, "203.0.113.9"),
        # a forged entry to the left of Shopify's is never believed
        ("6.6.6.6, 203.0.113.9", "23.227.38.1", 0, True, "203.0.113.9"),
        # behind one load balancer of ours, which appended Shopify's address
        ("203.0.113.9, 23.227.38.1", "10.0.0.2", 1, True, "203.0.113.9"),
        # not through Shopify (e.g. /auth/install): the peer itself, whatever the header says
        ("6.6.6.6", "198.51.100.4", 0, False, "198.51.100.4"),
        ("6.6.6.6, 198.51.100.4", "10.0.0.2", 1, False, "198.51.100.4"),
        # a shorter chain than promised: its leftmost address
        ("", "127.0.0.1", 1, True, "127.0.0.1"),
    ],
)
def test_client_address_believes_only_trusted_hops(
    settings, forwarded_for, remote_addr, trusted, via_shopify, expected
):
    settings.TRUSTED_PROXY_COUNT = trusted

    assert client_address(forwarded_for, remote_addr, via_shopify=via_shopify) == expected


@pytest.mark.parametrize(
    ("address", "subject"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("not an address", "not an address"),
        ("", "unknown"),
    ],
)
def test_budgets_are_per_ipv4_address_or_ipv6_64(address, subject):
    assert address_subject(address) == subject


def test_the_limiter_counts_per_subject(limits):
    first = [lookup_rate_limit_hit(shop_id=999_001, client_ip="a", order_key="") for _ in range(4)]

    assert [r.allowed for r in first] == [True, True, True, False]
    assert first[-1].retry_after > 0

"""The devshop's webhook delivery, seen from the receiving end: a capture server stands in for
the app (the devshop's APP_URL), so each test reads the exact bytes and headers sent."""

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import start_devshop
from tests.devshop.capture_server import CaptureServer, Reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify" / "webhooks"
RETRY_BASE_SECONDS = 0.4


@pytest.fixture(scope="module")
def capture():
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def store(capture, tmp_path_factory):
    """A devshop whose app (APP_URL) is the capture server."""
    server = start_devshop(tmp_path_factory.mktemp("devshop-webhooks"), {"APP_URL": capture.url})
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def client(store, capture):
    capture.reset()
    # The background loop is paused so each test decides when deliveries go (flush).
    store.client.knobs_set(
        webhook_delivery_paused=True,
        webhook_retry_base_seconds=RETRY_BASE_SECONDS,
        webhook_max_retries=8,
        webhook_chaos_duplicate=0.0,
        webhook_chaos_reorder=False,
        webhook_chaos_delay_seconds=0.0,
    )
    return store.client


def installed_shop(client) -> str:
    domain = f"wh-{uuid.uuid4().hex[:10]}.myshopify.com"
    client.shop_create(domain)
    client.app_install(domain)
    return domain


def fixture_payload(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def app_signature_valid(body: bytes, header: str) -> bool:
    # The rule the app applies (DESIGN: the way of one webhook, step 2).
    digest = hmac.new(settings.SHOPIFY_API_SECRET.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), header)


def test_delivery_carries_shopify_headers_and_a_valid_signature(client, capture):
    # given an installed shop and Shopify's sample orders/create payload
    shop = installed_shop(client)
    payload = fixture_payload("orders__create")

    # when the store emits it and delivers
    emitted = client.webhook_emit(shop, "orders/create", payload)
    counts = client.webhooks_flush()

    # then exactly one POST reached the app's /webhooks/, signed and labelled as Shopify does
    assert counts["delivered"] >= 1
    [received] = capture.received(x_shopify_shop_domain=shop)
    assert received.method == "POST"
    assert received.path == "/webhooks/"
    assert json.loads(received.body) == payload
    assert app_signature_valid(received.body, received.header("X-Shopify-Hmac-Sha256"))
    assert received.header("Content-Type") == "application/json"
    assert received.header("User-Agent") == "Shopify-Captain-Hook"
    assert received.header("X-Shopify-Topic") == "orders/create"
    assert received.header("X-Shopify-API-Version") == settings.SHOPIFY_API_VERSION
    assert received.header("X-Shopify-Webhook-Id") == emitted["deliveries"][0]["webhook_id"]
    assert received.header("X-Shopify-Event-Id") == emitted["event_id"]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", received.header("X-Shopify-Triggered-At")
    )
    assert received.header("X-Shopify-Order-Id") == str(payload["id"])
    assert received.header("X-Shopify-Test") == "false"
    [listed] = client.webhook_deliveries(shop=shop)
    assert listed["status"] == "delivered"
    assert listed["attempts"] == 1


def test_body_is_signed_byte_for_byte_with_non_ascii_text(client, capture):
    # given a payload with characters JSON could escape either way
    shop = installed_shop(client)
    payload = {"id": 1, "note": "Grüße aus Köln — ✓", "total_price": "10.00"}

    # when it is delivered
    client.webhook_emit(shop, "orders/updated", payload)
    client.webhooks_flush()

    # then the signature covers exactly the bytes sent (UTF-8, not \\u-escaped)
    [received] = capture.received(x_shopify_shop_domain=shop)
    assert "Grüße".encode() in received.body
    assert app_signature_valid(received.body, received.header("X-Shopify-Hmac-Sha256"))


def test_a_500_is_retried_with_exponential_backoff_and_the_original_payload(client, capture):
    # given an app that fails twice, then recovers
    shop = installed_shop(client)
    capture.replies = [Reply(status=500), Reply(status=500), Reply(status=200)]
    client.webhook_emit(shop, "fulfillments/create", fixture_payload("fulfillments__create"))

    # when the store delivers whatever is due, over time
    first = client.webhooks_flush()
    immediately = client.webhooks_flush()
    time.sleep(RETRY_BASE_SECONDS + 0.2)
    second = client.webhooks_flush()
    time.sleep(RETRY_BASE_SECONDS * 2 + 0.2)
    third = client.webhooks_flush()

    # then each failure waited longer than the one before, and the retry succeeded
    assert (first["failed"], immediately["due"], second["failed"], third["delivered"]) == (
        1,
        0,
        1,
        1,
    )
    attempts = capture.received(x_shopify_shop_domain=shop)
    assert len(attempts) == 3
    # the same delivery every time: same webhook id, same bytes, same signature
    assert len({a.header("X-Shopify-Webhook-Id") for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    assert len({a.header("X-Shopify-Hmac-Sha256") for a in attempts}) == 1
    [listed] = client.webhook_deliveries(shop=shop)
    assert listed["status"] == "delivered"
    assert listed["attempts"] == 3
    assert [a["status_code"] for a in listed["attempt_log"]] == [500, 500, 200]


def test_a_redirect_is_a_failure_and_is_not_followed(client, capture):
    # given an app answering 301 (Shopify: anything outside 2xx, 3xx included, is a failure)
    shop = installed_shop(client)
    capture.replies = [Reply(status=301, headers={"Location": "/elsewhere/"})]

    # when the store delivers
    client.webhook_emit(shop, "orders/paid", fixture_payload("orders__paid"))
    counts = client.webhooks_flush()

    # then it failed, will retry, and never went to the Location
    assert counts["failed"] == 1
    received = capture.received(x_shopify_shop_domain=shop)
    assert [r.path for r in received] == ["/webhooks/"]
    [listed] = client.webhook_deliveries(shop=shop)
    assert (listed["status"], listed["last_status_code"], listed["attempts"]) == (
        "pending",
        301,
        1,
    )


def test_delivery_gives_up_when_retries_run_out(client, capture):
    # given an app that always fails and a store allowed 2 retries
    shop = installed_shop(client)
    client.knobs_set(webhook_max_retries=2, webhook_retry_base_seconds=0.05)
    capture.responder = lambda request: Reply(status=503)
    client.webhook_emit(shop, "orders/cancelled", fixture_payload("orders__cancelled"))

    # when every due attempt is made
    for _ in range(6):
        client.webhooks_flush()
        time.sleep(0.25)

    # then it was tried 1 + 2 times and marked failed
    [listed] = client.webhook_deliveries(shop=shop)
    assert (listed["status"], listed["attempts"]) == ("failed", 3)
    assert len(capture.received(x_shopify_shop_domain=shop)) == 3


def test_one_event_to_two_subscriptions_shares_the_event_id_not_the_webhook_id(client, capture):
    # given the app's TOML subscription plus a shop-specific one to the same topic
    shop = installed_shop(client)
    client.webhook_subscription_create(shop, "orders/create", f"{capture.url}/extra-hook")

    # when one order is created
    client.webhook_emit(shop, "orders/create", fixture_payload("orders__create"))
    client.webhooks_flush()

    # then both receive it: one event id, two webhook ids
    received = capture.received(x_shopify_shop_domain=shop)
    assert sorted(r.path for r in received) == ["/extra-hook", "/webhooks/"]
    assert len({r.header("X-Shopify-Event-Id") for r in received}) == 1
    assert len({r.header("X-Shopify-Webhook-Id") for r in received}) == 2


def test_a_shop_without_the_app_gets_no_webhooks(client, capture):
    # given a shop that never installed the app
    shop = f"wh-{uuid.uuid4().hex[:10]}.myshopify.com"
    client.shop_create(shop)

    # when an order event happens
    emitted = client.webhook_emit(shop, "orders/create", {"id": 1})
    client.webhooks_flush()

    # then nothing is queued or sent
    assert emitted["deliveries"] == []
    assert capture.received(x_shopify_shop_domain=shop) == []


def test_emit_refuses_bad_input(client, store):
    import requests

    shop = installed_shop(client)
    response = requests.post(
        f"{store.base_url}/_devshop/shops/{shop}/webhooks/emit",
        json={"topic": "orders/create", "payload": [1, 2]},
        timeout=5,
    )
    assert response.status_code == 400
    assert client.webhook_deliveries(shop=shop) == []


def test_chaos_duplicate_sends_the_same_webhook_id_twice(client, capture):
    # given the duplicate switch on
    shop = installed_shop(client)
    client.knobs_set(webhook_chaos_duplicate=1.0)

    # when one delivery is made
    client.webhook_emit(shop, "orders/create", fixture_payload("orders__create"))
    counts = client.webhooks_flush()

    # then the app receives it twice, identical
    received = capture.received(x_shopify_shop_domain=shop)
    assert counts["duplicates"] == 1
    assert len(received) == 2
    assert received[0].header("X-Shopify-Webhook-Id") == received[1].header("X-Shopify-Webhook-Id")
    assert received[0].body == received[1].body


def test_chaos_reorder_delivers_a_batch_out_of_order(client, capture):
    # given the reorder switch on and six events in a known order
    shop = installed_shop(client)
    client.knobs_set(webhook_chaos_reorder=True)
    for n in range(6):
        client.webhook_emit(shop, "orders/updated", {"id": 1000 + n, "updated_at": n})

    # when the batch is delivered
    client.webhooks_flush()

    # then all six arrive, not in the order they happened
    order = [json.loads(r.body)["id"] for r in capture.received(x_shopify_shop_domain=shop)]
    assert sorted(order) == [1000 + n for n in range(6)]
    assert order != sorted(order)


def test_chaos_delay_holds_deliveries_back(client, capture):
    # given deliveries delayed by up to 1 s
    shop = installed_shop(client)
    client.knobs_set(webhook_chaos_delay_seconds=1.0)
    for n in range(5):
        client.webhook_emit(shop, "orders/updated", {"id": 2000 + n})

    # then their first attempts are scheduled in the future, at different times
    listed = client.webhook_deliveries(shop=shop)
    scheduled = {d["next_attempt_at"] for d in listed}
    assert len(scheduled) == 5
    assert all(d["next_attempt_at"] > d["created_at"] for d in listed)

    # and once the delay is over a flush delivers them all
    time.sleep(1.1)
    client.webhooks_flush()
    assert len(capture.received(x_shopify_shop_domain=shop)) == 5


def test_the_background_loop_delivers_without_a_flush(client, capture):
    # given the delivery loop running
    shop = installed_shop(client)
    client.knobs_set(webhook_delivery_paused=False)

    # when an event is emitted
    client.webhook_emit(shop, "orders/create", {"id": 3000})

    # then it arrives within a moment (the loop polls every ~100 ms)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not capture.received(x_shopify_shop_domain=shop):
        time.sleep(0.05)
    assert len(capture.received(x_shopify_shop_domain=shop)) == 1


def test_end_to_end_the_app_stores_what_the_devshop_delivers(live_server, tmp_path):
    # given the real app (live server) as the devshop's app, with the shop installed on both
    from shopapp.models import Shop, WebhookEvent

    store = start_devshop(tmp_path, {"APP_URL": live_server.url})
    try:
        client = store.client
        client.knobs_set(webhook_delivery_paused=True)
        shop = installed_shop(client)
        Shop.objects.create(myshopify_domain=shop, is_active=True)
        payload = fixture_payload("orders__create")

        # when the devshop emits orders/create and delivers it over HTTP
        emitted = client.webhook_emit(shop, "orders/create", payload)
        counts = client.webhooks_flush()

        # then the app answered 200 and stored one WebhookEvent with Shopify's facts
        assert counts["delivered"] == 1, client.webhook_deliveries(shop=shop)
        event = WebhookEvent.objects.get(webhook_id=emitted["deliveries"][0]["webhook_id"])
        assert (event.topic, event.shop_domain) == ("orders/create", shop)
        assert event.event_id == emitted["event_id"]
        assert event.order_shopify_id == payload["id"]
        assert event.payload == payload
    finally:
        store.process.terminate()
        store.process.wait(timeout=10)

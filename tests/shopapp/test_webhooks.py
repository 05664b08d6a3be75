"""Webhook intake (POST /webhooks/): every guard, storage, dedupe, ignore rules, enqueue."""

import io
import json
import time

import pytest
from django.test.client import RequestFactory

from shopapp.models import Order, OrderEvent, WebhookEvent
from shopapp.webhooks import services
from shopapp.webhooks.views import webhook_receive
from tests.shopapp.webhook_support import (
    FIXTURE_ORDER_ID,
    fixture_bytes,
    fixture_json,
    make_shop,
    post_webhook,
    shopify_headers,
    sign,
)

pytestmark = pytest.mark.django_db

SHOP = "alpha.myshopify.com"


@pytest.fixture
def shop():
    return make_shop(SHOP)


# --- rejections: nothing stored -------------------------------------------------------------


def test_get_is_refused_with_405(client, shop):
    response = client.get("/webhooks/")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert WebhookEvent.objects.count() == 0


def test_forged_signature_is_refused_and_nothing_stored(client, shop):
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    headers["X-Shopify-Hmac-Sha256"] = sign(body + b" ")

    response = client.post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def _flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` changed to another of the same alphabet."""
    swapped = "B" if text[index] == "A" else "A"
    return text[:index] + swapped + text[index + 1 :] if index != -1 else text[:-1] + swapped


@pytest.mark.parametrize("index", [-1, -2], ids=["last-char", "last-data-char"])
def test_a_signature_wrong_in_its_last_character_only_is_refused(client, shop, index):
    # A comparison of a prefix of the HMAC would let this through.
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    headers["X-Shopify-Hmac-Sha256"] = _flip(headers["X-Shopify-Hmac-Sha256"], index)

    response = client.post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": 1, "total_price": NaN}',
        b'{"id": 1, "total_price": Infinity}',
        b'{"id": 1, "total_price": 1e400}',
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=["nan", "infinity", "beyond-a-double", "deep-object", "deep-array"],
)
def test_json_that_postgresql_or_python_cannot_hold_is_a_400(client, shop, body):
    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_a_nul_or_lone_surrogate_in_a_signed_payload_is_stored_not_lost(client, shop):
    # what a shopper typed reaches Shopify's JSON; PostgreSQL stores neither character
    payload = {**fixture_json("orders/create"), "note": "gift\x00wrap"}
    body = json.dumps(payload).encode().replace(b'wrap"', b'wrap\\ud800"', 1)
    assert b'"gift\\u0000wrap\\ud800"' in body

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 200
    (event,) = WebhookEvent.objects.all()
    assert event.payload["note"] == "gift\ufffdwrap\ufffd"


def test_a_number_jsonb_cannot_hold_is_stored_as_python_read_it(client, shop):
    # Python reads 1e-20000 as 0.0; PostgreSQL's numeric refuses the text as it came
    body = fixture_bytes("orders/create").replace(
        b'"total_weight":', b'"tiny":1e-20000,"total_weight":', 1
    )
    assert b"1e-20000" in body

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 200
    (event,) = WebhookEvent.objects.all()
    assert event.payload["tiny"] == 0
    assert event.payload["id"] == FIXTURE_ORDER_ID


def test_a_utf16_body_is_stored_as_python_read_it(client, shop):
    # Python's parser reads UTF-16 (with its BOM); the text itself is not storable as is
    body = json.dumps(fixture_json("orders/create")).encode("utf-16")

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 200
    assert WebhookEvent.objects.get().payload == fixture_json("orders/create")


def test_the_body_is_stored_as_shopify_sent_it(client, shop):
    body = fixture_bytes("orders/create")

    post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert WebhookEvent.objects.get().payload == json.loads(body)


def test_a_payload_is_compressed_with_lz4_on_postgresql(client, shop):
    # pglz cost PostgreSQL about 0.1 ms more CPU per ~15 KB delivery (bench/webhooks.py).
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("TOAST compression is PostgreSQL's")
    with connection.cursor() as cursor:
        # The column's own setting (the migration), whatever the server's default.
        cursor.execute(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'shopapp_webhookevent'::regclass AND attname = 'payload'"
        )
        assert cursor.fetchone() == ("l",)
    body = fixture_bytes("orders/create")
    assert len(body) > 8000  # above the TOAST threshold: compressed, not stored inline

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(payload) FROM shopapp_webhookevent")
        assert cursor.fetchall() == [("lz4",)]
    assert WebhookEvent.objects.get().payload == fixture_json("orders/create")


def test_a_nul_in_a_header_is_dropped_or_refused(client, shop):
    body = fixture_bytes("orders/create")

    kept = post_webhook(
        client, "orders/create", body, shop_domain=SHOP, **{"X-Shopify-API-Version": "2026\x00-10"}
    )
    refused = post_webhook(client, "orders/create", body, shop_domain=SHOP, webhook_id="wh\x00x")

    assert kept.status_code == 200
    assert WebhookEvent.objects.get().api_version == "2026\ufffd-10"
    assert refused.status_code == 400
    assert WebhookEvent.objects.count() == 1


def test_body_changed_after_signing_is_refused(client, shop):
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    tampered = body.replace(b'"404.95"', b'"0.01"', 1)
    assert tampered != body

    response = client.post(
        "/webhooks/", data=tampered, content_type="application/json", headers=headers
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_missing_signature_is_refused(client, shop):
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    del headers["X-Shopify-Hmac-Sha256"]

    response = client.post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_signature_with_the_wrong_secret_is_refused(client, shop):
    response = post_webhook(
        client,
        "orders/create",
        fixture_bytes("orders/create"),
        shop_domain=SHOP,
        secret="some-other-apps-secret",
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_hex_signature_is_refused_shopify_signs_in_base64(client, shop):
    import hashlib
    import hmac

    from django.conf import settings

    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    headers["X-Shopify-Hmac-Sha256"] = hmac.new(
        settings.SHOPIFY_API_SECRET.encode(), body, hashlib.sha256
    ).hexdigest()

    response = client.post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    "header", ["X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id"]
)
def test_missing_required_header_is_a_400(client, shop, header):
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    del headers[header]

    response = client.post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_overlong_webhook_id_is_a_400(client, shop):
    body = fixture_bytes("orders/create")

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP, webhook_id="w" * 256)

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_malformed_json_is_a_400(client, shop):
    body = b'{"id": 1, "name": '

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_invalid_utf8_is_a_400(client, shop):
    body = b'{"name": "\xff\xfe"}'

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_a_400(client, shop, body):
    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_body_over_the_limit_by_content_length_is_a_413(client, shop, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    body = fixture_bytes("orders/create")
    assert len(body) > 1000

    response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_declared_length_over_the_limit_is_refused_before_reading(shop, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    body = b"{}"
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    request = RequestFactory().post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )
    request.META["CONTENT_LENGTH"] = "5000000"

    response = webhook_receive(request)

    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_chunked_body_over_the_limit_by_actual_size_is_a_413(shop, settings):
    # A chunked request carries no Content-Length: what arrives is measured.
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    request = RequestFactory().post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )
    del request.META["CONTENT_LENGTH"]
    request.META["wsgi.input_terminated"] = True
    request.META["wsgi.input"] = io.BytesIO(body)
    request._stream = io.BytesIO(body)

    response = webhook_receive(request)

    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_chunked_body_under_the_limit_is_accepted(shop):
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)
    request = RequestFactory().post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )
    del request.META["CONTENT_LENGTH"]
    request._stream = io.BytesIO(body)

    response = webhook_receive(request)

    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


# --- acceptance -----------------------------------------------------------------------------


def test_signed_order_webhook_is_stored_pending_with_its_headers(client, shop):
    body = fixture_bytes("orders/create")

    response = post_webhook(
        client,
        "orders/create",
        body,
        shop_domain=SHOP,
        webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        **{
            "X-Shopify-Name": "orders",
            "X-Shopify-Test": "true",
            "X-Shopify-Triggered-At": "2025-07-10T16:15:47.000000Z",
        },
    )

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.shop == shop
    assert event.status == WebhookEvent.Status.PENDING
    assert event.topic == "orders/create"
    assert event.shop_domain == SHOP
    assert event.webhook_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert event.event_id.startswith("ev-")
    assert event.api_version == "2026-04"
    assert event.triggered_at.isoformat() == "2025-07-10T16:15:47+00:00"
    assert event.enqueued_at is None  # the pump hands it over
    # Ids above 2**53 stay exact, in the column and in the stored payload.
    assert event.order_shopify_id == FIXTURE_ORDER_ID
    event.refresh_from_db()
    assert event.payload["id"] == FIXTURE_ORDER_ID
    assert event.payload["line_items"][1]["id"] == 789012345678901234
    assert event.payload == json.loads(body)
    assert event.headers["x-shopify-topic"] == "orders/create"
    assert event.headers["x-shopify-name"] == "orders"
    assert event.headers["x-shopify-test"] == "true"
    assert event.headers["x-shopify-hmac-sha256"] == sign(body)
    assert set(event.headers) >= {
        "x-shopify-shop-domain",
        "x-shopify-webhook-id",
        "x-shopify-event-id",
        "x-shopify-triggered-at",
        "x-shopify-api-version",
    }


def test_intake_skips_the_browser_middleware_but_keeps_the_outer_headers(client, shop):
    response = post_webhook(
        client, "orders/create", fixture_bytes("orders/create"), shop_domain=SHOP
    )

    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    # no session, no CSRF, no auth: nothing made the answer vary by cookie
    assert "Vary" not in response
    assert not response.cookies


def test_intake_refuses_a_host_not_allowed(client, shop):
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)

    response = client.post(
        "/webhooks/",
        data=body,
        content_type="application/json",
        headers=headers,
        HTTP_HOST="evil.example",
    )

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_intake_does_no_domain_work(client, shop):
    post_webhook(client, "orders/create", fixture_bytes("orders/create"), shop_domain=SHOP)

    assert WebhookEvent.objects.count() == 1
    assert Order.objects.count() == 0
    assert OrderEvent.objects.count() == 0


def test_intake_is_one_statement_that_looks_up_the_shop_and_inserts(
    client, shop, django_assert_max_num_queries
):
    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP)

    with django_assert_max_num_queries(3) as captured:
        response = client.post(
            "/webhooks/", data=body, content_type="application/json", headers=headers
        )

    assert response.status_code == 200
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    # the savepoint is the test's transaction: in autocommit the INSERT is all there is
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == ["INSERT"]
    event = WebhookEvent.objects.get()
    assert (event.shop, event.status) == (shop, WebhookEvent.Status.PENDING)


@pytest.mark.parametrize(
    ("topic", "expected_order_id"),
    [
        ("orders/edited", FIXTURE_ORDER_ID),
        ("orders/delete", FIXTURE_ORDER_ID),
        ("refunds/create", FIXTURE_ORDER_ID),
        ("returns/request", 4783296544821),
        ("customers/redact", None),
    ],
)
def test_the_order_a_delivery_concerns_is_recorded(client, shop, topic, expected_order_id):
    post_webhook(client, topic, fixture_bytes(topic), shop_domain=SHOP)

    assert WebhookEvent.objects.get().order_shopify_id == expected_order_id


def test_order_id_header_is_used_when_the_payload_has_none(client, shop):
    body = b'{"id": 5, "note": "no order here"}'

    post_webhook(
        client, "fulfillment_orders/moved", body, shop_domain=SHOP, **{"X-Shopify-Order-Id": "77"}
    )

    assert WebhookEvent.objects.get().order_shopify_id == 77


def test_same_webhook_id_twice_is_one_row(client, shop):
    body = fixture_bytes("orders/create")

    first = post_webhook(client, "orders/create", body, shop_domain=SHOP, webhook_id="dup-1")
    second = post_webhook(client, "orders/create", body, shop_domain=SHOP, webhook_id="dup-1")

    assert first.status_code == 200
    assert second.status_code == 200
    assert WebhookEvent.objects.filter(webhook_id="dup-1").count() == 1


def test_duplicate_enqueues_nothing(client, shop, django_capture_on_commit_callbacks):
    body = fixture_bytes("orders/create")
    post_webhook(client, "orders/create", body, shop_domain=SHOP, webhook_id="dup-2")

    with django_capture_on_commit_callbacks() as callbacks:
        post_webhook(client, "orders/create", body, shop_domain=SHOP, webhook_id="dup-2")

    assert callbacks == []


def test_unknown_shop_is_stored_ignored_and_not_enqueued(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_webhook(
            client,
            "orders/create",
            fixture_bytes("orders/create"),
            shop_domain="ghost.myshopify.com",
        )

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.shop is None
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.ignored_reason == "unknown_shop"
    assert event.enqueued_at is None
    assert callbacks == []


def test_unknown_topic_is_stored_ignored_and_not_enqueued(
    client, shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_webhook(client, "products/create", b'{"id": 1}', shop_domain=SHOP)

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.shop == shop
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.ignored_reason == "unknown_topic"
    assert callbacks == []


def test_inactive_shop_order_webhook_is_ignored(client):
    make_shop("gone.myshopify.com", is_active=False)

    post_webhook(
        client, "orders/create", fixture_bytes("orders/create"), shop_domain="gone.myshopify.com"
    )

    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.ignored_reason == "inactive_shop"


def test_a_delivery_after_the_shop_uninstalled_is_stored_ignored(client, shop):
    from shopapp.privacy.services import shop_uninstall

    # given a delivery stored while the shop was installed
    post_webhook(client, "orders/create", fixture_bytes("orders/create"), shop_domain=SHOP)
    # when the shop uninstalls and another delivery arrives
    shop_uninstall(shop=shop)
    post_webhook(client, "orders/updated", fixture_bytes("orders/updated"), shop_domain=SHOP)

    # then the second is not stored as if the shop were active
    later = WebhookEvent.objects.get(topic="orders/updated")
    assert later.status == WebhookEvent.Status.IGNORED
    assert later.ignored_reason == "inactive_shop"


@pytest.mark.parametrize("topic", ["orders/create", "app/uninstalled", "no/such-topic"])
@pytest.mark.parametrize("shop_state", ["active", "inactive", "unknown"])
def test_the_insert_applies_the_ignore_rules_of_processing(topic, shop_state):
    # the INSERT decides the status in SQL: it must agree with webhook_event_ignore_reason
    if shop_state != "unknown":
        make_shop(SHOP, is_active=shop_state == "active")

    event = services.webhook_event_record(
        webhook_id="w", topic=topic, shop_domain=SHOP, payload={"id": 1}, headers={}
    )

    expected = services.webhook_event_ignore_reason(
        topic=topic, shop_exists=shop_state != "unknown", shop_is_active=shop_state == "active"
    )
    stored = WebhookEvent.objects.get()
    assert (stored.status, stored.ignored_reason) == (
        ("ignored", expected) if expected else ("pending", "")
    )
    assert (event.pk, event.status, event.ignored_reason) == (
        stored.pk,
        stored.status,
        stored.ignored_reason,
    )
    assert stored.shop_id == (None if shop_state == "unknown" else event.shop_id)


@pytest.mark.parametrize(
    "topic", ["app/uninstalled", "shop/redact", "customers/redact", "customers/data_request"]
)
def test_inactive_shop_still_gets_uninstall_and_compliance_topics(
    client, topic, django_capture_on_commit_callbacks
):
    make_shop("gone.myshopify.com", is_active=False)

    with django_capture_on_commit_callbacks() as callbacks:
        post_webhook(client, topic, fixture_bytes(topic), shop_domain="gone.myshopify.com")

    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PENDING
    assert len(callbacks) == 1


def test_deliveries_arm_one_pump_which_hands_each_over_with_its_retries(
    client, shop, redis_conn, django_capture_on_commit_callbacks
):
    import django_rq

    # when three deliveries are stored
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            post_webhook(client, "orders/create", fixture_bytes("orders/create"), shop_domain=SHOP)

    # then one pump is on its way, not a job per request
    queue = django_rq.get_queue("webhooks")
    assert [job.func_name for job in queue.get_jobs()] == [
        "shopapp.webhooks.jobs.webhook_events_pump_job"
    ]
    # and the pump hands each delivery over, in one round trip, with its retries
    queue.empty()
    assert services.webhook_events_pump() == 3
    jobs = queue.get_jobs()
    events = list(WebhookEvent.objects.order_by("pk"))
    assert [job.func_name for job in jobs] == [
        "shopapp.webhooks.jobs.webhook_event_process_job"
    ] * 3
    assert [job.args for job in jobs] == [(event.pk,) for event in events]
    assert all(job.retries_left == services.RETRY_MAX for job in jobs)
    assert all(event.enqueued_at is not None for event in events)
    # and a delivery stored after the pump started arms the next one
    assert not redis_conn.exists(services.PUMP_FLAG)


def test_a_process_that_saw_the_flag_set_skips_redis_for_a_moment(redis_conn, monkeypatch):
    import django_rq

    queue = django_rq.get_queue("webhooks")
    # given a delivery that armed the pump, and the pump that cleared the flag at once
    services.webhook_pump_arm()
    assert redis_conn.exists(services.PUMP_FLAG)
    redis_conn.delete(services.PUMP_FLAG)

    # when another delivery arrives within the memo, it does not ask Redis
    services.webhook_pump_arm()
    assert not redis_conn.exists(services.PUMP_FLAG)
    assert queue.count == 1

    # and once the memo is over, it asks again and arms the next pump
    monkeypatch.setattr(services, "_pump_flag_seen_at", time.monotonic() - 1)
    services.webhook_pump_arm()
    assert redis_conn.exists(services.PUMP_FLAG)
    assert queue.count == 2


def test_the_pump_drains_again_for_deliveries_whose_arm_was_skipped(shop, redis_conn, monkeypatch):
    import django_rq

    early = services.webhook_event_record(
        webhook_id="early", topic="orders/create", shop_domain=SHOP, payload={"id": 1}, headers={}
    )
    waits = []

    def delivery_meanwhile(seconds: float) -> None:
        # stored after the pump's first read, by a process that skipped the SET NX
        waits.append(seconds)
        services.webhook_event_record(
            webhook_id="late",
            topic="orders/create",
            shop_domain=SHOP,
            payload={"id": 2},
            headers={},
        )

    monkeypatch.setattr(services.time, "sleep", delivery_meanwhile)

    handed = services.webhook_events_pump()

    assert handed == 2
    assert 0 <= waits[0] <= services.PUMP_TAIL_S
    jobs = django_rq.get_queue("webhooks").get_jobs()
    late = WebhookEvent.objects.get(webhook_id="late")
    assert [job.args for job in jobs] == [(early.pk,), (late.pk,)]
    assert services.PUMP_TAIL_S > services.PUMP_ARM_MEMO_S


def test_a_flood_is_pumped_in_turns_that_make_way_for_other_jobs(shop, redis_conn):
    import django_rq

    for i in range(7):
        services.webhook_event_record(
            webhook_id=f"flood-{i}",
            topic="orders/create",
            shop_domain=SHOP,
            payload={"id": i},
            headers={},
        )

    handed = services.webhook_events_pump(batch=2, most=4)

    names = [job.func_name for job in django_rq.get_queue("webhooks").get_jobs()]
    assert handed == 4
    assert names.count("shopapp.webhooks.jobs.webhook_event_process_job") == 4
    assert names[-1] == "shopapp.webhooks.jobs.webhook_events_pump_job"  # the rest, next turn
    assert WebhookEvent.objects.filter(enqueued_at__isnull=True).count() == 3


def test_redis_down_during_a_pump_leaves_the_deliveries_to_the_sweep(shop, settings):
    from tests.conftest import free_port

    event = services.webhook_event_record(
        webhook_id="stranded",
        topic="orders/create",
        shop_domain=SHOP,
        payload={"id": 1},
        headers={},
    )
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.RQ_QUEUES = {
        name: {**conf, "URL": closed} for name, conf in settings.RQ_QUEUES.items()
    }

    services.webhook_events_pump()

    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PENDING
    assert event.enqueued_at is None


def test_redis_down_intake_still_answers_200_and_keeps_the_event_pending(
    client, shop, settings, django_capture_on_commit_callbacks
):
    from tests.conftest import free_port

    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.RQ_QUEUES = {
        name: {**conf, "URL": closed} for name, conf in settings.RQ_QUEUES.items()
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(
            client, "orders/create", fixture_bytes("orders/create"), shop_domain=SHOP
        )

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PENDING
    # Cleared so the sweep picks it up as soon as it is old enough.
    assert event.enqueued_at is None
    assert Order.objects.count() == 0


# --- the database unavailable: 503, so Shopify delivers again --------------------------------


def _database_down(execute, sql, params, many, context):
    # What psycopg raises while PostgreSQL restarts (Django's database instrumentation).
    from django.db import OperationalError

    raise OperationalError("connection refused: the database system is starting up")


def test_database_down_is_a_503_with_retry_after_and_nothing_stored(client, shop):
    from django.db import connection

    body = fixture_bytes("orders/create")

    with connection.execute_wrapper(_database_down):
        response = post_webhook(client, "orders/create", body, shop_domain=SHOP)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert WebhookEvent.objects.count() == 0


def test_the_same_delivery_after_the_database_is_back_is_stored_once(client, shop):
    from django.db import connection

    body = fixture_bytes("orders/create")
    headers = shopify_headers("orders/create", body, shop_domain=SHOP, webhook_id="wh-retried")
    with connection.execute_wrapper(_database_down):
        refused = client.post(
            "/webhooks/", data=body, content_type="application/json", headers=headers
        )

    accepted = client.post(
        "/webhooks/", data=body, content_type="application/json", headers=headers
    )

    assert (refused.status_code, accepted.status_code) == (503, 200)
    assert list(WebhookEvent.objects.values_list("webhook_id", flat=True)) == ["wh-retried"]

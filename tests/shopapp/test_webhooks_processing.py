"""Webhook processing: the job through a real Redis, retries, failure, replay, sweep and cron."""

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone

from shopapp.models import Order, OrderEvent, WebhookEvent
from shopapp.webhooks import services
from shopapp.webhooks.handlers import TOPIC_HANDLERS
from shopapp.webhooks.jobs import webhook_event_sweep_job
from tests.conftest import free_port
from tests.shopapp.webhook_support import (
    FIXTURE_ORDER_ID,
    fixture_bytes,
    make_shop,
    order_body,
    post_webhook,
)

SHOP = "alpha.myshopify.com"


@pytest.fixture
def shop(db):
    return make_shop(SHOP)


@pytest.fixture
def fast_retries(monkeypatch):
    # Retries without waiting, so a burst worker runs them all in one go.
    monkeypatch.setattr(services, "RETRY_INTERVALS_S", [0] * services.RETRY_MAX)


def _deliver(client, topic, body, capture, **kwargs):
    with capture(execute=True):
        return post_webhook(client, topic, body, shop_domain=SHOP, **kwargs)


def test_order_webhook_is_processed_by_a_real_worker(
    client, shop, rq_worker, django_capture_on_commit_callbacks
):
    _deliver(
        client, "orders/create", fixture_bytes("orders/create"), django_capture_on_commit_callbacks
    )

    rq_worker()

    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.processed_at is not None
    assert event.attempts == 1
    order = Order.objects.get(shop=shop)
    assert order.shopify_id == FIXTURE_ORDER_ID
    assert list(order.events.values_list("kind", flat=True).order_by("id"))[0] == "order.created"


def test_same_webhook_twice_is_one_row_one_processing_one_timeline_event(
    client, shop, rq_worker, django_capture_on_commit_callbacks, monkeypatch
):
    calls = []
    real = TOPIC_HANDLERS["orders/create"]

    def counting(**kwargs):
        calls.append(kwargs["event"].pk)
        return real(**kwargs)

    monkeypatch.setitem(TOPIC_HANDLERS, "orders/create", counting)
    body = order_body(cancelled_at=None, financial_status="pending")

    for _ in range(2):
        _deliver(
            client, "orders/create", body, django_capture_on_commit_callbacks, webhook_id="w-1"
        )
    rq_worker()

    assert WebhookEvent.objects.count() == 1
    assert len(calls) == 1
    assert list(OrderEvent.objects.values_list("kind", flat=True)) == ["order.created"]


def test_same_event_in_two_deliveries_records_the_fact_once(
    client, shop, rq_worker, django_capture_on_commit_callbacks
):
    # Two subscriptions to one topic, or a Shopify retry under a new webhook id: two rows,
    # each processed, one timeline line.
    body = order_body(cancelled_at=None, financial_status="paid")

    _deliver(client, "orders/paid", body, django_capture_on_commit_callbacks, webhook_id="a")
    _deliver(client, "orders/paid", body, django_capture_on_commit_callbacks, webhook_id="b")
    rq_worker()

    assert list(WebhookEvent.objects.values_list("status", flat=True)) == ["processed"] * 2
    assert sorted(OrderEvent.objects.values_list("kind", flat=True)) == [
        "order.created",
        "order.paid",
    ]


def test_processing_skips_an_event_already_processed(shop):
    event = services.webhook_event_record(
        webhook_id="w",
        topic="orders/create",
        shop_domain=SHOP,
        payload={"id": 1, "updated_at": "2024-01-01T00:00:00Z"},
        headers={},
    )
    assert services.webhook_event_process(event_id=event.pk) == "processed"
    Order.objects.all().delete()

    assert services.webhook_event_process(event_id=event.pk) == "processed"

    assert Order.objects.count() == 0
    event.refresh_from_db()
    assert event.attempts == 1


def test_processing_an_event_whose_shop_uninstalled_meanwhile_ignores_it(shop):
    event = services.webhook_event_record(
        webhook_id="w", topic="orders/create", shop_domain=SHOP, payload={"id": 1}, headers={}
    )
    shop.is_active = False
    shop.save()

    status = services.webhook_event_process(event_id=event.pk)

    assert status == "ignored"
    event.refresh_from_db()
    assert event.ignored_reason == "inactive_shop"
    assert Order.objects.count() == 0


def test_failing_handler_is_retried_and_not_failed_while_retries_remain(
    client, shop, rq_worker, fast_retries, django_capture_on_commit_callbacks, monkeypatch
):
    seen_statuses = []

    def flaky(*, shop, event, payload):
        seen_statuses.append(WebhookEvent.objects.get(pk=event.pk).status)
        if len(seen_statuses) < 3:
            raise RuntimeError("database blip")
        Order.objects.create(shop=shop, shopify_id=payload["id"])

    monkeypatch.setitem(TOPIC_HANDLERS, "orders/create", flaky)
    _deliver(
        client, "orders/create", fixture_bytes("orders/create"), django_capture_on_commit_callbacks
    )

    rq_worker()

    assert seen_statuses == ["pending", "pending", "pending"]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.attempts == 3
    assert event.last_error == ""
    assert Order.objects.filter(shop=shop).count() == 1


def test_event_is_failed_only_when_every_retry_is_spent(
    client, shop, rq_worker, fast_retries, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(*, shop, event, payload):
        Order.objects.create(shop=shop, shopify_id=payload["id"])  # rolled back each time
        raise ValueError("handler bug")

    monkeypatch.setitem(TOPIC_HANDLERS, "orders/create", broken)
    _deliver(
        client, "orders/create", fixture_bytes("orders/create"), django_capture_on_commit_callbacks
    )

    rq_worker()

    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.FAILED
    assert event.attempts == services.RETRY_MAX + 1
    assert event.last_error == "ValueError: handler bug"
    assert Order.objects.count() == 0
    assert django_rq.get_queue("webhooks").failed_job_registry.count == 1


def test_failure_callback_with_retries_left_keeps_the_event_pending_until_the_retry(shop):
    event = services.webhook_event_record(
        webhook_id="w", topic="orders/create", shop_domain=SHOP, payload={"id": 1}, headers={}
    )

    services.webhook_event_attempt_failed(event_id=event.pk, retries_left=2, retry_in_s=600)

    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PENDING
    # Handed over to RQ until the retry is due: the sweep leaves it alone.
    assert event.enqueued_at > timezone.now() + timedelta(seconds=590)
    later = timezone.now() + timedelta(minutes=5)
    assert services.webhook_event_sweep(now=later) == 0


def test_replay_sends_a_failed_event_through_again(
    client, shop, rq_worker, fast_retries, django_capture_on_commit_callbacks, monkeypatch
):
    real = TOPIC_HANDLERS["orders/create"]

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setitem(TOPIC_HANDLERS, "orders/create", broken)
    _deliver(
        client, "orders/create", fixture_bytes("orders/create"), django_capture_on_commit_callbacks
    )
    rq_worker()
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.FAILED
    monkeypatch.setitem(TOPIC_HANDLERS, "orders/create", real)  # the bug is fixed

    with django_capture_on_commit_callbacks(execute=True):
        assert services.webhook_event_replay(event_id=event.pk) is True
    rq_worker()

    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert Order.objects.filter(shop=shop, shopify_id=FIXTURE_ORDER_ID).exists()


def test_replay_refuses_events_that_are_not_failed(shop, django_capture_on_commit_callbacks):
    event = services.webhook_event_record(
        webhook_id="w", topic="orders/create", shop_domain=SHOP, payload={"id": 1}, headers={}
    )

    with django_capture_on_commit_callbacks() as callbacks:
        replayed = services.webhook_event_replay(event_id=event.pk)

    assert replayed is False
    assert callbacks == []


def test_admin_replay_action_replays_only_failed_events(
    admin_client, shop, django_capture_on_commit_callbacks
):
    failed = services.webhook_event_record(
        webhook_id="f", topic="orders/create", shop_domain=SHOP, payload={"id": 1}, headers={}
    )
    WebhookEvent.objects.filter(pk=failed.pk).update(status=WebhookEvent.Status.FAILED)
    processed = services.webhook_event_record(
        webhook_id="p", topic="orders/create", shop_domain=SHOP, payload={"id": 2}, headers={}
    )
    WebhookEvent.objects.filter(pk=processed.pk).update(status=WebhookEvent.Status.PROCESSED)

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            "/django-admin/shopapp/webhookevent/",
            {"action": "replay", "_selected_action": [failed.pk, processed.pk]},
        )

    assert response.status_code == 302
    failed.refresh_from_db()
    processed.refresh_from_db()
    assert failed.status == WebhookEvent.Status.PENDING
    assert processed.status == WebhookEvent.Status.PROCESSED
    assert len(callbacks) == 1


def test_sweep_leaves_young_and_recently_enqueued_events_alone(shop):
    young = services.webhook_event_record(
        webhook_id="young", topic="orders/create", shop_domain=SHOP, payload={"id": 1}, headers={}
    )
    handed_over = services.webhook_event_record(
        webhook_id="handed", topic="orders/create", shop_domain=SHOP, payload={"id": 2}, headers={}
    )
    WebhookEvent.objects.filter(pk=handed_over.pk).update(
        received_at=timezone.now() - timedelta(minutes=2), enqueued_at=timezone.now()
    )

    assert services.webhook_event_sweep() == 0

    assert WebhookEvent.objects.get(pk=young.pk).enqueued_at == young.enqueued_at


def test_sweep_enqueues_lost_events(shop, redis_conn, django_capture_on_commit_callbacks):
    lost = services.webhook_event_record(
        webhook_id="lost", topic="orders/create", shop_domain=SHOP, payload={"id": 1}, headers={}
    )
    WebhookEvent.objects.filter(pk=lost.pk).update(
        received_at=timezone.now() - timedelta(hours=1),
        enqueued_at=timezone.now() - timedelta(minutes=30),
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert services.webhook_event_sweep() == 1

    jobs = django_rq.get_queue("webhooks").get_jobs()
    assert [job.args for job in jobs] == [(lost.pk,)]
    lost.refresh_from_db()
    assert lost.enqueued_at > timezone.now() - timedelta(seconds=5)


@pytest.mark.django_db(transaction=True)
def test_redis_down_at_intake_then_the_sweep_gets_the_event_processed(client, rq_worker, settings):
    # given a shop, and Redis unreachable while Shopify delivers
    shop = make_shop(SHOP)
    working = settings.RQ_QUEUES
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.RQ_QUEUES = {name: {**conf, "URL": closed} for name, conf in working.items()}

    response = post_webhook(
        client, "orders/create", fixture_bytes("orders/create"), shop_domain=SHOP
    )

    # then the delivery is accepted and kept
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PENDING
    assert event.enqueued_at is None

    # when Redis is back and the cron's sweep job runs on a real worker
    settings.RQ_QUEUES = working
    WebhookEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(minutes=1)
    )
    django_rq.get_queue("maintenance").enqueue(webhook_event_sweep_job)
    rq_worker()

    # then the event is processed and the order mirrored
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert Order.objects.filter(shop=shop, shopify_id=FIXTURE_ORDER_ID).exists()


def test_cron_module_registers_the_sweep_every_minute():
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=django_rq.get_connection("webhooks"))
    scheduler.load_config_from_file("shopapp.cron")

    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    sweep = jobs["shopapp.webhooks.jobs.webhook_event_sweep_job"]
    assert sweep.queue_name == "maintenance"
    assert sweep.cron == "* * * * *"


def test_scopes_update_is_routed_to_the_auth_service(shop):
    event = services.webhook_event_record(
        webhook_id="w",
        topic="app/scopes_update",
        shop_domain=SHOP,
        payload={
            "id": 1,
            "previous": ["read_orders"],
            "current": ["read_orders", "read_returns"],
            "updated_at": timezone.now().isoformat(),
        },
        headers={},
    )

    assert services.webhook_event_process(event_id=event.pk) == "processed"

    shop.refresh_from_db()
    assert "read_returns" in shop.granted_scopes.split(",")

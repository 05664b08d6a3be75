"""bench/load.py's "processed twice" count reads the workers' log lines: it must see a delivery
that really was handled twice, in the format the app's logging really writes."""

import logging

import pytest

from bench.load import processed_in_logs
from shopapp.logging import KeyValueFormatter
from shopapp.models import WebhookEvent
from shopapp.webhooks.services import webhook_event_process, webhook_event_record
from tests.shopapp.webhook_support import fixture_bytes, fixture_json, make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_log(tmp_path):
    """The app's webhook log lines written as a worker's console handler writes them."""
    path = tmp_path / "worker.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(KeyValueFormatter())
    logger = logging.getLogger("shopapp.webhooks")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield path
    logger.removeHandler(handler)
    logger.setLevel(previous)
    handler.close()


def _delivery(webhook_id: str) -> WebhookEvent:
    event = webhook_event_record(
        webhook_id=webhook_id,
        topic="orders/create",
        shop_domain="load-count.myshopify.com",
        payload=fixture_json("orders/create"),
        headers={},
        payload_text=fixture_bytes("orders/create").decode(),
    )
    assert event is not None
    return event


def test_a_delivery_handled_twice_is_counted_twice(worker_log):
    make_shop("load-count.myshopify.com")
    once, twice = _delivery("count-1"), _delivery("count-2")
    webhook_event_process(event_id=once.pk)
    webhook_event_process(event_id=twice.pk)
    # A repeated job for a processed event is skipped: not a second handling.
    webhook_event_process(event_id=once.pk)
    # What a broken guard would let through: the same event handled again.
    WebhookEvent.objects.filter(pk=twice.pk).update(status=WebhookEvent.Status.PENDING)
    webhook_event_process(event_id=twice.pk)

    counted = processed_in_logs([worker_log])

    assert counted == {once.pk: 1, twice.pk: 2}


def test_the_drain_waits_for_work_due_now_not_for_work_scheduled_later(redis_conn):
    """The 50,000-webhook run never ended: shipments' next reads, scheduled hours ahead, kept
    RQ's scheduled registry non-empty. Those are counted apart; a job due now is work left."""
    import time
    from datetime import timedelta

    from bench.load import queues_idle
    from shopapp.background.queue import JobSpec, Queues, rq_enqueue

    assert queues_idle() == (True, {name: 0 for name in queues_idle()[1]}, 0)

    later = JobSpec(func=print, args=("later",), queue=Queues.SYNCS, delay=timedelta(hours=3))
    assert rq_enqueue([later])
    idle, counts, scheduled_later = queues_idle()
    assert idle
    assert scheduled_later == 1

    due = JobSpec(func=print, args=("due",), queue=Queues.MAINTENANCE, delay=timedelta(seconds=1))
    assert rq_enqueue([due])
    time.sleep(1.1)
    idle, counts, scheduled_later = queues_idle()
    assert not idle
    assert counts[Queues.MAINTENANCE] == 1
    assert scheduled_later == 1

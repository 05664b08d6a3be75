# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""Scheduling: the rows are the schedule. Quiet hours, DST, stale news, conditions, leases,
a flushed Redis and a worker that dies mid-send."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import django_rq
import pytest
import time_machine
from django.utils import timezone

from notifications import sending
from notifications.jobs import message_send_job, messages_dispatch_due_job
from notifications.models import Message, Suppression
from notifications.news import ReturnNews
from notifications.services import (
    QUEUE_LEASE,
    SEND_LEASE,
    message_send,
    messages_dispatch_due,
    notification_news_record,
    notification_trigger,
    quiet_hours_end,
    recipient_timezone,
)
from shopapp.models import OrderEvent
from tests.conftest import free_port
from tests.notifications.engine_support import (
    dispatch_and_work,
    make_email_template,
    make_order,
    make_sequence,
    make_shop,
    parcel,
    send_jobs_queued,
    shipped_email_sequence,
    smtp_sink,  # noqa: F401 - fixture
    trigger_committed,
)

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")


def _sms_sequence(shop):
    make_sequence(shop, "shipped_sms", "shipped", [{"channel": "sms", "template_key": "shipped"}])


# --- quiet hours -----------------------------------------------------------------------------


def test_sms_due_in_quiet_hours_waits_for_their_end_in_the_recipients_timezone():
    # given: 02:00 UTC is 22:00 in New York, 19:00 in Los Angeles, 03:00 in London
    shop = make_shop(timezone="America/New_York")
    _sms_sequence(shop)
    ny = make_order(shop, 1, shipping_country_code="US", shipping_province_code="NY")
    la = make_order(shop, 2, shipping_country_code="US", shipping_province_code="CA")
    uk = make_order(shop, 3, shipping_country_code="GB", phone="07700 900123")
    at = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
    # when
    with time_machine.travel(at, tick=False):
        for order in (ny, la, uk):
            notification_trigger(
                shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped")
            )
    # then
    due = {m.order_id: m.due_at for m in Message.objects.all()}
    assert due[ny.pk] == datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # 08:00 EDT
    assert due[la.pk] == at  # 19:00 PDT: not quiet
    assert due[uk.pk] == datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # 08:00 BST


def test_quiet_hours_end_is_dst_correct_the_night_new_york_falls_back():
    # given: 2026-11-01 01:30 UTC is 21:30 EDT on Oct 31; clocks go back at 02:00 that night
    shop = make_shop()
    _sms_sequence(shop)
    order = make_order(shop)
    # when
    with time_machine.travel(datetime(2026, 11, 1, 1, 30, tzinfo=UTC), tick=False):
        notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped"))
    # then: 08:00 EST is 13:00 UTC (it would be 12:00 UTC under EDT)
    due_at = Message.objects.get().due_at
    assert due_at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert due_at.astimezone(NY).hour == 8


def test_quiet_hours_across_the_spring_forward_night():
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT. 23:00 EST (04:00 UTC) → 08:00 EDT = 12:00 UTC.
    end = quiet_hours_end(
        at=datetime(2026, 3, 8, 4, 0, tzinfo=UTC), zone=NY, start="21:00", end="08:00"
    )
    assert end == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    # Outside the window, and a window that does not wrap midnight.
    assert (
        quiet_hours_end(
            at=datetime(2026, 3, 8, 17, tzinfo=UTC), zone=NY, start="21:00", end="08:00"
        )
        is None
    )
    assert quiet_hours_end(
        at=datetime(2026, 3, 9, 17, tzinfo=UTC), zone=NY, start="12:00", end="14:00"
    ) == datetime(2026, 3, 9, 18, tzinfo=UTC)
    assert (
        quiet_hours_end(
            at=datetime(2026, 3, 9, 17, tzinfo=UTC), zone=NY, start="00:00", end="00:00"
        )
        is None
    )


def test_email_has_no_quiet_hours_by_default():
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    at = datetime(2026, 6, 10, 3, 0, tzinfo=UTC)  # 23:00 in New York
    with time_machine.travel(at, tick=False):
        notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped"))
    assert Message.objects.get().due_at == at


def test_recipient_timezone_falls_back_to_the_shop():
    shop = make_shop(timezone="Europe/Berlin")
    assert recipient_timezone(shop=shop, order=make_order(shop, 1, shipping_country_code="")) == (
        ZoneInfo("Europe/Berlin")
    )
    assert recipient_timezone(
        shop=shop,
        order=make_order(shop, 2, shipping_country_code="CA", shipping_province_code="BC"),
    ) == ZoneInfo("America/Vancouver")


def test_a_message_that_reaches_quiet_hours_before_it_is_sent_is_put_back(
    rq_worker, django_capture_on_commit_callbacks
):
    # given: an SMS scheduled at 20:55 New York time, dispatched only at 21:05
    from tests.notifications.engine_support import enable_sms, make_sms_template

    shop = make_shop()
    enable_sms(shop)
    make_sms_template(shop, "shipped")
    _sms_sequence(shop)
    order = make_order(shop)
    with time_machine.travel(datetime(2026, 6, 11, 0, 55, tzinfo=UTC), tick=False):
        trigger_committed(
            django_capture_on_commit_callbacks,
            shop=shop,
            order=order,
            trigger="shipped",
            news=parcel(1, "shipped"),
        )
    # when
    with time_machine.travel(datetime(2026, 6, 11, 1, 5, tzinfo=UTC), tick=False):
        dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    message = Message.objects.get()
    assert message.status == Message.Status.SCHEDULED
    assert message.due_at == datetime(2026, 6, 11, 12, 0, tzinfo=UTC)
    assert message.attempts == 0


# --- dispatch, Redis and leases -----------------------------------------------------------------


def test_only_due_messages_are_dispatched(smtp_sink, rq_worker, django_capture_on_commit_callbacks):
    # given: a shipped email now and a review request in 7 days
    shop = make_shop()
    make_email_template(shop, "delivered")
    make_email_template(shop, "review_request")
    make_sequence(
        shop,
        "delivered_review",
        "delivered",
        [
            {"template_key": "delivered"},
            {"template_key": "review_request", "delay_minutes": 7 * 1440, "delay_from": "previous"},
        ],
    )
    order = make_order(shop)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="delivered",
        news=parcel(1, "delivered"),
    )
    # when
    assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
    # then
    assert len(smtp_sink.messages) == 1
    review = Message.objects.get(step__template_key="review_request")
    assert review.status == Message.Status.SCHEDULED
    # and seven days later the review request goes, once
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 0
    assert len(smtp_sink.messages) == 2
    review.refresh_from_db()
    assert review.status == Message.Status.SENT


def test_dispatch_job_runs_from_the_queue(smtp_sink, rq_worker, django_capture_on_commit_callbacks):
    # given
    shop = make_shop()
    shipped_email_sequence(shop)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=make_order(shop),
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    # when: the cron's job itself goes through Redis and a worker
    django_rq.get_queue("maintenance", commit_mode="auto").enqueue(messages_dispatch_due_job)
    with django_capture_on_commit_callbacks(execute=True):
        rq_worker()
    rq_worker()
    # then
    assert len(smtp_sink.messages) == 1
    assert Message.objects.get().status == Message.Status.SENT


def test_cron_registers_the_dispatcher_every_minute(monkeypatch):
    import importlib

    from rq import cron

    import shopapp.cron

    registered = {}
    monkeypatch.setattr(
        cron,
        "register",
        lambda func, **options: registered.update({options["name"]: (func, options)}),
    )
    importlib.reload(shopapp.cron)
    func, options = registered["messages_dispatch_due"]
    assert func is messages_dispatch_due_job
    assert options["cron"] == "* * * * *"
    assert options["queue_name"] == "maintenance"


@pytest.mark.parametrize("handed_over_by", ["trigger", "dispatcher"])
def test_redis_flushed_between_hand_over_and_send_loses_nothing(
    handed_over_by, smtp_sink, rq_worker, redis_conn, django_capture_on_commit_callbacks
):
    # given: handed over, its job in Redis: at the trigger's commit (due now), or by the
    # dispatcher (due five minutes later)
    shop = make_shop()
    shipped_email_sequence(shop, delay_minutes=0 if handed_over_by == "trigger" else 5)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=make_order(shop),
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    start = timezone.now() + timedelta(minutes=0 if handed_over_by == "trigger" else 6)
    with time_machine.travel(start):
        with django_capture_on_commit_callbacks(execute=True):
            dispatched = messages_dispatch_due()
        assert dispatched == (0 if handed_over_by == "trigger" else 1)
        assert send_jobs_queued() == 1
        # when: Redis loses everything
        redis_conn.flushdb()
        rq_worker()
        # then: nothing was sent and the row still holds the schedule
        assert smtp_sink.messages == []
        message = Message.objects.get()
        assert message.status == Message.Status.SENDING
        # not handed out again while the queue lease runs …
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 0
    # … and sent once after it expired
    with time_machine.travel(start + QUEUE_LEASE + timedelta(seconds=1)):
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
    assert len(smtp_sink.messages) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.attempts == 1
    assert message.last_error == "queued job lost; enqueued again"


def test_redis_flushed_before_dispatch_loses_nothing(
    smtp_sink, rq_worker, redis_conn, django_capture_on_commit_callbacks
):
    # given: a message due in five minutes, and Redis losing everything meanwhile
    shop = make_shop()
    shipped_email_sequence(shop, delay_minutes=5)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=make_order(shop),
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    redis_conn.flushdb()
    # when it falls due, then: the dispatcher hands it over from its row
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
    assert len(smtp_sink.messages) == 1


def test_a_message_due_now_reaches_smtp_at_the_triggers_commit_without_a_dispatcher_pass(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given: a shipped email due at once
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    # when: the trigger's transaction commits and a worker runs (no dispatcher pass)
    [message] = trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    assert message.status == Message.Status.SENDING
    assert send_jobs_queued() == 1
    rq_worker()
    # then: SMTP has it, once, and the row says sent at the first attempt
    assert len(smtp_sink.messages) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("sent", 1, "")
    # and the dispatcher's next pass finds nothing to hand out
    assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 0
    assert len(smtp_sink.messages) == 1


def test_a_message_scheduled_later_waits_for_the_dispatcher(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    shop = make_shop()
    shipped_email_sequence(shop, delay_minutes=5)
    [message] = trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=make_order(shop),
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    assert message.status == Message.Status.SCHEDULED
    assert send_jobs_queued() == 0
    assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
    assert len(smtp_sink.messages) == 1


def test_redis_refusing_at_the_triggers_commit_leaves_it_to_the_dispatcher_sent_once(
    smtp_sink, rq_worker, settings, django_capture_on_commit_callbacks
):
    # given: a shipped email due at once, and the sends queue's Redis refusing connections
    # when the trigger commits
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    working = settings.RQ_QUEUES
    settings.RQ_QUEUES = {
        **working,
        "sends": {**working["sends"], "URL": f"redis://127.0.0.1:{free_port()}/0"},
    }
    [message] = trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    settings.RQ_QUEUES = working
    # then: no job, and the row is back on the schedule, due, with no lease
    assert send_jobs_queued() == 0
    message.refresh_from_db()
    assert (message.status, message.lease_expires_at) == ("scheduled", None)
    assert message.due_at <= timezone.now()
    # when: the dispatcher's next pass and a worker run
    assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
    assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 0
    # then: sent once
    assert len(smtp_sink.messages) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)


def test_a_message_cancelled_before_its_job_runs_is_not_sent(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given: a shipped email handed over at its trigger's commit, its job waiting
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    # when: the order is cancelled before a worker takes the job
    order.cancelled_at = timezone.now()
    order.save(update_fields=["cancelled_at"])
    trigger_committed(
        django_capture_on_commit_callbacks, shop=shop, order=order, trigger="order_cancelled"
    )
    rq_worker()
    # then: nothing was sent
    assert smtp_sink.messages == []
    assert Message.objects.get(order=order).status == Message.Status.CANCELLED


def test_worker_killed_before_the_handover_is_resent_exactly_once(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given: a worker claimed the row (attempt 1) and died before calling SMTP
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    # handed over at the trigger's commit (its hook is not run here: the job never runs,
    # as if its worker died before taking it)
    notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped"))
    message = Message.objects.get()
    claimed = sending._message_claim(message_id=message.pk)
    assert claimed is not None
    assert claimed.attempts == 1
    # when: a duplicate job runs while the dead worker's lease is live
    assert message_send(message_id=message.pk) == "not_claimed"
    assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 0
    # then: after the lease the dispatcher hands it out again and it is sent once
    with time_machine.travel(timezone.now() + SEND_LEASE + timedelta(seconds=1)):
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 0
    assert len(smtp_sink.messages) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.attempts == 2
    assert message.last_error == (
        "lease expired; resending (the previous attempt never reached the provider)"
    )
    assert not OrderEvent.objects.filter(kind="notification.resending").exists()
    # and a late duplicate job changes nothing
    assert message_send_job(message.pk) == "not_claimed"
    assert len(smtp_sink.messages) == 1


class WorkerDied(BaseException):
    """Stands in for SIGKILL: not an Exception, nothing catches it."""


def test_worker_killed_after_smtp_accepted_is_resent_and_the_possible_duplicate_recorded(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks, monkeypatch
):
    # given: SMTP accepted the message, then the worker died before recording it
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    notification_trigger(shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped"))
    message = Message.objects.get()
    real_finish = sending._finish

    def die_on_sent(msg, *, status, **fields):
        if status == Message.Status.SENT:
            raise WorkerDied()
        return real_finish(msg, status=status, **fields)

    monkeypatch.setattr(sending, "_finish", die_on_sent)
    with pytest.raises(WorkerDied):
        message_send(message_id=message.pk)
    monkeypatch.setattr(sending, "_finish", real_finish)
    assert len(smtp_sink.messages) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING
    assert message.provider_call_at is not None
    # when: the lease expires
    with time_machine.travel(timezone.now() + SEND_LEASE + timedelta(seconds=1)):
        assert dispatch_and_work(rq_worker, django_capture_on_commit_callbacks) == 1
    # then: SMTP has no idempotency key, so the shopper gets it twice, with one Message-ID
    # (receivers that dedupe on Message-ID show it once); the row and timeline say so.
    assert len(smtp_sink.messages) == 2
    assert smtp_sink.messages[0]["Message-ID"] == smtp_sink.messages[1]["Message-ID"]
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.attempts == 2
    assert message.last_error == (
        "lease expired; resending (the previous attempt may have reached the provider)"
    )
    assert OrderEvent.objects.filter(order=order, kind="notification.resending").count() == 1


# --- stale news and conditions at send time -------------------------------------------------


def test_out_for_delivery_news_is_skipped_once_the_shipment_is_delivered(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given: scheduled while out for delivery (a delay step), delivered before it was due
    shop = make_shop()
    make_email_template(shop, "out_for_delivery")
    make_sequence(
        shop, "ofd", "out_for_delivery", [{"template_key": "out_for_delivery", "delay_minutes": 30}]
    )
    order = make_order(shop)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="out_for_delivery",
        news=parcel(99, "out_for_delivery"),
    )
    # tracking tells notifications the parcel arrived (delivered news, here with no sequence)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="delivered",
        news=parcel(99, "delivered", delivered_at=timezone.now()),
    )
    # when
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    assert smtp_sink.messages == []
    message = Message.objects.get()
    assert (message.status, message.reason) == ("skipped", "shipment already delivered")
    skipped = OrderEvent.objects.get(order=order, kind="notification.skipped")
    assert skipped.detail["reason"] == "shipment already delivered"


def test_in_transit_news_is_skipped_once_out_for_delivery(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    shop = make_shop()
    make_email_template(shop, "in_transit")
    make_sequence(shop, "in_transit", "in_transit", [{"template_key": "in_transit"}])
    order = make_order(shop)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="in_transit",
        news=parcel(7, "in_transit"),
    )
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="out_for_delivery",
        news=parcel(7, "out_for_delivery"),
    )
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert smtp_sink.messages == []
    assert Message.objects.get().reason == "shipment already out for delivery"


@pytest.mark.parametrize(
    ("conditions", "prepare", "reason"),
    [
        (["accepts_marketing"], lambda order: None, "customer does not accept marketing"),
        (
            ["not_returned"],
            # returns tells notifications (a timeline line alone says nothing to it)
            lambda order: notification_news_record(
                shop=order.shop,
                order=order,
                news=ReturnNews(return_id=1, status="requested", happened_at=timezone.now()),
            ),
            "a return was started",
        ),
        (
            ["not_cancelled"],
            lambda order: (
                type(order).objects.filter(pk=order.pk).update(cancelled_at=timezone.now())
            ),
            "order cancelled",
        ),
    ],
)
def test_step_conditions_are_evaluated_at_send_time(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks, conditions, prepare, reason
):
    # given
    shop = make_shop()
    make_email_template(shop, "review_request")
    make_sequence(
        shop,
        "review",
        "delivered",
        [{"template_key": "review_request", "delay_minutes": 60, "conditions": conditions}],
    )
    order = make_order(shop, buyer_accepts_marketing=False)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="delivered",
        news=parcel(1, "delivered"),
    )
    prepare(order)
    # when
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    assert smtp_sink.messages == []
    message = Message.objects.get()
    assert (message.status, message.reason) == ("skipped", reason)


def test_condition_met_sends(smtp_sink, rq_worker, django_capture_on_commit_callbacks):
    shop = make_shop()
    make_email_template(shop, "review_request")
    make_sequence(
        shop,
        "review",
        "delivered",
        [{"template_key": "review_request", "conditions": ["accepts_marketing", "not_returned"]}],
    )
    order = make_order(shop, buyer_accepts_marketing=True)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="delivered",
        news=parcel(1, "delivered"),
    )
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert len(smtp_sink.messages) == 1


def test_suppressed_recipient_is_skipped_at_send_time(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    shop = make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=order,
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    Suppression.objects.create(
        shop=shop, channel="email", address="shopper@example.com", reason="unsubscribed"
    )
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert smtp_sink.messages == []
    assert Message.objects.get().reason == "recipient suppressed"


def test_messages_of_an_uninstalled_shop_are_skipped(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    shop = make_shop()
    shipped_email_sequence(shop)
    trigger_committed(
        django_capture_on_commit_callbacks,
        shop=shop,
        order=make_order(shop),
        trigger="shipped",
        news=parcel(1, "shipped"),
    )
    type(shop).objects.filter(pk=shop.pk).update(is_active=False)
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert smtp_sink.messages == []
    assert Message.objects.get().reason == "shop uninstalled the app"

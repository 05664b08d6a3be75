# ruff: noqa: F811 - pytest fixtures imported from engine_support are used as arguments
"""Sending: email through a real SMTP server, SMS through the Twilio stand-in, via RQ."""

import logging
from datetime import UTC, datetime

import pytest

from notifications.channels import sms_body_fit, sms_segments
from notifications.models import Message, NotificationSettings, Suppression
from shopapp.models import OrderEvent
from tests.notifications.engine_support import (
    TWILIO_SID,
    dispatch_and_work,
    enable_sms,
    fast_retries,  # noqa: F401 - fixture
    make_order,
    make_sequence,
    make_shop,
    make_sms_template,
    parcel,
    shipped_email_sequence,
    smtp_sink,  # noqa: F401 - fixture
    trigger_committed,
    twilio,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db

# SMS quiet hours are 21:00-08:00 in New York: SMS tests send at noon there.
NOON_NY = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)


def _schedule_shipped_email(capture, shop=None, **order_fields):
    shop = shop or make_shop()
    shipped_email_sequence(shop)
    order = make_order(shop, **order_fields)
    trigger_committed(
        capture, shop=shop, order=order, trigger="shipped", news=parcel(11, "shipped")
    )
    return shop, order, Message.objects.get(order=order)


def test_email_goes_out_multipart_with_sender_reply_to_and_unsubscribe_headers(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    # given
    shop = make_shop()
    NotificationSettings.objects.create(
        shop=shop, sender_name="Alpha Shop", reply_to="help@alpha.example"
    )
    _, order, message = _schedule_shipped_email(django_capture_on_commit_callbacks, shop)
    # when
    handed_out = dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    assert handed_out == 1
    [mail] = smtp_sink.messages
    assert smtp_sink.envelopes == [("notifications@postpurchase.example", ["shopper@example.com"])]
    assert mail["From"] == "Alpha Shop <notifications@postpurchase.example>"
    assert mail["To"] == "shopper@example.com"
    assert mail["Reply-To"] == "help@alpha.example"
    assert mail["Subject"] == "Order #1001 is on its way"
    assert mail["Message-ID"] == f"<message-{message.pk}@app.postpurchase.example>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # A URL this long is folded onto its own line; the unfolded value is "<url>".
    unsubscribe = str(mail["List-Unsubscribe"]).strip()
    assert unsubscribe.startswith("<https://app.postpurchase.example/notifications/unsubscribe/")
    assert unsubscribe.endswith(">")
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert text.startswith("Hi Ada, track it: https://alpha.myshopify.com/apps/postpurchase/track/")
    assert "<p>Hi Ada</p>" in html
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.attempts == 1
    assert message.provider_message_id == mail["Message-ID"]
    assert message.sent_at is not None
    assert message.claimed_at is None
    assert message.lease_expires_at is None
    sent = OrderEvent.objects.get(order=order, kind="notification.sent")
    assert sent.summary == "Email “shipped” sent to shopper@example.com"
    assert sent.detail["channel"] == "email"
    assert sent.detail["template_key"] == "shipped"


def test_reply_to_falls_back_to_the_shop_email(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    _schedule_shipped_email(django_capture_on_commit_callbacks)
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    [mail] = smtp_sink.messages
    assert mail["Reply-To"] == "owner@alpha.example"
    assert mail["From"] == "Alpha Goods <notifications@postpurchase.example>"


def test_transient_smtp_error_is_retried_and_sent_once_with_the_same_message_id(
    smtp_sink, rq_worker, fast_retries, django_capture_on_commit_callbacks
):
    # given: the server greylists the first attempt
    _, order, message = _schedule_shipped_email(django_capture_on_commit_callbacks)
    smtp_sink.data_answers.append("451 4.7.1 Greylisted, try again later")
    # when
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    assert len(smtp_sink.messages) == 1
    expected_id = f"<message-{message.pk}@app.postpurchase.example>"
    assert smtp_sink.seen_message_ids == [expected_id, expected_id]
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.attempts == 2
    assert message.last_error.startswith("smtp.451")
    assert not OrderEvent.objects.filter(order=order, kind="notification.failed").exists()


def test_transient_errors_mark_the_message_failed_only_when_retries_are_spent(
    smtp_sink, rq_worker, fast_retries, django_capture_on_commit_callbacks
):
    # given: four 451s for four attempts (one try + three retries)
    _, order, message = _schedule_shipped_email(django_capture_on_commit_callbacks)
    smtp_sink.data_answers.extend(["451 4.3.0 Mailbox busy"] * 4)
    # when
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    message.refresh_from_db()
    assert smtp_sink.messages == []
    assert message.status == Message.Status.FAILED
    assert message.attempts == 4
    assert message.reason.startswith("gave up after 4 attempts: smtp.451")
    assert OrderEvent.objects.filter(order=order, kind="notification.failed").count() == 1
    assert not Suppression.objects.exists()


def test_permanent_smtp_error_fails_without_retry_and_suppresses_the_address(
    smtp_sink, rq_worker, fast_retries, django_capture_on_commit_callbacks
):
    # given
    shop, order, message = _schedule_shipped_email(django_capture_on_commit_callbacks)
    smtp_sink.rcpt_answers.append("550 5.1.1 No such user here")
    # when
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.attempts == 1
    assert message.reason == "recipient refused (550) (not retried)"
    assert smtp_sink.seen_message_ids == []
    suppression = Suppression.objects.get()
    assert (suppression.shop, suppression.channel, suppression.address, suppression.reason) == (
        shop,
        "email",
        "shopper@example.com",
        "bounced",
    )
    failed = OrderEvent.objects.get(order=order, kind="notification.failed")
    assert "recipient refused (550)" in failed.summary


def test_sms_goes_out_through_twilio_in_e164(twilio, rq_worker, django_capture_on_commit_callbacks):
    # given
    shop = make_shop()
    enable_sms(shop)
    make_sms_template(shop, "shipped")
    make_sequence(shop, "shipped_sms", "shipped", [{"channel": "sms", "template_key": "shipped"}])
    order = make_order(shop)
    import time_machine

    with time_machine.travel(NOON_NY):
        trigger_committed(
            django_capture_on_commit_callbacks,
            shop=shop,
            order=order,
            trigger="shipped",
            news=parcel(1, "shipped"),
        )
        # when
        dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    # then
    [sms] = twilio.received
    assert sms["account_sid"] == TWILIO_SID
    assert sms["to"] == "+12125550123"
    assert sms["from"] == "+15005550006"
    assert sms["body"].startswith("Alpha Goods: order #1001 shipped https://alpha.myshopify.com/")
    message = Message.objects.get()
    assert message.status == Message.Status.SENT
    assert message.provider_message_id == sms["sid"]
    assert OrderEvent.objects.filter(order=order, kind="notification.sent").count() == 1


def _sms_at_noon(shop, rq_worker, capture):
    import time_machine

    enable_sms(shop)
    make_sms_template(shop, "shipped")
    make_sequence(shop, "shipped_sms", "shipped", [{"channel": "sms", "template_key": "shipped"}])
    order = make_order(shop)
    with time_machine.travel(NOON_NY):
        trigger_committed(
            capture, shop=shop, order=order, trigger="shipped", news=parcel(1, "shipped")
        )
        dispatch_and_work(rq_worker, capture)
    return order, Message.objects.get(order=order)


def test_twilio_invalid_number_fails_without_retry_and_suppresses(
    twilio, rq_worker, fast_retries, django_capture_on_commit_callbacks
):
    twilio.invalid.add("+12125550123")
    shop = make_shop()
    order, message = _sms_at_noon(shop, rq_worker, django_capture_on_commit_callbacks)
    assert twilio.received == []
    assert message.status == Message.Status.FAILED
    assert message.attempts == 1
    assert message.reason == "twilio 21211 (not retried)"
    assert Suppression.objects.get().reason == "invalid"


def test_twilio_unsubscribed_recipient_is_skipped_and_suppressed(
    twilio, rq_worker, django_capture_on_commit_callbacks
):
    twilio.unsubscribed.add("+12125550123")
    shop = make_shop()
    order, message = _sms_at_noon(shop, rq_worker, django_capture_on_commit_callbacks)
    assert message.status == Message.Status.SKIPPED
    assert message.reason == "recipient unsubscribed at the provider (twilio.21610)"
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason) == (
        "sms",
        "+12125550123",
        "unsubscribed",
    )


def test_twilio_server_error_is_retried(
    twilio, rq_worker, fast_retries, django_capture_on_commit_callbacks
):
    twilio.fail_next.extend([503, 429])
    shop = make_shop()
    order, message = _sms_at_noon(shop, rq_worker, django_capture_on_commit_callbacks)
    assert len(twilio.received) == 1
    assert message.status == Message.Status.SENT
    assert message.attempts == 3


def test_sms_is_skipped_when_the_shop_has_not_enabled_it(
    rq_worker, django_capture_on_commit_callbacks
):
    import time_machine

    shop = make_shop()
    make_sms_template(shop, "shipped")
    make_sequence(shop, "shipped_sms", "shipped", [{"channel": "sms", "template_key": "shipped"}])
    order = make_order(shop)
    with time_machine.travel(NOON_NY):
        trigger_committed(
            django_capture_on_commit_callbacks,
            shop=shop,
            order=order,
            trigger="shipped",
            news=parcel(1, "shipped"),
        )
        dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    message = Message.objects.get()
    assert (message.status, message.reason) == ("skipped", "SMS is not enabled for this shop")


def test_sms_bodies_are_capped_to_three_segments():
    short = "Your order shipped."
    assert sms_body_fit(short) == short
    gsm = "a" * 1000
    fitted = sms_body_fit(gsm)
    assert fitted.endswith("...")
    assert len(fitted) == 459  # 3 × 153 septets
    assert sms_segments(fitted) == 3
    ucs2 = "Votre commande est expédiée 📦 " * 20
    fitted = sms_body_fit(ucs2)
    assert fitted.endswith("…")
    assert sms_segments(fitted) == 3
    assert len(fitted.encode("utf-16-le")) // 2 <= 201
    assert sms_segments("x" * 160) == 1
    assert sms_segments("x" * 161) == 2
    assert sms_segments("é" * 70) == 1  # é is in GSM-7
    assert sms_segments("ł" * 71) == 2  # ł is not: UCS-2, 70 per single segment


def test_no_address_or_number_reaches_a_log_line(
    smtp_sink, rq_worker, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.DEBUG)
    _schedule_shipped_email(django_capture_on_commit_callbacks, phone="+12125550123")
    dispatch_and_work(rq_worker, django_capture_on_commit_callbacks)
    assert len(smtp_sink.messages) == 1
    logged = "\n".join(
        f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.name.startswith("notifications")
    )
    assert "notifications.send.sent" in logged
    assert "shopper@example.com" not in logged.lower()
    assert "2125550123" not in logged

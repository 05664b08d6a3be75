"""Shared setup for the notifications engine tests: a real SMTP server (aiosmtpd) in the test
process, the Twilio stand-in, and factories for shops, orders, sequences and templates."""

from __future__ import annotations

import email
import email.policy
import itertools
import threading
from dataclasses import dataclass, field

import django_rq
import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from notifications.channels import smtp_connection_drop
from notifications.models import (
    Message,
    MessageTemplate,
    NotificationSettings,
    Sequence,
    SequenceStep,
)
from notifications.news import Item, ShipmentNews, ShipmentStage
from notifications.services import notification_trigger
from shopapp.auth.tokens import token_encrypt
from shopapp.background.queue import Queues
from shopapp.models import LineItem, Order, Shop
from tests.conftest import free_port
from tests.notifications.twilio_standin import TwilioStandin

TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token-for-tests"

_ids = itertools.count(5_000_000)
SEND_JOB = "notifications.jobs.message_send_job"


@dataclass
class SmtpSink:
    """What the SMTP server accepted, and answers to force on the next RCPT / DATA commands."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    # The Message-ID of every DATA received, accepted or not (to compare attempts).
    seen_message_ids: list[str] = field(default_factory=list)
    # Called inside DATA before accepting: lets a test act "while the server has the message".
    on_data: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    greetings: int = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        # One greeting per SMTP connection opened.
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_answers:
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.seen_message_ids.append(str(parsed["Message-ID"]))
        if self.data_answers:
            return self.data_answers.pop(0)
        for hook in self.on_data:
            hook()
        with self.lock:
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on a free port; Django's SMTP backend pointed at it."""
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.port = port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "notifications@postpurchase.example"
    settings.APP_URL = "https://app.postpurchase.example"
    yield sink
    controller.stop()
    # The worker's kept connection was to this server: a later test's must not find it.
    smtp_connection_drop()


@pytest.fixture
def twilio(settings):
    standin = TwilioStandin(accounts={TWILIO_SID: TWILIO_TOKEN}).start()
    settings.TWILIO_API_BASE_URL = standin.base_url
    yield standin
    standin.stop()


@pytest.fixture
def fast_retries(settings):
    # RQ re-enqueues at once with a zero interval, so a burst worker runs every retry.
    settings.NOTIFICATIONS_RETRY_INTERVALS = [0, 0, 0]


def make_shop(domain: str = "alpha.myshopify.com", **fields) -> Shop:
    values = {
        "name": "Alpha Goods",
        "email": "owner@alpha.example",
        "is_active": True,
        "timezone": "America/New_York",
        "currency": "USD",
    }
    values.update(fields)
    return Shop.objects.create(myshopify_domain=domain, **values)


def make_order(shop: Shop, number: int = 1001, **fields) -> Order:
    values = {
        "shopify_id": next(_ids),
        "name": f"#{number}",
        "order_number": number,
        "email": "Shopper@Example.com",
        "phone": "(212) 555-0123",
        "customer_first_name": "Ada",
        "currency": "USD",
        "total_price": "49.90",
        "shipping_country_code": "US",
        "shipping_province_code": "NY",
        "locale": "en",
        "shopify_created_at": timezone.now(),
    }
    values.update(fields)
    order = Order.objects.create(shop=shop, **values)
    LineItem.objects.create(
        shop=shop, order=order, shopify_id=next(_ids), title="Linen shirt", quantity=2
    )
    return order


def make_sequence(
    shop: Shop,
    key: str,
    trigger: str,
    steps: list[dict],
    *,
    extra_triggers: list[str] | None = None,
    is_enabled: bool = True,
) -> Sequence:
    sequence = Sequence.objects.create(
        shop=shop,
        key=key,
        name=key.replace("_", " ").title(),
        trigger=trigger,
        extra_triggers=extra_triggers or [],
        is_enabled=is_enabled,
    )
    for position, step in enumerate(steps):
        SequenceStep.objects.create(shop=shop, sequence=sequence, position=position, **step)
    return sequence


def make_email_template(shop: Shop, key: str, *, subject: str = "", text: str = "", html: str = ""):
    return MessageTemplate.objects.create(
        shop=shop,
        key=key,
        channel="email",
        locale="en",
        subject=subject or "Order {{ order.name }} is on its way",
        text_body=text or "Hi {{ customer.first_name }}, track it: {{ tracking_url }}",
        html_body=html
        or "<p>Hi {{ customer.first_name }}</p><a href='{{ tracking_url }}'>Track</a>",
    )


def make_sms_template(shop: Shop, key: str, body: str = ""):
    return MessageTemplate.objects.create(
        shop=shop,
        key=key,
        channel="sms",
        locale="en",
        sms_body=body or "{{ shop.name }}: order {{ order.name }} shipped {{ tracking_url }}",
    )


def enable_sms(shop: Shop, **fields) -> NotificationSettings:
    row, _ = NotificationSettings.objects.get_or_create(shop=shop)
    row.is_sms_enabled = True
    row.twilio_account_sid = TWILIO_SID
    row.twilio_auth_token_encrypted = token_encrypt(plain=TWILIO_TOKEN)
    row.twilio_from_number = "+15005550006"
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def shipped_email_sequence(shop: Shop, **step_fields):
    make_email_template(shop, "shipped")
    step = {"channel": "email", "template_key": "shipped", "delay_minutes": 0}
    step.update(step_fields)
    return make_sequence(shop, "shipped", "shipped", [step])


def trigger_committed(capture, **kwargs) -> list[Message]:
    """``notification_trigger`` as its caller's commit ends it (the test's own transaction
    never commits): what is due now is handed to the sends queue then."""
    with capture(execute=True):
        return notification_trigger(**kwargs)


def send_jobs_queued() -> int:
    """Send jobs waiting in the sends queue."""
    queue = django_rq.get_queue(Queues.SENDS)
    return sum(1 for job in queue.get_jobs() if job.func_name == SEND_JOB)


def dispatch_and_work(rq_worker, capture) -> int:
    """One cron round: claim what is due (enqueue on commit), then a burst worker sends.
    Returns the send jobs the worker found queued: handed over by this round or at the
    commit of a trigger before it."""
    from notifications.services import messages_dispatch_due

    with capture(execute=True):
        messages_dispatch_due()
    queued = send_jobs_queued()
    rq_worker()
    return queued


def parcel(fulfillment_id: int, stage: str = "shipped", **fields) -> ShipmentNews:
    """News of one parcel, as tracking hands it over (the order's only parcel by default, so
    it is not held back to be combined with others)."""
    values = {
        "happened_at": timezone.now(),
        "carrier": "UPS",
        "tracking_numbers": ("1Z999AA10123456784",),
        "tracking_urls": ("https://www.ups.com/track?tracknum=1Z999AA10123456784",),
        "items": (Item(title="Linen shirt", quantity=2),),
        "is_whole_order": True,
    }
    values.update(fields)
    return ShipmentNews(fulfillment_id=fulfillment_id, stage=ShipmentStage(stage), **values)

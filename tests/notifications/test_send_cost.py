"""What one send costs a worker: its queries, SMTP connections and template compilations.

Sends run in the worker's own process (no fork per job), so what one send opens or compiles
is there for the next: the SMTP connection is kept, templates are compiled once per version.
"""

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import rendering
from notifications.admin_services import template_save
from notifications.channels import smtp_connection_drop
from notifications.models import Message
from notifications.services import message_send, messages_dispatch_due, notification_trigger
from tests.conftest import free_port
from tests.notifications import engine_support
from tests.notifications.engine_support import (
    SmtpSink,
    make_order,
    make_shop,
    parcel,
    shipped_email_sequence,
)

smtp_sink = engine_support.smtp_sink

pytestmark = pytest.mark.django_db

# Claim (select with step, order, shop and settings; update), the parcels' facts, suppression,
# line items, the template, the shop's branding, the handover mark with the snapshot, the
# outcome, its timeline row.
QUERIES_PER_SEND = 10


def _due_messages(shop, count: int, first_number: int = 2000) -> list[int]:
    before = set(Message.objects.filter(shop=shop).values_list("id", flat=True))
    for n in range(count):
        order = make_order(shop, first_number + n)
        notification_trigger(
            shop=shop, order=order, trigger="shipped", news=parcel(order.shopify_id)
        )
    messages_dispatch_due()
    ids = sorted(set(Message.objects.filter(shop=shop).values_list("id", flat=True)) - before)
    assert len(ids) == count
    return ids


def _statements(queries: CaptureQueriesContext) -> list[str]:
    # Savepoints are the test's transaction around the send's own atomic blocks.
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def test_a_send_costs_a_fixed_number_of_queries(smtp_sink):
    shop = make_shop()
    shipped_email_sequence(shop)
    first, second = _due_messages(shop, 2)
    assert message_send(message_id=first) == "sent"

    with CaptureQueriesContext(connection) as queries:
        assert message_send(message_id=second) == "sent"

    assert len(_statements(queries)) == QUERIES_PER_SEND, _statements(queries)
    sent = Message.objects.get(pk=second)
    # the snapshot written with the handover mark is the one the message was rendered from
    assert sent.snapshot["shipments"][0]["fulfillment_id"]


def test_sends_share_one_smtp_connection_and_one_compiled_template(smtp_sink):
    shop = make_shop()
    shipped_email_sequence(shop)
    ids = _due_messages(shop, 3)
    misses = rendering.compiled_stats["misses"]

    assert [message_send(message_id=pk) for pk in ids] == ["sent"] * 3

    # one connection (one EHLO) carried the three messages, each delivered once
    assert smtp_sink.greetings == 1
    assert len(smtp_sink.messages) == 3
    assert len(set(smtp_sink.seen_message_ids)) == 3
    # subject, HTML and text compiled once each, then reused
    assert rendering.compiled_stats["misses"] - misses == 3


def test_an_edited_template_is_compiled_afresh(smtp_sink):
    shop = make_shop()
    shipped_email_sequence(shop)
    before_edit, after_edit = _due_messages(shop, 2)
    assert message_send(message_id=before_edit) == "sent"

    template_save(
        shop=shop,
        key="shipped",
        channel="email",
        locale="en",
        subject="Edited: {{ order.name }} left the warehouse",
        html_body="<p>Edited</p>",
        text_body="Edited",
        sms_body="",
    )
    assert message_send(message_id=after_edit) == "sent"

    subjects = [str(m["Subject"]) for m in smtp_sink.messages]
    assert subjects[0].startswith("Order #2000")
    assert subjects[1] == "Edited: #2001 left the warehouse"


def test_a_dropped_smtp_connection_is_reopened_before_the_message_is_handed_over(settings):
    first_server, port = SmtpSink(), free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_TIMEOUT = 5
    settings.APP_URL = "https://app.postpurchase.example"
    shop = make_shop()
    shipped_email_sequence(shop)
    first, second = _due_messages(shop, 2)
    controller = Controller(first_server, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert message_send(message_id=first) == "sent"
    finally:
        # the SMTP server restarts between two sends: the kept connection is gone
        controller.stop()
    restarted = SmtpSink()
    controller = Controller(restarted, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        outcome = message_send(message_id=second)
    finally:
        controller.stop()
        smtp_connection_drop()

    # then the second message went out once, on a new connection, with no error recorded
    assert outcome == "sent"
    assert restarted.greetings == 1
    assert [str(m["Message-ID"]) for m in restarted.messages] == [
        f"<message-{second}@app.postpurchase.example>"
    ]
    row = Message.objects.get(pk=second)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")

"""A customer redaction after a shopper's whole life with the shop: orders mirrored, parcels
announced by email and SMS, a return with a note, then Shopify's customers/redact, signed by
the devshop and processed by the worker. No trace of the shopper is left in any field of any
row, whichever app wrote it (tests/privacy_support.traces reads every text field there is).
"""

from __future__ import annotations

import re

import pytest

from notifications.models import Message, NotificationSettings, SequenceStep
from returns.models import ReturnRequest
from shopapp.auth.tokens import token_encrypt
from shopapp.privacy.scrub import Needles
from tests.journeys.conftest import Journey, portal_submit
from tests.notifications.engine_support import TWILIO_SID, TWILIO_TOKEN
from tests.privacy_support import traces

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.journey]

SHOPPER = "paula.private@example.com"
PHONE = "+1 646 555 0188"


def _sms_on(journey: Journey) -> None:
    NotificationSettings.objects.update_or_create(
        shop=journey.shop,
        defaults={
            "is_sms_enabled": True,
            "twilio_account_sid": TWILIO_SID,
            "twilio_auth_token_encrypted": token_encrypt(plain=TWILIO_TOKEN),
            "twilio_from_number": "+15005550006",
            "sms_quiet_start": "00:00",
            "sms_quiet_end": "00:00",
        },
    )
    SequenceStep.objects.filter(shop=journey.shop, channel="sms", template_key="shipped").update(
        is_enabled=True
    )


def test_customers_redact_leaves_no_trace_of_the_shopper_anywhere(journey, twilio):
    # given a shopper with an order shipped, announced by email and SMS, and delivered
    _sms_on(journey)
    (order_id,) = journey.client.orders_create(
        journey.domain,
        count=1,
        email=SHOPPER,
        phone=PHONE,
        customer_locale="en",
        country_code="US",
        financial_status="PAID",
        line_items=1,
        line_item_product_type="Apparel",
    )
    journey.pump()
    order = journey.order(order_id)
    (parcel,) = journey.client.order_fulfil(journey.domain, order_id)
    journey.pump()
    journey.send_due()
    journey.client.fulfillment_advance(journey.domain, int(parcel["id"]), "DELIVERED")
    journey.pump()
    journey.send_due()
    assert journey.emails_to(SHOPPER)
    sms = list(Message.objects.filter(order=order, channel="sms").values_list("status", "reason"))
    assert twilio.received, f"the SMS went to the Twilio stand-in: {sms}"
    assert Message.objects.filter(order=order, channel="sms", status="sent").exists()
    # and a return asked through the portal, with a note that gives a way to reach them
    (line,) = order.line_items.all()
    note = f"Too small. Call me on {PHONE} or write to {SHOPPER.upper()}."
    portal_submit(journey, order, line, contact=SHOPPER, resolution="refund", note=note)
    journey.pump()
    assert ReturnRequest.objects.get(order=order).shopify_return_id is not None
    needles = Needles.build(
        emails=[order.email],
        phones=[order.phone],
        names=[order.customer_first_name, order.customer_last_name],
        region="US",
    )
    assert len(traces(needles)) >= 5, "the shopper is known to several tables"

    # when Shopify asks for the customer's data to be erased
    journey.client.webhook_emit(
        journey.domain,
        "customers/redact",
        {
            "shop_id": 1,
            "shop_domain": journey.domain,
            "customer": {"id": order.customer_id, "email": SHOPPER, "phone": PHONE},
            "orders_to_redact": [order_id],
        },
    )
    journey.pump()

    # then nothing anywhere names them, in any spelling; the order stays, anonymised
    assert [str(t) for t in traces(needles)] == []
    order.refresh_from_db()
    assert order.redacted_at is not None
    assert Message.objects.filter(order=order).exists()
    # and support's page for the order keeps its history without naming them
    page = journey.admin_order_page(order)
    assert "notification.sent" in [kind for kind, _ in journey.timeline(order)]
    assert SHOPPER not in page
    assert not re.search(r"646\D{0,3}555\D{0,3}0188", page), "the phone, in any spelling"
    assert "Personal data redacted" in page

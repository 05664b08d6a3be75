"""Journeys of a return: the shopper asks through the storefront (the devshop signs every
request as Shopify's app proxy does), the merchant acts in the app, Shopify's webhooks come
back, and the shopper reads each step in their inbox, with the return's own status page, the
merchant's instructions, the label and what was refunded or exchanged.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from notifications.models import Message
from returns import services
from returns.models import ReturnRequest
from shopapp.models import LineItemReplacement
from tests.journeys.conftest import Journey, hidden_fields, html_of, portal_submit, text_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.journey]

SHOPPER = "rita.returns@example.com"
TIMEOUT_S = 15
# A label as a carrier's site gives it: a real (tiny) PDF.
LABEL_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _delivered_order(journey: Journey, *, line_items: int = 1) -> int:
    (order_id,) = journey.client.orders_create(
        journey.domain,
        count=1,
        email=SHOPPER,
        customer_locale="en",
        country_code="US",
        financial_status="PAID",
        line_items=line_items,
        line_item_product_type="Apparel",
    )
    journey.pump()
    for parcel in journey.client.order_fulfil(journey.domain, order_id):
        journey.client.fulfillment_advance(journey.domain, int(parcel["id"]), "DELIVERED")
    journey.pump()
    journey.send_due(after=timedelta(minutes=11))
    return order_id


def _subjects(journey: Journey) -> list[str]:
    return [str(m["Subject"]) for m in journey.emails_to(SHOPPER)]


def _email(journey: Journey, subject_part: str):
    (found,) = [m for m in journey.emails_to(SHOPPER) if subject_part in str(m["Subject"])]
    return found


def test_a_return_requested_approved_with_a_label_received_and_refunded(journey):
    order_id = _delivered_order(journey, line_items=1)
    order = journey.order(order_id)
    (line,) = order.line_items.all()

    # when the shopper asks for a refund through the storefront portal
    portal_submit(journey, order, line, contact=SHOPPER, resolution="refund")
    journey.pump()
    journey.send_due()

    # then Shopify has the return, and the shopper's confirmation links to its status page
    request = ReturnRequest.objects.get(order=order)
    assert request.sync_state == ReturnRequest.SyncState.SYNCED
    requested = _email(journey, "received your return request")
    status_link = re.search(r"https?://\S+/returns/[\w:.-]+", text_of(requested)).group(0)
    assert "/apps/postpurchase/returns/" in status_link

    # when the merchant approves it with instructions and a label
    services.return_request_approve(
        shop=journey.shop,
        request=request,
        instructions="Drop the parcel at any post office within 14 days.",
        label_file=SimpleUploadedFile("label.pdf", LABEL_PDF, content_type="application/pdf"),
    )
    journey.pump()
    journey.send_due()

    # then the "approved" email carries the instructions, the label link and the status page
    approved = _email(journey, "is approved")
    text = text_of(approved)
    assert "Drop the parcel at any post office within 14 days." in text
    label_link = re.search(r"Download your return label: (\S+)", text).group(1)
    assert label_link.endswith("/label")
    assert f'href="{label_link}"' in html_of(approved)
    label = requests.get(label_link, timeout=TIMEOUT_S)
    assert (label.status_code, label.content) == (200, LABEL_PDF)

    # when the items come back and the merchant refunds them
    request.refresh_from_db()
    (return_line,) = request.line_items.all()
    services.return_items_receive(
        shop=journey.shop,
        request=request,
        quantities={return_line.pk: 1},
        disposition="NOT_RESTOCKED",
    )
    journey.pump()
    request.refresh_from_db()
    services.return_request_process(shop=journey.shop, request=request)
    journey.pump()
    journey.send_due()

    # then the "processed" email says what was refunded, to the original payment
    request.refresh_from_db()
    processed = text_of(_email(journey, "has been processed"))
    assert f"Your refund of {request.refunded_amount:.2f}" in processed
    assert "original payment method" in processed
    # and support reads every step, and every email, on the order's timeline
    kinds = [kind for kind, _ in journey.timeline(order)]
    for step in ("requested", "approved", "received", "processed"):
        assert f"return.{step}" in kinds, kinds
    sent = Message.objects.filter(order=order, status="sent", subject_key=f"return:{request.pk}")
    assert sorted(m.trigger for m in sent) == [
        "return_approved",
        "return_processed",
        "return_requested",
    ]


def test_an_exchange_is_processed_and_its_replacement_parcel_says_what_it_replaces(journey):
    order_id = _delivered_order(journey, line_items=1)
    order = journey.order(order_id)
    (line,) = order.line_items.all()

    # when the shopper asks to exchange it for another size, through the portal
    url = journey.client.app_proxy_url(journey.domain, "returns")
    with requests.Session() as shopper:
        page = shopper.get(url, timeout=TIMEOUT_S)
        found = shopper.post(
            url,
            data={**hidden_fields(page.text), "order": order.name, "contact": SHOPPER},
            timeout=TIMEOUT_S,
        )
    select = found.text.split(f'name="variant-{line.pk}"')[1].split("</select>")[0]
    offered = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', select)
    assert offered, "the portal offers the product's other variants"
    variant_id, variant_title = offered[0]
    portal_submit(journey, order, line, contact=SHOPPER, resolution="exchange", variant=variant_id)
    journey.pump()
    request = ReturnRequest.objects.get(order=order)

    # and the merchant approves, receives and processes it
    services.return_request_approve(
        shop=journey.shop, request=request, instructions="Send it back within 30 days."
    )
    journey.pump()
    request.refresh_from_db()
    (return_line,) = request.line_items.all()
    services.return_items_receive(
        shop=journey.shop,
        request=request,
        quantities={return_line.pk: 1},
        disposition="RESTOCKED",
    )
    journey.pump()
    request.refresh_from_db()
    services.return_request_process(shop=journey.shop, request=request)
    journey.pump()
    journey.send_due()

    # then the "processed" email speaks of the replacement, not of a refund to the card
    processed = text_of(_email(journey, "has been processed"))
    assert "replacement is being prepared" in processed
    assert "original payment method" not in processed

    # when the merchant ships the replacement (the line the exchange booked on the order)
    replacement = LineItemReplacement.objects.get(order=order)
    assert replacement.replaces_line_item_shopify_id == line.shopify_id
    (parcel,) = journey.client.order_fulfil(
        journey.domain,
        order_id,
        line_items=[{"id": replacement.line_item_shopify_id, "quantity": 1}],
    )
    journey.pump()
    journey.send_due(after=timedelta(minutes=11))

    # then its "on its way" email says it is the exchange, and what it replaces
    shipped = [m for m in journey.emails_to(SHOPPER) if "on its way" in str(m["Subject"])][-1]
    text = text_of(shipped)
    assert "the replacement for your exchange" in text
    assert f"replaces {line.title}" in text
    assert parcel["tracking_numbers"][0] in text
    assert variant_title.split(" / ")[0] in text

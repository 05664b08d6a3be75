"""Journeys of an order's parcels, from the store's own events to the shopper's inbox.

Each asserts what the shopper receives (the parcel's carrier, tracking number and link, its
own items, the estimate) and what the support timeline shows, and that the message is keyed
by Shopify's fulfillment id: the wrong id across the tracking → notifications seam fails here.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Message, Sequence
from shopapp.orders.images import order_line_images_defer
from tests.journeys.conftest import Journey, html_of, text_of
from tracking.estimates import delivery_estimate_predict
from tracking.models import DeliveryStat, Shipment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.journey]

SHOPPER = "ada.journey@example.com"


def _order(journey: Journey, *, line_items: int = 2, **fields) -> int:
    (order_id,) = journey.client.orders_create(
        journey.domain,
        count=1,
        email=SHOPPER,
        customer_locale="en",
        country_code="US",
        financial_status="PAID",
        line_items=line_items,
        line_item_product_type="Apparel",
        **fields,
    )
    journey.pump()
    return order_id


def _lines(journey: Journey, order_id: int) -> list[dict]:
    return journey.client.order_state(journey.domain, order_id)["line_items"]


def _sent(journey: Journey, order, trigger: str) -> list[Message]:
    return list(Message.objects.filter(order=order, trigger=trigger, status=Message.Status.SENT))


def test_an_order_shipped_in_two_parcels_is_one_email_naming_each_parcel_and_its_items(journey):
    # given a paid order of two different items
    order_id = _order(journey, line_items=2)
    order = journey.order(order_id)
    # each item as the email lists it: "- 1 × Hoodie (S / Black)"
    lines = [
        f"{li.quantity} × {li.title}" + (f" ({li.variant_title})" if li.variant_title else "")
        for li in order.line_items.all()
    ]
    assert len(lines) == 2

    # when the merchant ships it in two parcels and their webhooks reach the app
    parcels = journey.client.order_fulfil(journey.domain, order_id, split=True)
    assert len(parcels) == 2
    journey.pump()
    journey.send_due()
    # (parcels of one order shipping together wait for each other: the shop's 10 minutes)
    assert journey.emails_to(SHOPPER) == []
    journey.send_due(after=timedelta(minutes=11))

    # then one "on its way" email, listing each parcel with its carrier, tracking number and
    # link and only its own item
    (email,) = journey.emails_to(SHOPPER)
    text = text_of(email)
    assert f"{order.name} has shipped in 2 parcels" in text
    for parcel in parcels:
        assert parcel["tracking_numbers"][0] in text, text
        assert parcel["tracking_urls"][0] in html_of(email)
        assert parcel["tracking_company"] in text
    first, second = text.split("Parcel 2 of 2")
    in_first = [line for line in lines if line in first]
    in_second = [line for line in lines if line in second]
    assert len(in_first) == 1
    assert len(in_second) == 1
    assert in_first != in_second
    # and the message is about Shopify's two fulfillments (the seam's key)
    (message,) = _sent(journey, order, "shipped")
    assert sorted(s["fulfillment_id"] for s in message.snapshot["shipments"]) == sorted(
        int(p["id"]) for p in parcels
    )
    # and support reads both parcels and the one email on the order's timeline
    kinds = [kind for kind, _ in journey.timeline(order)]
    assert kinds.count("shipment.shipped") == 2
    assert kinds.count("notification.sent") == 1


def test_a_single_parcel_is_announced_at_once_with_its_carrier_and_estimate(journey):
    order_id = _order(journey, line_items=1)
    order = journey.order(order_id)

    (parcel,) = journey.client.order_fulfil(journey.domain, order_id)
    journey.pump()
    journey.send_due()

    (email,) = journey.emails_to(SHOPPER)
    text = text_of(email)
    assert parcel["tracking_numbers"][0] in text
    assert parcel["tracking_company"] in text
    (message,) = _sent(journey, order, "shipped")
    assert message.subject_key == f"shipment:{parcel['id']}"


def test_delivery_then_the_review_request_a_week_later(journey):
    order_id = _order(journey, line_items=1)
    order = journey.order(order_id)
    (parcel,) = journey.client.order_fulfil(journey.domain, order_id)
    journey.pump()
    journey.send_due()

    # when the carrier scans it out for delivery, then delivered
    journey.client.fulfillment_advance(journey.domain, int(parcel["id"]), "DELIVERED")
    journey.pump()
    journey.send_due()

    # then the shopper got "shipped" then "delivered" (an out-for-delivery email for a parcel
    # already delivered is stale news and is skipped)
    subjects = [str(m["Subject"]) for m in journey.emails_to(SHOPPER)]
    assert subjects[0] == f"Your order {order.name} is on its way"
    assert subjects[-1] == f"Your order {order.name} has been delivered"
    assert not any("out for delivery" in s for s in subjects[1:-1])
    delivered = journey.emails_to(SHOPPER)[-1]
    assert parcel["tracking_numbers"][0] in text_of(delivered)

    # and a week later, the review request, once
    journey.send_due(after=timedelta(days=7, minutes=5))
    journey.send_due(after=timedelta(days=7, minutes=10))
    reviews = [m for m in journey.emails_to(SHOPPER) if "getting on" in str(m["Subject"])]
    assert len(reviews) == 1
    kinds = [kind for kind, _ in journey.timeline(order)]
    assert {"shipment.delivered", "order.all_delivered"} <= set(kinds)


def test_a_carrier_delay_tells_the_shopper_which_parcel(journey):
    order_id = _order(journey, line_items=1)
    order = journey.order(order_id)
    (parcel,) = journey.client.order_fulfil(journey.domain, order_id)
    journey.client.fulfillment_event(journey.domain, int(parcel["id"]), "IN_TRANSIT")
    journey.pump()
    journey.send_due()

    # when the carrier reports a delay
    journey.client.fulfillment_event(journey.domain, int(parcel["id"]), "DELAYED")
    journey.pump()
    journey.send_due()

    # then the shopper hears of it, with the parcel's tracking number
    delayed = [m for m in journey.emails_to(SHOPPER) if "running late" in str(m["Subject"])]
    assert len(delayed) == 1
    assert parcel["tracking_numbers"][0] in text_of(delayed[0])
    (message,) = _sent(journey, order, "delayed")
    assert message.subject_key == f"shipment:{parcel['id']}"
    assert any(kind == "shipment.delayed" for kind, _ in journey.timeline(order))


def test_a_cancelled_order_gets_the_cancellation_and_nothing_that_was_pending(journey):
    # given the merchant turned on "order confirmed", an hour after the order
    sequence = Sequence.objects.get(shop=journey.shop, key="order_confirmed")
    sequence.is_enabled = True
    sequence.save()
    sequence.steps.update(delay_minutes=60)
    order_id = _order(journey, line_items=2)
    order = journey.order(order_id)
    assert Message.objects.filter(order=order, trigger="order_confirmed", status="scheduled")

    # when the merchant cancels the order in Shopify
    journey.client.order_cancel(journey.domain, order_id, reason="CUSTOMER")
    journey.pump()
    journey.send_due(after=timedelta(minutes=61))

    # then the shopper gets the cancellation only, and support sees why the rest was stopped
    subjects = [str(m["Subject"]) for m in journey.emails_to(SHOPPER)]
    assert subjects == [f"Your order {order.name} has been cancelled"]
    confirmed = Message.objects.get(order=order, trigger="order_confirmed")
    assert (confirmed.status, confirmed.reason) == ("cancelled", "order cancelled")
    kinds = [kind for kind, _ in journey.timeline(order)]
    assert "order.cancelled" in kinds
    assert "notification.cancelled" in kinds


def test_the_email_shows_each_items_picture_and_a_predicted_estimate_with_its_basis(journey):
    # given a shop whose 240 Royal Mail parcels to the UK took 1 to 3 days (Royal Mail gives
    # Shopify no estimate, so the app predicts one from this history)
    DeliveryStat.objects.create(
        shop=journey.shop,
        carrier="Royal Mail",
        country_code="GB",
        deliveries=240,
        days_p10=1.0,
        days_p50=2.0,
        days_p90=3.0,
        computed_at=timezone.now(),
    )
    # and an order to the UK whose product picture is on Shopify's CDN (https)
    (order_id,) = journey.client.orders_create(
        journey.domain,
        count=1,
        email=SHOPPER,
        customer_locale="en",
        country_code="GB",
        financial_status="PAID",
        line_items=1,
    )
    journey.pump()
    order = journey.order(order_id)
    (line,) = order.line_items.all()
    cdn = "https://cdn.shopify.example/s/files/1/0001/products/hoodie.png?width=128&height=128"
    journey.client.product_update(journey.domain, line.product_id, image_url=cdn)
    order_line_images_defer(shop=journey.shop, order=order)
    journey.work()
    line.refresh_from_db()
    assert line.image_url == cdn

    # when it ships with Royal Mail
    (parcel,) = journey.client.order_fulfil(journey.domain, order_id, carrier="Royal Mail")
    journey.pump()
    journey.send_due()

    # then the email shows the item's picture, sized, inside the items table
    (email,) = journey.emails_to(SHOPPER)
    html, text = html_of(email), text_of(email).replace("\r\n", "\n")
    (img,) = re.findall(r"<img src=\"https://cdn\.shopify\.example/[^>]*>", html)
    assert img.startswith(
        '<img src="https://cdn.shopify.example/s/files/1/0001/products/hoodie.png'
        '?width=128&amp;height=128" width="64" height="64" alt=""'
    )
    # and the estimate as the page shows it: a range of days and how it was made
    shipment = Shipment.objects.get(shop=journey.shop, fulfillment_id=int(parcel["id"]))
    estimate = delivery_estimate_predict(shop=journey.shop, shipment=shipment)
    assert estimate is not None
    assert estimate.earliest < estimate.latest
    first, last = estimate.earliest, estimate.latest
    days = f"{first:%B} {first.day} – {last:%B} {last.day}"
    basis = "Based on 240 deliveries to United Kingdom by Royal Mail"
    assert days in html
    assert basis in html
    # and the plain-text part says the same, in order, without markup
    assert f"Estimated delivery: {days}\n{basis}\n" in text
    assert f"({basis})" in text
    assert "<" not in text

"""A review request answered, from the store's own events to the figure in Insights.

The devshop delivers the order, the app sends the review request a week later through the real
SMTP server, the shopper follows a star link from the email through the devshop's storefront
(its app proxy signs every request as Shopify does), confirms on the rating page, and the
merchant reads the answer on the order's timeline and in Insights' CSV.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape
from urllib.parse import urljoin

import pytest
import requests
import time_machine
from django.utils import timezone

from insights.jobs import insights_rollup_all_job
from notifications.models import Message, ReviewAnswer
from tests.journeys.conftest import HTTP_TIMEOUT_S, Journey, html_of, text_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.journey]

SHOPPER = "ada.review@example.com"
STAR_LINK = re.compile(r'href="([^"]+/review/[^"?/]+\?rating=(\d))"')
FORM = re.compile(r'<form class="pp-review__form" method="post" action="([^"]+)">')
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def _delivered_and_asked(journey: Journey):
    (order_id,) = journey.client.orders_create(
        journey.domain,
        count=1,
        email=SHOPPER,
        customer_locale="en",
        country_code="US",
        financial_status="PAID",
        line_items=1,
    )
    journey.pump()
    (parcel,) = journey.client.order_fulfil(journey.domain, order_id)
    journey.pump()
    journey.send_due()
    journey.client.fulfillment_advance(journey.domain, int(parcel["id"]), "DELIVERED")
    journey.pump()
    journey.send_due()
    journey.send_due(after=timedelta(days=7, minutes=5))
    order = journey.order(order_id)
    (review,) = [m for m in journey.emails_to(SHOPPER) if "getting on" in str(m["Subject"])]
    return order, review


def _csv(journey: Journey, key: str) -> list[list[str]]:
    response = journey.admin_get(f"/app/insights/{key}.csv", period="30d")
    return list(csv.reader(io.StringIO(response.text)))


def test_a_star_from_the_review_request_is_an_answer_support_and_insights_read(journey):
    # given a delivered order whose review request reached the shopper a week later
    order, email = _delivered_and_asked(journey)
    links = dict((rating, unescape(url)) for url, rating in STAR_LINK.findall(html_of(email)))
    assert sorted(links) == ["1", "2", "3", "4", "5"]
    # (the plain-text part carries the same links)
    assert f"4 stars: {links['4']}" in text_of(email)

    with requests.Session() as shopper:
        # when the shopper follows the fourth star (the storefront's app proxy signs it)
        page = shopper.get(links["4"], timeout=HTTP_TIMEOUT_S)
        assert page.status_code == 200
        assert f"How was your order {order.name}?" in unescape(page.text)
        assert re.search(r'value="4" required checked', page.text)
        # nothing is recorded by opening the link (a mail scanner does as much)
        assert not ReviewAnswer.objects.exists()

        # and sends it with a comment from the page (Post/Redirect/Get through the proxy)
        (action,) = FORM.findall(page.text)
        (form_token,) = FORM_TOKEN.findall(page.text)
        data = {"form_token": unescape(form_token), "rating": "4", "comment": "Fits well."}
        sent = shopper.post(urljoin(page.url, unescape(action)), data=data, timeout=HTTP_TIMEOUT_S)
        # and, not sure it went, sends it again
        again = shopper.post(urljoin(page.url, unescape(action)), data=data, timeout=HTTP_TIMEOUT_S)

    # then the shopper is thanked on the same page
    assert sent.status_code == 200
    assert [r.status_code for r in sent.history] == [303]
    assert sent.url.split("?")[0] == links["4"].split("?")[0]
    assert "Thank you! You rated your order 4 of 5 stars." in unescape(sent.text)
    assert again.status_code == 200
    # and one answer is kept for the review request
    message = Message.objects.get(order=order, step__template_key="review_request")
    answer = ReviewAnswer.objects.get()
    assert (answer.message_id, answer.rating, answer.comment) == (message.pk, 4, "Fits well.")
    # support reads it on the order's timeline, in plain words, once
    lines = [summary for kind, summary in journey.timeline(order) if kind == "review.answered"]
    assert lines == ["Rated 4 of 5"]

    # and Insights counts the request as answered, on the day it was sent
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=30), tick=True):
        insights_rollup_all_job(days=10)
        journey.work()
        rows = _csv(journey, "reviews")
    assert rows[1:5] == [
        ["Review requests sent", "1"],
        ["Review requests answered", "1"],
        ["Share answered (%)", "100.0"],
        ["Average rating (of 5)", "4.0"],
    ]
    assert ["Rated 4 stars", "1"] in rows

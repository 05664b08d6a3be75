"""Answers to review requests: the stars in the email (built-in and block-composed), the rating
page through Shopify's app proxy (every request signed as Shopify signs it), the answer stored
once per message and read on the order's timeline, and Insights' "answered" figures.

The review request itself is the real one: the default sequences, a "delivered" trigger, seven
days later the dispatcher and a burst RQ worker send it to the SMTP server the test starts.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from insights.services import shop_days_refresh
from notifications.blocks import blocks_compose, blocks_default
from notifications.defaults import notification_defaults_install
from notifications.models import Message, NotificationSettings, ReviewAnswer
from notifications.rendering import template_source_render
from notifications.reviews import (
    ReviewLink,
    review_form_token,
    review_link_read,
    review_link_token,
)
from shopapp.models import OrderEvent, Shop
from shopapp.privacy.services import customer_redact
from tests.notifications.engine_support import (
    dispatch_and_work,
    make_order,
    parcel,
    trigger_committed,
)
from tests.notifications.engine_support import smtp_sink as smtp_sink  # fixture
from tests.shopapp.test_embedded import get_page
from tests.shopapp.test_embedded import make_shop as make_admin_shop
from tests.tracking.test_page import _redis_db, signed_query  # noqa: F401 (fixture)
from tests.tracking.test_support import page as admin_page
from tests.tracking.test_support import timeline, visible_text

pytestmark = pytest.mark.django_db

STAR_LINK = re.compile(r'href="([^"]*/review/([^"?/]+)\?rating=(\d))"')
SHOPPER_IP = "203.0.113.9"


def _shop(domain: str = "alpha.myshopify.com", **fields) -> Shop:
    shop = make_admin_shop(
        domain, email="owner@alpha.example", timezone="America/New_York", **fields
    )
    notification_defaults_install(shop=shop)
    return shop


def _review_request(shop, smtp_sink, rq_worker, capture, *, number: int = 1001, **order):
    """A delivered order and, seven days later, its review request sent: (message, email)."""
    placed = make_order(shop, number, **order)
    trigger_committed(
        capture, shop=shop, order=placed, trigger="delivered", news=parcel(number, "delivered")
    )
    dispatch_and_work(rq_worker, capture)
    before = len(smtp_sink.messages)
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        dispatch_and_work(rq_worker, capture)
    message = Message.objects.get(order=placed, step__template_key="review_request")
    assert message.status == Message.Status.SENT, (message.status, message.reason)
    (email,) = smtp_sink.messages[before:]
    return message, email


def _html(email) -> str:
    return email.get_body(preferencelist=("html",)).get_content()


def _text(email) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _proxy(client, shop: Shop, token: str, *, query=(), data=None, ip: str = SHOPPER_IP):
    url = f"/proxy/review/{token}?{signed_query(shop, extra=list(query))}"
    headers = {"X-Forwarded-For": ip}
    if data is None:
        return client.get(url, headers=headers)
    return client.post(url, data=data, headers=headers)


def _send(client, shop, message, token: str | None = None, **fields):
    data = {"form_token": review_form_token(message), "rating": "4", "comment": ""}
    data.update(fields)
    token = token or review_link_token(
        shop_id=shop.pk, order_id=message.order_id, message_id=message.pk
    )
    return _proxy(client, shop, token, data=data)


def _body(response) -> str:
    html = response.content.decode()
    return unescape(html.split("</style>", 1)[1] if "</style>" in html else html)


def _nothing_stored() -> None:
    assert not ReviewAnswer.objects.exists()
    assert not OrderEvent.objects.filter(kind="review.answered").exists()


@pytest.fixture
def shop():
    return _shop()


# ---------------------------------------------------------------------------------------------
# The email


def test_the_review_request_carries_five_star_links_for_this_order_and_message(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks
):
    message, email = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    html, text = _html(email), _text(email).replace("\r\n", "\n")

    # five links, one per star, each named in words for a screen reader and in text
    links = STAR_LINK.findall(html)
    assert [rating for _, _, rating in links] == ["1", "2", "3", "4", "5"]
    assert len({token for _, token, _ in links}) == 1
    url = links[0][0]
    # on the shop's storefront, through the app proxy
    assert url.startswith(f"https://{shop.myshopify_domain}/apps/postpurchase/review/")
    for n, words in ((1, "1 star"), (4, "4 stars"), (5, "5 stars")):
        cell = unescape(html.split(f"?rating={n}", 1)[1].split("</a>", 1)[0])
        assert f">{words}</span>" in cell
        assert '<span aria-hidden="true">★</span>' in cell
    assert "How would you rate your order?" in html
    # laid out as a table, its colours switched by the layout's dark-mode classes
    row = html.split("?rating=1", 1)[0].rsplit("<table", 1)[1]
    assert row.startswith(' role="presentation"')
    assert html.count('class="em-accent" style="display:block;padding:8px 0;') == 5
    # the plain-text part has the same five links, one a line
    for n in range(1, 6):
        words = "1 star" if n == 1 else f"{n} stars"
        assert f"{words}: {url.rsplit('?', 1)[0]}?rating={n}\n" in text
    # and the link is signed for this shop, order and message
    assert review_link_read(links[0][1], shop=shop) == ReviewLink(
        order_id=message.order_id, message_id=message.pk
    )


@pytest.mark.parametrize(
    ("language", "words"), [("es", "4 estrellas"), ("fr", "4 étoiles"), ("de", "4 Sterne")]
)
def test_the_block_edited_review_request_keeps_the_stars(language, words):
    # given the merchant's own words for the review request, edited as blocks
    blocks = blocks_default("review_request", language)
    source = blocks_compose(key="review_request", locale=language, blocks=blocks)
    context = {
        "review_url": "https://alpha.myshopify.com/apps/postpurchase/review/TOKEN",
        "shop": {"name": "Alpha"},
        "brand": {"accent": "#2c6ecb", "accent_text": "#2c6ecb", "muted": "#555555"},
    }
    rendered = template_source_render(source=source, context=context)
    # then the composed email still has the five stars, in the email's language
    for n in range(1, 6):
        assert f"/review/TOKEN?rating={n}" in rendered.html
        assert f"/review/TOKEN?rating={n}" in rendered.text
    assert f">{words}</span>" in rendered.html
    assert f"{words}: https://alpha.myshopify.com/apps/postpurchase/review/TOKEN?rating=4" in (
        rendered.text
    )
    # and without a review link (another message) there is no empty row of stars
    bare = template_source_render(source=source, context={**context, "review_url": ""})
    assert "?rating=" not in bare.html
    assert "?rating=" not in bare.text


# ---------------------------------------------------------------------------------------------
# The rating page


def test_following_a_star_shows_it_chosen_and_records_nothing(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client
):
    message, email = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    (_, token, _), *_ = STAR_LINK.findall(_html(email))

    # when a mail scanner (or the shopper) opens the fourth star's link, twice
    for _ in range(2):
        response = _proxy(client, shop, token, query=[("rating", "4")])

    # then the page shows the order with the fourth star chosen and a Send button
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/liquid")
    assert response["Cache-Control"] == "private, no-store"
    page = _body(response)
    assert "How was your order #1001?" in page
    assert re.search(r'value="4" required checked', page)
    assert page.count(" checked") == 1
    assert "Send my rating" in page
    # and nothing was recorded: only the shopper's own press of Send is an answer
    _nothing_stored()


def test_sending_records_the_answer_once_and_support_reads_it(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client
):
    NotificationSettings.objects.update_or_create(
        shop=shop, defaults={"review_page_url": "https://reviews.alpha.example/write"}
    )
    message, _ = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    token = review_link_token(shop_id=shop.pk, order_id=message.order_id, message_id=message.pk)

    # when the shopper sends four stars and a comment (and the browser submits it twice)
    first = _send(client, shop, message, rating="4", comment="  Lovely shirt, runs small.  ")
    again = _send(client, shop, message, rating="4", comment="Lovely shirt, runs small.")

    # then each answer is a 303 back to the page (Post/Redirect/Get, relative to the proxy)
    assert (first.status_code, first["Location"]) == (303, f"./{token}")
    assert again.status_code == 303
    # and one answer is stored, with one line on the order's timeline
    answer = ReviewAnswer.objects.get()
    assert (answer.message_id, answer.order_id, answer.rating) == (message.pk, message.order_id, 4)
    assert answer.comment == "Lovely shirt, runs small."
    (line,) = OrderEvent.objects.filter(order=message.order, kind="review.answered")
    assert line.summary == "Rated 4 of 5: “Lovely shirt, runs small.”"
    assert line.source == "shopper"
    # the page after the redirect thanks the shopper and offers the merchant's review page
    page = _body(_proxy(client, shop, token))
    assert "Thank you! You rated your order 4 of 5 stars." in page
    assert 'href="https://reviews.alpha.example/write"' in page
    assert re.search(r'value="4" required checked', page)
    assert "Lovely shirt, runs small.</textarea>" in page

    # when the shopper changes their mind
    assert _send(client, shop, message, rating="2", comment="").status_code == 303
    # then it is still one answer, now two stars, and support reads both lines in words
    answer.refresh_from_db()
    assert (ReviewAnswer.objects.count(), answer.rating, answer.comment) == (1, 2, "")
    text = visible_text(timeline(admin_page(client, shop, message.order)))
    assert "Rated 4 of 5" in text
    assert "Lovely shirt, runs small." in text
    assert "Rated 2 of 5" in text


def test_no_review_page_link_until_the_merchant_sets_one(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client
):
    message, _ = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    _send(client, shop, message, rating="5")
    token = review_link_token(shop_id=shop.pk, order_id=message.order_id, message_id=message.pk)
    page = _body(_proxy(client, shop, token))
    assert "Thank you! You rated your order 5 of 5 stars." in page
    assert "Write a review" not in page


@pytest.mark.parametrize(
    ("language", "title", "send"),
    [
        ("es", "¿Qué tal tu pedido #1001?", "Enviar mi valoración"),
        ("fr", "Comment s'est passée votre commande #1001 ?", "Envoyer ma note"),
        ("de", "Wie war deine Bestellung #1001?", "Bewertung senden"),
    ],
)
def test_the_page_speaks_the_orders_language(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client, language, title, send
):
    message, email = _review_request(
        shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, locale=language
    )
    token = STAR_LINK.findall(_html(email))[0][1]
    response = _proxy(client, shop, token, query=[("rating", "5")])
    assert response["Content-Language"] == language
    page = _body(response)
    assert title in page
    assert send in page


# ---------------------------------------------------------------------------------------------
# Hostile and clumsy


def test_forged_edited_and_other_shops_links_are_refused_and_store_nothing(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client
):
    message, _ = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    token = review_link_token(shop_id=shop.pk, order_id=message.order_id, message_id=message.pk)
    other = _shop("bravo.myshopify.com")
    delivered = Message.objects.get(order=message.order, step__template_key="delivered")
    value, _, signature = token.rpartition(":")
    forged = {
        # the signature changed by one character
        "tampered": f"{value}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        # a token for another message of the order (not a review request)
        "not a review request": review_link_token(
            shop_id=shop.pk, order_id=message.order_id, message_id=delivered.pk
        ),
        # the order and message ids swapped for another order's
        "wrong order": review_link_token(
            shop_id=shop.pk, order_id=message.order_id + 1, message_id=message.pk
        ),
        "garbage": "not-a-token",
        "oversized": "A" * 5000,
    }
    form = {"form_token": review_form_token(message), "rating": "5"}
    for name, bad in forged.items():
        for response in (_proxy(client, shop, bad), _proxy(client, shop, bad, data=form)):
            assert response.status_code == 404, name
            assert "This link doesn't work" in _body(response), name
    # a genuine link opened under another shop's storefront (signed by Shopify for that shop)
    for response in (_proxy(client, other, token), _proxy(client, other, token, data=form)):
        assert response.status_code == 404
    # a request Shopify did not sign, or signed long ago: the proxy guard's generic 403
    unsigned = client.post(f"/proxy/review/{token}?shop={shop.myshopify_domain}", data=form)
    stale = client.post(
        f"/proxy/review/{token}?" + signed_query(shop, now=int(timezone.now().timestamp()) - 3600),
        data=form,
    )
    assert (unsigned.status_code, stale.status_code) == (403, 403)
    _nothing_stored()


def test_a_form_without_a_valid_token_or_rating_or_with_a_long_comment_stores_nothing(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client
):
    message, _ = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    second, _ = _review_request(
        shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, number=1002
    )
    cases = {
        "no form token": {"form_token": ""},
        "another message's form token": {"form_token": review_form_token(second)},
        "no rating": {"rating": ""},
        "six stars": {"rating": "6"},
        "zero stars": {"rating": "0"},
        "not a number": {"rating": "４"},
        "a comment over 500 characters": {"comment": "x" * 501},
    }
    for name, fields in cases.items():
        response = _send(client, shop, message, **fields)
        assert response.status_code == 400, name
        assert 'role="alert"' in _body(response), name
    # the long comment is shown back (to shorten), within bounds
    long = _body(_send(client, shop, message, comment="y" * 5000))
    assert "Please keep your comment under 500 characters." in long
    assert "y" * 600 in long
    assert "y" * 601 not in long
    _nothing_stored()
    # exactly 500 characters is fine
    assert _send(client, shop, message, comment="z" * 500).status_code == 303
    assert ReviewAnswer.objects.get().comment == "z" * 500


def test_sends_are_rate_limited_like_the_problem_report(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client, settings
):
    settings.TRACKING_LOOKUP_RATE_PER_ORDER = 2
    message, _ = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    assert _send(client, shop, message, rating="3").status_code == 303
    assert _send(client, shop, message, rating="4").status_code == 303
    limited = _send(client, shop, message, rating="1", comment="spam")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert ReviewAnswer.objects.get().rating == 4


def test_a_redacted_shoppers_comment_is_erased_and_their_stars_stay(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client
):
    message, _ = _review_request(shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    _send(client, shop, message, rating="1", comment="Call me on 555-0199, Ada Lovelace")
    # when Shopify asks to erase the shopper (customers/redact)
    customer_redact(shop=shop, customer_id=None, email="shopper@example.com")
    answer = ReviewAnswer.objects.get()
    assert (answer.rating, answer.comment) == (1, "")
    line = OrderEvent.objects.get(kind="review.answered")
    assert line.summary == "Rated 1 of 5"
    assert "555-0199" not in str(line.detail)


# ---------------------------------------------------------------------------------------------
# Insights


def _csv(client, shop, key: str, **period) -> list[list[str]]:
    response = get_page(client, shop, f"/app/insights/{key}.csv", **period)
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_insights_counts_answered_requests_their_share_and_ratings(
    shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, client
):
    # given three review requests: one answered 5 (after changing from 2), one answered 4,
    # one never answered; and another shop's answered request
    answered = []
    for number in (1001, 1002, 1003):
        message, _ = _review_request(
            shop, smtp_sink, rq_worker, django_capture_on_commit_callbacks, number=number
        )
        answered.append(message)
    # (answered five days after they were sent)
    answer_time = timezone.now() + timedelta(days=12)
    with time_machine.travel(answer_time):
        _send(client, shop, answered[0], rating="2")
        _send(client, shop, answered[0], rating="5")
        _send(client, shop, answered[1], rating="4", comment="Good")
        other = _shop("bravo.myshopify.com")
    theirs, _ = _review_request(other, smtp_sink, rq_worker, django_capture_on_commit_callbacks)
    _send(client, other, theirs, rating="1")
    zone = ZoneInfo(shop.timezone)
    # (the days the requests were sent: one, or two if they straddled a midnight)
    request_days = sorted({m.due_at.astimezone(zone).date().isoformat() for m in answered})
    answer_day = answer_time.astimezone(zone).date().isoformat()
    assert answer_day > request_days[-1]

    # when the rollup counts the days (as the hourly recount of the last 60 days does)
    with time_machine.travel(answer_time + timedelta(days=1)):
        shop_days_refresh(shop=shop, days=14)
        rows = _csv(client, shop, "reviews", period="30d")
        on_request_day = _csv(
            client, shop, "reviews", period="custom", start=request_days[0], end=request_days[-1]
        )
        on_answer_day = _csv(
            client, shop, "reviews", period="custom", start=answer_day, end=answer_day
        )

    # then the CSV has the requests, the answered ones, the share, the average, the stars
    expected = [
        ["Figure", "Value"],
        ["Review requests sent", "3"],
        ["Review requests answered", "2"],
        ["Share answered (%)", "66.7"],
        ["Average rating (of 5)", "4.5"],
        ["Rated 5 stars", "1"],
        ["Rated 4 stars", "1"],
        ["Rated 3 stars", "0"],
        ["Rated 2 stars", "0"],
        ["Rated 1 star", "0"],
    ]
    assert rows == expected
    # and the answers count on the day their requests were sent, not the day they came
    assert on_request_day == expected
    assert on_answer_day[1:3] == [["Review requests sent", "0"], ["Review requests answered", "0"]]

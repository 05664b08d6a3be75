"""Answers to review requests: a one-click star rating in the email, confirmed on a small page.

    review_request email ─ five links https://<shop>/<prefix>/<subpath>/review/<token>?rating=N
    shopper ─ GET /apps/<subpath>/review/<token>?rating=4 ─▶ Shopify ─ signed ─▶ /proxy/review/…
        the rating page: the fourth star chosen, an optional comment, a "Send" button
      POST /proxy/review/<token>  rating, comment, form token ─▶ review_answer_record
        ─▶ ReviewAnswer (one per message) + a "Rated 4 of 5: …" line on the order's timeline
        ─▶ 303 to the same page: thanks, and the merchant's review page if they set one

Why a GET records nothing: mail security scanners (Microsoft Defender's Safe Links, Mimecast,
Proofpoint, Barracuda) open every link of an incoming email, some in a full browser that runs
scripts, so a GET (or a page that submits itself) would record five answers per email before
the shopper reads it. The link's star is only pre-selected; the shopper's own press of "Send"
(a POST with the page's form token) is the answer. One more tap, and every figure in Insights
is a person's choice.

The link token (``django.core.signing``, its own salt) names the shop, the order and the
message: nothing is stored to make it, it cannot be edited to answer another order's request,
and it is refused under another shop's storefront. Like the tracking link it lives half a year.
A second answer to the same message changes the rating and the comment (the shopper changed
their mind); an identical resubmit changes nothing, and no answer is ever counted twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from notifications.models import RATING_MAX, RATING_MIN, Message, ReviewAnswer
from shopapp.models import Order, OrderEvent, Shop
from shopapp.orders.services import order_event_record
from shopapp.storefront import storefront_proxy_url

logger = logging.getLogger(__name__)

# The built-in template whose messages carry the stars (and whose answers Insights counts).
REVIEW_TEMPLATE_KEY = "review_request"
LINK_SALT = "notifications.review.v1"
FORM_SALT = "notifications.review-form.v1"
# A review request is read days after it arrives and the product is used for weeks: the same
# half year as the tracking link (REVIEW_LINK_MAX_AGE_DAYS overrides).
DEFAULT_LINK_MAX_AGE_DAYS = 180
# The rating page's form: a tab left open over a day asks to reload rather than posting with
# a token harvested long ago (the tracking page's problem form does the same).
DEFAULT_FORM_MAX_AGE_SECONDS = 24 * 3600
# A short comment, not a review (the merchant's review page is for that): a few sentences.
COMMENT_MAX_LENGTH = 500
# Longer tokens than this are no token of ours (three small ints, signed and dated).
TOKEN_MAX_LENGTH = 256
# The comment as the timeline's one-line summary shows it (the line keeps it whole).
SUMMARY_COMMENT_CHARS = 160


class ReviewRefused(ValueError):
    """Bad input for an answer: nothing was stored. ``message`` is for the shopper."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ReviewLink:
    order_id: int
    message_id: int


def _link_max_age() -> timedelta:
    return timedelta(
        days=int(getattr(settings, "REVIEW_LINK_MAX_AGE_DAYS", DEFAULT_LINK_MAX_AGE_DAYS))
    )


def review_link_token(*, shop_id: int, order_id: int, message_id: int) -> str:
    """URL-safe (base64url and ':'), no '/': one path segment."""
    return signing.dumps([shop_id, order_id, message_id], salt=LINK_SALT, compress=False)


def review_link_read(token: str, *, shop: Shop) -> ReviewLink | None:
    """The order and message a link names, if it is intact, fresh and for ``shop``; else None
    (tampered, expired, malformed and other-shop links all look the same to the shopper)."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    try:
        value = signing.loads(token, salt=LINK_SALT, max_age=_link_max_age())
    except signing.BadSignature:
        logger.info("notifications.review.bad_link", extra={"shop": shop.myshopify_domain})
        return None
    if not (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(part, int) and not isinstance(part, bool) for part in value)
    ):
        logger.warning("notifications.review.malformed_link", extra={"shop": shop.myshopify_domain})
        return None
    shop_id, order_id, message_id = value
    if shop_id != shop.pk:
        logger.warning(
            "notifications.review.other_shop",
            extra={"shop": shop.myshopify_domain, "token_shop_id": shop_id},
        )
        return None
    return ReviewLink(order_id=order_id, message_id=message_id)


def review_url(*, shop: Shop, order_id: int, message_id: int) -> str:
    """The rating page of one review request, on the shop's storefront (append
    ``?rating=1``…``?rating=5`` for a star chosen in advance)."""
    token = review_link_token(shop_id=shop.pk, order_id=order_id, message_id=message_id)
    return storefront_proxy_url(shop, f"review/{token}")


def review_form_token(message: Message) -> str:
    return signing.dumps([message.shop_id, message.pk], salt=FORM_SALT, compress=False)


def review_form_token_valid(token: str, *, message: Message) -> bool:
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return False
    max_age = int(getattr(settings, "REVIEW_FORM_MAX_AGE_SECONDS", DEFAULT_FORM_MAX_AGE_SECONDS))
    try:
        value = signing.loads(token, salt=FORM_SALT, max_age=max_age)
    except signing.BadSignature:
        return False
    return value == [message.shop_id, message.pk]


def review_request_get(*, shop: Shop, link: ReviewLink) -> Message | None:
    """The sent review request a link names, with its order: one of ``shop``'s, for an order
    still shown on the storefront (not deleted, not redacted); else None."""
    return (
        Message.objects.select_related("order")
        .filter(
            shop=shop,
            pk=link.message_id,
            order_id=link.order_id,
            order__shop=shop,
            order__deleted_at__isnull=True,
            order__redacted_at__isnull=True,
            status=Message.Status.SENT,
            step__template_key=REVIEW_TEMPLATE_KEY,
        )
        .first()
    )


def review_answer_get(*, shop: Shop, message: Message) -> ReviewAnswer | None:
    return ReviewAnswer.objects.filter(shop=shop, message=message).first()


def review_rating_parse(raw: object) -> int | None:
    """A rating from a link or a form: "1"…"5", else None."""
    text = str(raw or "").strip()
    if len(text) != 1 or not text.isascii() or not text.isdigit():
        return None
    rating = int(text)
    return rating if RATING_MIN <= rating <= RATING_MAX else None


def review_summary(rating: int, comment: str) -> str:
    line = f"Rated {rating} of {RATING_MAX}"
    if not comment:
        return line
    short = " ".join(comment.split())
    if len(short) > SUMMARY_COMMENT_CHARS:
        short = short[: SUMMARY_COMMENT_CHARS - 1] + "…"
    return f"{line}: “{short}”"


@dataclass(frozen=True)
class ReviewAnswered:
    answer: ReviewAnswer
    # True for the message's first answer; False when an earlier one was changed or repeated.
    is_new: bool
    # False when the same rating and comment were sent again (a double submit, a reload).
    is_changed: bool


def review_answer_record(
    *, shop: Shop, message: Message, rating: int, comment: str = ""
) -> ReviewAnswered:
    """Record the shopper's answer to ``message`` (one of ``shop``'s review requests).

    Raises ReviewRefused (nothing stored) for a rating outside 1–5, a comment over
    COMMENT_MAX_LENGTH, or a message that is not a sent review request of ``shop``. The
    message's row lock serialises two submits, so one message never has two answers, and
    each distinct answer is one line on the order's timeline.
    """
    if not isinstance(rating, int) or not RATING_MIN <= rating <= RATING_MAX:
        raise ReviewRefused("Choose from one to five stars.")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ReviewRefused(f"Keep the comment under {COMMENT_MAX_LENGTH} characters.")
    with transaction.atomic():
        locked = (
            Message.objects.select_for_update()
            .filter(
                shop=shop,
                pk=message.pk,
                status=Message.Status.SENT,
                step__template_key=REVIEW_TEMPLATE_KEY,
            )
            .first()
        )
        if locked is None:
            raise ReviewRefused("This review request is not known.")
        order = Order.objects.get(shop=shop, pk=locked.order_id)
        now = timezone.now()
        answer = ReviewAnswer.objects.filter(shop=shop, message=locked).first()
        previous = answer.rating if answer is not None else None
        if answer is None:
            answer = ReviewAnswer.objects.create(
                shop=shop,
                order=order,
                message=locked,
                rating=rating,
                comment=comment,
                answered_at=now,
            )
            is_new, is_changed = True, True
        elif (answer.rating, answer.comment) == (rating, comment):
            is_new, is_changed = False, False
        else:
            answer.rating, answer.comment = rating, comment
            answer.save(update_fields=["rating", "comment", "updated_at"])
            is_new, is_changed = False, True
        if is_changed:
            order_event_record(
                shop=shop,
                order=order,
                kind="review.answered",
                occurred_at=now,
                source=OrderEvent.Source.SHOPPER,
                summary=review_summary(rating, comment),
                detail={
                    "message_id": locked.pk,
                    "rating": rating,
                    "previous_rating": previous,
                    "comment": comment,
                },
                # Each distinct answer is a line (4, then 3, then 4 again: three lines).
                dedupe_key=f"review:{locked.pk}:{now.isoformat()}",
            )
    logger.info(
        "notifications.review.answered",
        extra={
            "shop": shop.myshopify_domain,
            "message_id": message.pk,
            "rating": rating,
            "is_new": is_new,
            "is_changed": is_changed,
        },
    )
    return ReviewAnswered(answer=answer, is_new=is_new, is_changed=is_changed)

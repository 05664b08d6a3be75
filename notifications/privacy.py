"""customers/redact for notifications: the shopper's address leaves every message and fact.

Listed in shopapp.subscribers.CUSTOMER_REDACTED. Messages stay (the merchant's record that
something was sent, and the guard against sending it again), with no way to tell to whom.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from notifications.models import Message, ReturnFacts, ReviewAnswer, ShipmentFacts, Suppression
from notifications.reviews import review_summary
from shopapp.models import OrderEvent
from shopapp.privacy.scrub import REDACTED, scrub_json, scrub_text
from shopapp.subscribers import CustomerRedacted, ShopRedacted

# Fields that can hold a shopper's personal data, and what erases them here. The privacy
# contract test (tests/test_privacy_contract.py) checks every text field of every model is
# in one of these two tables.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "notifications.Message": ("recipient", "snapshot", "reason", "last_error"),
    "notifications.ShipmentFacts": ("snapshot",),
    "notifications.ReturnFacts": ("snapshot",),
    # The address itself, kept so nothing is sent to it.
    "notifications.Suppression": ("address",),
    # The shopper's own words about their order.
    "notifications.ReviewAnswer": ("comment",),
}
NOT_PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "notifications.Sequence": ("key", "name", "trigger", "extra_triggers"),
    "notifications.SequenceStep": (
        "delay_from",
        "channel",
        "template_key",
        "conditions",
        "audience",
    ),
    # The merchant's own copy (Liquid); shopper data only reaches it when rendered.
    "notifications.MessageTemplate": (
        "key",
        "channel",
        "locale",
        "subject",
        "html_body",
        "text_body",
        "sms_body",
        "blocks",
    ),
    "notifications.Message": (
        "subject_key",
        "trigger",
        "channel",
        "locale",
        "status",
        "provider_message_id",
    ),
    "notifications.ShipmentFacts": ("stage",),
    "notifications.ReturnFacts": ("status",),
    "notifications.Suppression": ("channel", "reason"),
    # The merchant's settings (erased with the shop by shop/redact).
    "notifications.NotificationSettings": (
        "sender_name",
        "reply_to",
        "email_quiet_start",
        "email_quiet_end",
        "sms_quiet_start",
        "sms_quiet_end",
        "twilio_account_sid",
        "twilio_auth_token_encrypted",
        "twilio_from_number",
        "review_page_url",
    ),
}


def _problem_words_blank(snapshot: Any) -> Any:
    """A reported problem's description is the shopper's free text (it may name anyone or any
    address): blanked whole, as tracking blanks the case's own copy."""
    news = snapshot.get("news") if isinstance(snapshot, dict) else None
    if isinstance(news, dict) and news.get("type") == "problem" and news.get("description"):
        return {**snapshot, "news": {**news, "description": ""}}
    return snapshot


def customer_redact(fact: CustomerRedacted) -> int:
    """Erase the shopper from messages (recipient, snapshot, errors), from the facts about
    their orders, and from the suppression list. Returns how many messages were touched."""
    shop, needles = fact.shop, fact.needles
    # Recipients and suppressions hold lower-cased emails and E.164 numbers (recipients.py).
    addresses = [*needles.emails, *(f"+{digits}" for digits in needles.phones)]
    messages = Message.objects.filter(shop=shop).filter(
        Q(order_id__in=fact.order_ids) | Q(recipient__in=addresses)
    )
    count = 0
    for message in messages:
        message.recipient = REDACTED if message.recipient else ""
        message.snapshot = _problem_words_blank(scrub_json(message.snapshot, needles))
        message.reason = scrub_text(message.reason, needles)
        message.last_error = scrub_text(message.last_error, needles)
        message.save(update_fields=["recipient", "snapshot", "reason", "last_error"])
        count += 1
    for model in (ShipmentFacts, ReturnFacts):
        for facts in model.objects.filter(shop=shop, order_id__in=fact.order_ids):
            facts.snapshot = scrub_json(facts.snapshot, needles)
            facts.save(update_fields=["snapshot"])
    # A rating's comment is free text (it may name anyone): blanked whole, here and on the
    # timeline; the stars stay (a count, no one's words).
    ReviewAnswer.objects.filter(shop=shop, order_id__in=fact.order_ids).update(comment="")
    for line in OrderEvent.objects.filter(
        shop=shop, order_id__in=fact.order_ids, kind="review.answered"
    ):
        detail = dict(line.detail or {})
        if detail.get("comment"):
            detail["comment"] = ""
            line.detail = detail
            line.summary = review_summary(int(detail.get("rating") or 0), "")
            line.save(update_fields=["detail", "summary"])
    # An unsubscribe or a bounce for an address the app no longer knows protects nobody.
    Suppression.objects.filter(shop=shop, address__in=addresses).delete()
    return count


def shop_redact(fact: ShopRedacted) -> int:
    """Before the shop's rows cascade: its messages go first (a message protects the sequence
    step it was sent from, so the merchant cannot delete a step with a history)."""
    deleted, _ = Message.objects.filter(shop=fact.shop).delete()
    return deleted

"""What support staff write on an order: notes on its timeline.

A note is a timeline line (``staff.note``, source staff) with its author, the Shopify staff
user id of the session token (``sub``), so it reads in place with everything else and is
erased with the rest of the shopper's data (OrderEvent details are scrubbed on redaction).
"""

from __future__ import annotations

from django.utils import timezone

from shopapp.models import Order, OrderEvent, Shop
from shopapp.orders.services import order_event_record

NOTE_MAX_LENGTH = 2000
# The timeline's summary column holds 255 characters; the whole note is in ``detail``.
_SUMMARY_LENGTH = 200


class NoteRefused(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def order_note_add(
    *, shop: Shop, order: Order, user_id: str, text: str, submission_id: str
) -> OrderEvent | None:
    """Add a staff note to ``order``'s timeline. ``submission_id`` is the form's one-time id:
    the same form sent twice (a double click, a retried request) adds one note, and the second
    call returns None. Raises NoteRefused for an empty or too long note (nothing stored)."""
    text = text.strip()
    if not text:
        raise NoteRefused("Write the note first.")
    if len(text) > NOTE_MAX_LENGTH:
        raise NoteRefused(f"Keep the note under {NOTE_MAX_LENGTH} characters.")
    submission_id = submission_id.strip()[:64]
    if not submission_id:
        raise NoteRefused("The form is incomplete; reload the page and try again.")
    return order_event_record(
        shop=shop,
        order=order,
        kind="staff.note",
        occurred_at=timezone.now(),
        source=OrderEvent.Source.STAFF,
        summary=text[:_SUMMARY_LENGTH],
        detail={"user_id": user_id[:64], "text": text},
        dedupe_key=f"note:{order.pk}:{submission_id}",
    )

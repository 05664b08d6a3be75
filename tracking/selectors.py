"""Read queries for the storefront tracking page. Every function takes ``shop`` first and
scopes every query by it (DESIGN: a request signed for shop A never reads shop B's data).

The page's queries are a fixed set whatever an order holds (prefetches, no per-row queries):
the order, its line items, its shipments, their line items, their visible events, its open
delays. ``bench/tracking.py`` and the tests count them.
"""

from __future__ import annotations

import hmac

from django.db.models import Prefetch, Q, QuerySet

from shopapp.models import Order, Shop
from tracking.forms import normalise_email, normalise_phone, normalise_tracking_number
from tracking.models import Delay, Shipment, TrackingEvent, TrackingSettings

# A logged-in customer's list: the orders a shopper could still be waiting for.
CUSTOMER_RECENT_ORDERS = 10
# More than a few orders answering one typed number means a number shared across name
# formats ("1001" and "#1001" in a migrated shop); we look at no more than this many.
MAX_LOOKUP_CANDIDATES = 5
# Compared when no order matched, so a wrong number costs what a wrong email costs.
_DUMMY_CONTACT = b"email:nobody@invalid.example"


def _visible_orders(shop: Shop) -> QuerySet[Order]:
    # Deleted orders are kept for the admin's timeline; redacted ones have lost the data a
    # shopper would need to recognise them. Neither is shown on the storefront.
    return Order.objects.filter(shop=shop, deleted_at__isnull=True, redacted_at__isnull=True)


def _visible_events() -> QuerySet[TrackingEvent]:
    # fulfillment_events/delete: the merchant withdrew the event; it stays for the admin only.
    return TrackingEvent.objects.filter(deleted_at__isnull=True).order_by("-happened_at", "-id")


def _contact_keys(order: Order) -> list[bytes]:
    keys = []
    if order.email.strip():
        keys.append(("email:" + normalise_email(order.email)).encode())
    phone = normalise_phone(order.phone)
    if len(phone) >= 7:
        keys.append(("phone:" + phone).encode())
    return keys


def order_lookup(*, shop: Shop, order_number: str, contact: str) -> int | None:
    """The id of the shop's order named ``order_number`` (normalised, no '#') whose email or
    phone is ``contact`` ("email:<normalised>" or "phone:<last digits>"), else None.

    One query whatever the input, and the contact is compared in constant time against every
    candidate, or against a dummy when there is none: a wrong number and a wrong email take
    the same path and give the same answer.
    """
    match = Q(name__iexact=order_number) | Q(name__iexact="#" + order_number)
    if order_number.isdigit() and len(order_number) <= 18:
        match |= Q(order_number=int(order_number))
    candidates = list(
        _visible_orders(shop)
        .filter(match)
        .only("id", "email", "phone")
        .order_by("-id")[:MAX_LOOKUP_CANDIDATES]
    )
    wanted = contact.encode()
    found: int | None = None
    compared = False
    for candidate in candidates:
        for key in _contact_keys(candidate):
            compared = True
            # Both sides are normalised first; compare_digest takes as long for a near miss
            # as for a wild one.
            if hmac.compare_digest(key, wanted) and found is None:
                found = candidate.pk
    if not compared:
        hmac.compare_digest(_DUMMY_CONTACT, wanted)
    return found


def order_for_page(*, shop: Shop, order_id: int) -> Order | None:
    """The order with everything its tracking page shows, in a constant number of queries."""
    return (
        _visible_orders(shop)
        .filter(pk=order_id)
        .prefetch_related(
            "line_items",
            Prefetch(
                "shipments",
                queryset=Shipment.objects.filter(shop=shop)
                .order_by("shopify_created_at", "id")
                .prefetch_related("line_items", Prefetch("events", queryset=_visible_events())),
            ),
            Prefetch(
                "delays",
                queryset=Delay.objects.filter(shop=shop, resolved_at__isnull=True).order_by(
                    "detected_at", "id"
                ),
            ),
        )
        .first()
    )


def customer_order_list(*, shop: Shop, customer_id: int) -> list[Order]:
    """A logged-in customer's recent orders in this shop, newest first, with their shipments.

    Only ``Order.customer_id`` ties an order to the customer: Shopify signs
    ``logged_in_customer_id``, and a valid signature is all it proves (shopify.dev,
    "Authenticate app proxies": check the customer owns the data).
    """
    return list(
        _visible_orders(shop)
        .filter(customer_id=customer_id)
        .order_by("-shopify_created_at", "-id")
        .prefetch_related(
            Prefetch("shipments", queryset=Shipment.objects.filter(shop=shop).order_by("id"))
        )[:CUSTOMER_RECENT_ORDERS]
    )


def shipment_by_tracking_number(*, shop: Shop, tracking_number: str) -> Shipment | None:
    """The shop's shipment carrying ``tracking_number`` (normalised), with its visible events.

    ``tracking_numbers`` is a JSON list, so the database narrows by text and the exact match
    is made here on normalised numbers (a substring of a longer number must not match).
    """
    candidates = (
        Shipment.objects.filter(
            shop=shop,
            order__deleted_at__isnull=True,
            order__redacted_at__isnull=True,
            tracking_numbers__icontains=tracking_number,
        )
        .prefetch_related(Prefetch("events", queryset=_visible_events()))
        .order_by("-id")[:MAX_LOOKUP_CANDIDATES]
    )
    for shipment in candidates:
        numbers = {normalise_tracking_number(str(n)) for n in shipment.tracking_numbers or []}
        if tracking_number in numbers:
            return shipment
    return None


def tracking_settings_for_shop(*, shop: Shop) -> TrackingSettings:
    """The shop's page settings, or the defaults (unsaved) when the merchant never set any."""
    found = TrackingSettings.objects.filter(shop=shop).first()
    return found if found is not None else TrackingSettings(shop=shop)

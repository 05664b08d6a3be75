"""customers/redact for tracking: the scans that name the shopper's town, postcode or name.

Listed in shopapp.subscribers.CUSTOMER_REDACTED. Shipments stay (the merchant's record of what
was sent), with the carrier's event texts and locations blanked.
"""

from __future__ import annotations

from shopapp.models import OrderEvent
from shopapp.privacy.scrub import scrub_json
from shopapp.subscribers import CustomerRedacted
from tracking.models import Delay, ProblemCase, TrackingEvent

# Fields that can hold a shopper's personal data, and what erases them here (see
# tests/test_privacy_contract.py: every text field of every model is in one of the tables).
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    # A carrier scan's place and words ("Left with J. Smith at 12 Elm St").
    "tracking.TrackingEvent": ("message", "city", "province", "zip"),
    "tracking.Delay": ("detail",),
    # The shopper's account of a problem, and staff's note on how it was settled.
    "tracking.ProblemCase": ("description", "resolution_note"),
}
NOT_PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    # Shopify's ids and statuses, the carrier and the parcel's numbers: they name a parcel,
    # not a person (the carrier holds the address; the number is what support needs).
    "tracking.Shipment": (
        "admin_graphql_api_id",
        "name",
        "status",
        "shipment_status",
        "stage",
        "tracking_company",
        "tracking_numbers",
        "tracking_urls",
        "destination_country_code",
        # A region (province, state) holds millions of people.
        "destination_province_code",
        "destination_province",
        "service",
        "display_status",
    ),
    # Transit times of a shop's parcels per carrier and region: no parcel, no person.
    "tracking.DeliveryStat": (
        "carrier",
        "service",
        "country_code",
        "province_code",
        "province_name",
    ),
    "tracking.TrackingEvent": ("status", "stage", "country"),
    "tracking.Delay": ("kind", "dedupe_key"),
    # What went wrong and who in the merchant's staff (Shopify user ids) handled it.
    "tracking.ProblemCase": (
        "kind",
        "status",
        "reported_by",
        "opened_by_user_id",
        "resolved_by_user_id",
    ),
    # The merchant's page settings (erased with the shop by shop/redact).
    "tracking.TrackingSettings": (
        "logo_url",
        "accent_color",
        "custom_message",
        "origin_country_code",
    ),
}


def customer_redact(fact: CustomerRedacted) -> int:
    """Blank the scans' places and texts on the customer's orders, the problems they
    described (on the case and its timeline lines); scrub delay details."""
    count = TrackingEvent.objects.filter(
        shop=fact.shop, shipment__order_id__in=fact.order_ids
    ).update(city="", province="", zip="", message="")
    for delay in Delay.objects.filter(shop=fact.shop, order_id__in=fact.order_ids):
        scrubbed = scrub_json(delay.detail, fact.needles)
        if scrubbed != delay.detail:
            delay.detail = scrubbed
            delay.save(update_fields=["detail"])
    for case in ProblemCase.objects.filter(shop=fact.shop, order_id__in=fact.order_ids):
        # A shopper's own words about their parcel: erased whole, like the carrier's texts.
        if case.description or case.resolution_note:
            case.description = ""
            case.resolution_note = ""
            case.save(update_fields=["description", "resolution_note"])
    # ... and their copies on the order's timeline (tracking.problems writes them there).
    for line in OrderEvent.objects.filter(
        shop=fact.shop,
        order_id__in=fact.order_ids,
        kind__in=("problem.reported", "problem.resolved"),
    ):
        detail = dict(line.detail or {})
        if detail.get("description") or detail.get("note"):
            detail.update({k: "" for k in ("description", "note") if k in detail})
            line.detail = detail
            line.save(update_fields=["detail"])
    return count

"""customers/redact and shop/redact for returns: the shopper's words, photos and label go.

Listed in shopapp.subscribers (CUSTOMER_REDACTED, SHOP_REDACTED). Returns stay, anonymised,
for the merchant's books; the files on disk (photos, labels) are deleted, since a database
cascade never reaches them.
"""

from __future__ import annotations

import logging

from django.db.models import Q

from returns.models import ReturnBlocklistEntry, ReturnPhoto, ReturnRequest
from shopapp.privacy.scrub import scrub_text
from shopapp.subscribers import CustomerRedacted, ShopRedacted

logger = logging.getLogger(__name__)

# Fields that can hold a shopper's personal data, and what erases them here (see
# tests/test_privacy_contract.py: every text field of every model is in one of the tables).
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "returns.ReturnRequest": (
        "customer_email",
        # The merchant's words to or about the shopper, and Shopify's refusals quoting them.
        "approval_instructions",
        "decline_note",
        "sync_error",
        # The label shows the shopper's address.
        "label_file",
        "label_url",
    ),
    "returns.ReturnLineItem": ("customer_note",),
    "returns.ReturnPhoto": ("image", "thumbnail"),
    "returns.ReturnBlocklistEntry": ("email", "note"),
}
NOT_PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    # The merchant's policy (erased with the shop).
    "returns.ReturnPolicy": (
        "excluded_product_tags",
        "excluded_product_types",
        "reasons",
        "reasons_by_product_type",
        "reasons_requiring_note",
        "reasons_requiring_photo",
        "auto_approve_excluded_reasons",
    ),
    # Shopify's ids and statuses, the return's name, the parcel going back.
    "returns.ReturnRequest": (
        "name",
        "status",
        "sync_state",
        "resolution",
        "currency",
        "reverse_fulfillment_order_gid",
        "reverse_delivery_gid",
        "return_tracking_number",
        "return_tracking_url",
        "decline_reason",
    ),
    "returns.ReturnLineItem": (
        "fulfillment_line_item_gid",
        "shopify_return_line_item_gid",
        "reverse_fulfillment_order_line_item_gid",
        "reason",
        "resolution",
        "exchange_variant_title",
        "shopify_exchange_line_item_gid",
    ),
    "returns.ReturnPhoto": ("content_type",),
    # The catalogue's facts.
    "returns.ProductInfo": ("tags", "product_type", "variants"),
}


def _files_delete(requests: list[ReturnRequest]) -> None:
    for photo in ReturnPhoto.objects.filter(return_line_item__return_request__in=requests):
        photo.image.delete(save=False)
        if photo.thumbnail:
            photo.thumbnail.delete(save=False)
        photo.delete()
    for request in requests:
        if request.label_file:
            request.label_file.delete(save=False)


def customer_redact(fact: CustomerRedacted) -> int:
    """Erase the shopper's data in returns (email, notes, photos, label, blocklist entry);
    the returns stay, anonymised. Returns how many returns were touched."""
    shop, needles = fact.shop, fact.needles
    match = Q(order_id__in=fact.order_ids)
    if fact.customer_id is not None:
        match |= Q(customer_id=fact.customer_id)
    for email in fact.emails:
        match |= Q(customer_email__iexact=email)
    requests = list(ReturnRequest.objects.filter(shop=shop).filter(match))
    _files_delete(requests)
    for request in requests:
        request.line_items.update(customer_note="")
        request.customer_email = ""
        request.customer_id = None
        request.decline_note = ""
        request.label_file = ""
        request.label_url = ""
        request.approval_instructions = scrub_text(request.approval_instructions, needles)
        request.sync_error = scrub_text(request.sync_error, needles)
        request.save()
    ReturnBlocklistEntry.objects.filter(shop=shop, email__in=fact.emails).delete()
    logger.info(
        "returns.customer_redact.done",
        extra={"shop": shop.myshopify_domain, "returns": len(requests)},
    )
    return len(requests)


def shop_redact(fact: ShopRedacted) -> int:
    """Before the shop's rows cascade away: its photos and labels leave storage, and its
    returns go first (a return line protects the order line it returns)."""
    requests = list(ReturnRequest.objects.filter(shop=fact.shop))
    _files_delete(requests)
    ReturnRequest.objects.filter(shop=fact.shop).delete()
    return len(requests)

"""The merchant's return policy: read with defaults, and the reason vocabulary.

Reasons are stored as Shopify spells them: a ``ReturnReason`` value (``SIZE_TOO_SMALL``) or,
from API 2026-01, a ``ReturnReasonDefinition`` handle (``size-too-small``). The two map onto
each other for the standard reasons (shopify.dev changelog "New return reason definitions
API"), so a policy written with either form keeps working across API versions.
"""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from returns.models import Resolution, ReturnPolicy
from shopapp.models import Shop
from shopapp.rawsql import row_fetch_one

# Shopify's ReturnReason enum, exactly (admin-graphql enums/ReturnReason).
RETURN_REASONS = (
    "COLOR",
    "DEFECTIVE",
    "NOT_AS_DESCRIBED",
    "OTHER",
    "SIZE_TOO_LARGE",
    "SIZE_TOO_SMALL",
    "STYLE",
    "UNKNOWN",
    "UNWANTED",
    "WRONG_ITEM",
)
# The order a shopper reads them in: fit first (the commonest reason for clothes), then how it
# looks, what arrived, a change of mind, and "Other" last. UNKNOWN is what Shopify records
# when nobody said why: never offered to a shopper.
DEFAULT_REASONS = (
    "SIZE_TOO_SMALL",
    "SIZE_TOO_LARGE",
    "COLOR",
    "STYLE",
    "NOT_AS_DESCRIBED",
    "DEFECTIVE",
    "WRONG_ITEM",
    "UNWANTED",
    "OTHER",
)
_SIZE_AND_LOOK = ("SIZE_TOO_SMALL", "SIZE_TOO_LARGE", "COLOR", "STYLE")
_NOT_WORN = tuple(r for r in DEFAULT_REASONS if r not in _SIZE_AND_LOOK)
# Reasons per product type when the merchant set none: things that come in no size or cut
# (a face serum, a mug) are not offered size, colour or style reasons. Keys are matched
# against the product's type, case-insensitively, whole or one of its words ("Face Serum"
# matches "serum"); a type not listed gets every reason of the policy.
DEFAULT_REASONS_BY_PRODUCT_TYPE: dict[str, tuple[str, ...]] = {
    kind: _NOT_WORN
    for kind in (
        "beauty",
        "skincare",
        "cosmetics",
        "makeup",
        "fragrance",
        "serum",
        "cream",
        "food",
        "drink",
        "beverage",
        "supplements",
        "book",
        "books",
        "electronics",
    )
}
# The admin's words for them (the portal has its own, in returns.portal).
REASON_LABELS = {
    "COLOR": _("Color"),
    "DEFECTIVE": _("Damaged or defective"),
    "NOT_AS_DESCRIBED": _("Not as described"),
    "OTHER": _("Other"),
    "SIZE_TOO_LARGE": _("Size too large"),
    "SIZE_TOO_SMALL": _("Size too small"),
    "STYLE": _("Style"),
    "UNKNOWN": _("Unknown"),
    "UNWANTED": _("Changed my mind"),
    "WRONG_ITEM": _("Received the wrong item"),
}
# ReturnDeclineReason, exactly (admin-graphql enums/ReturnDeclineReason).
DECLINE_REASONS = ("FINAL_SALE", "RETURN_PERIOD_ENDED", "OTHER")
# What staff pick them by.
DECLINE_REASON_CHOICES = [
    ("FINAL_SALE", _("Final sale")),
    ("RETURN_PERIOD_ENDED", _("Return period ended")),
    ("OTHER", _("Other")),
]

# API version from which ReturnReasonDefinition ids are the way to name a reason.
REASON_DEFINITIONS_SINCE = "2026-01"


def reason_handle(reason: str) -> str:
    """SIZE_TOO_SMALL → size-too-small; a handle stays as it is."""
    if reason in RETURN_REASONS:
        return reason.lower().replace("_", "-")
    return reason


def reason_enum(reason: str) -> str:
    """size-too-small → SIZE_TOO_SMALL; a handle outside the standard set → OTHER."""
    if reason in RETURN_REASONS:
        return reason
    candidate = reason.upper().replace("-", "_")
    return candidate if candidate in RETURN_REASONS else "OTHER"


def reason_label(reason: str) -> str:
    known = REASON_LABELS.get(reason_enum(reason))
    return str(known) if known is not None else reason.replace("-", " ").capitalize()


def reason_matches(reason: str, listed: list[str] | tuple[str, ...]) -> bool:
    """Whether ``reason`` is in ``listed``, whichever form (enum or handle) either uses."""
    handle = reason_handle(reason)
    return any(reason_handle(item) == handle for item in listed)


def return_policy_get(*, shop: Shop) -> ReturnPolicy:
    """The shop's policy, created with the defaults on first use. Read by plain SQL (every
    portal page reads it; shopapp.rawsql)."""
    policy = row_fetch_one(ReturnPolicy, '"shop_id" = %s', [shop.pk])
    if policy is not None:
        policy.shop = shop  # the caller's instance: no second query for it
        return policy
    try:
        with transaction.atomic():
            return ReturnPolicy.objects.create(shop=shop)
    except IntegrityError:
        # Two first requests at once: the other one created it.
        return ReturnPolicy.objects.get(shop=shop)


def policy_reasons(policy: ReturnPolicy) -> list[str]:
    """Reasons the portal offers, in the policy's order with "Other" always last."""
    reasons = list(policy.reasons) or list(DEFAULT_REASONS)
    other = [r for r in reasons if reason_handle(r) == "other"]
    return [r for r in reasons if r not in other] + other


def reasons_for_product_type(policy: ReturnPolicy, product_type: str) -> list[str]:
    """The policy's reasons (their order kept) that suit an item of ``product_type``: the
    merchant's mapping (``reasons_by_product_type``) or, when they set none, the defaults.
    A type the mapping does not name, or a mapping that would leave nothing, gets them all."""
    offered = policy_reasons(policy)
    mapping = policy.reasons_by_product_type or DEFAULT_REASONS_BY_PRODUCT_TYPE
    kind = (product_type or "").strip().lower()
    if not kind:
        return offered
    words = set(kind.split())
    for key, listed in mapping.items():
        key = str(key).strip().lower()
        if key == kind or key in words:
            suited = [r for r in offered if reason_matches(r, list(listed))]
            return suited or offered
    return offered


def policy_list(value: str) -> list[str]:
    """A comma-separated policy field as lowercased, trimmed entries."""
    return [part.strip().lower() for part in (value or "").split(",") if part.strip()]


def policy_resolutions(policy: ReturnPolicy) -> list[str]:
    allowed = []
    if policy.allow_refund:
        allowed.append(Resolution.REFUND.value)
    if policy.allow_store_credit:
        allowed.append(Resolution.STORE_CREDIT.value)
    if policy.allow_exchange:
        allowed.append(Resolution.EXCHANGE.value)
    return allowed


def reason_requires_note(policy: ReturnPolicy, reason: str) -> bool:
    return reason_matches(reason, policy.reasons_requiring_note)


def reason_requires_photo(policy: ReturnPolicy, reason: str) -> bool:
    return reason_matches(reason, policy.reasons_requiring_photo)


def percent(value: Decimal) -> Decimal:
    return (value or Decimal("0")) / Decimal("100")

"""The merchant's return policy: read with defaults, and the reason vocabulary.

Reasons are stored as Shopify spells them: a ``ReturnReason`` value (``SIZE_TOO_SMALL``) or,
from API 2026-01, a ``ReturnReasonDefinition`` handle (``size-too-small``). The two map onto
each other for the standard reasons (shopify.dev changelog "New return reason definitions
API"), so a policy written with either form keeps working across API versions.
"""

from decimal import Decimal

from django.db import IntegrityError, transaction

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
# UNKNOWN is what Shopify records when nobody said why: never offered to a shopper.
DEFAULT_REASONS = tuple(r for r in RETURN_REASONS if r != "UNKNOWN")
REASON_LABELS = {
    "COLOR": "Color",
    "DEFECTIVE": "Damaged or defective",
    "NOT_AS_DESCRIBED": "Not as described",
    "OTHER": "Other",
    "SIZE_TOO_LARGE": "Size too large",
    "SIZE_TOO_SMALL": "Size too small",
    "STYLE": "Style",
    "UNKNOWN": "Unknown",
    "UNWANTED": "Changed my mind",
    "WRONG_ITEM": "Received the wrong item",
}
# ReturnDeclineReason, exactly (admin-graphql enums/ReturnDeclineReason).
DECLINE_REASONS = ("FINAL_SALE", "RETURN_PERIOD_ENDED", "OTHER")

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
    return REASON_LABELS.get(reason_enum(reason), reason.replace("-", " ").capitalize())


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
    """Reasons the portal offers, in the policy's order."""
    return list(policy.reasons) or list(DEFAULT_REASONS)


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

"""What every return action on the store shares: Shopify's reason definitions, user errors,
the return's lock and its webhooks.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from devshop.models import (
    DevReturn,
)
from devshop.orders import dev_now
from devshop.webhooks import dev_webhook_emit

logger = logging.getLogger(__name__)


# Statuses whose lines still hold their units (a declined or canceled return frees them).
HOLDING_STATUSES = (DevReturn.Status.REQUESTED, DevReturn.Status.OPEN, DevReturn.Status.CLOSED)


CUSTOMER_NOTE_MAX = 300  # ReturnRequestLineItemInput.customerNote: "Maximum length: 300".


RETURN_REASON_NOTE_MAX = 255  # ReturnLineItemInput.returnReasonNote.


@dataclass(frozen=True)
class ReasonDefinition:
    """A ReturnReasonDefinition (2026-01): stable handle, display name, the legacy enum."""

    id: int
    handle: str
    name: str
    legacy: str


# The devshop's library of return reasons. Shopify's own library is larger and localized.
REASON_DEFINITIONS = [
    ReasonDefinition(1001, "size-too-small", "Size too small", "SIZE_TOO_SMALL"),
    ReasonDefinition(1002, "size-too-large", "Size too large", "SIZE_TOO_LARGE"),
    ReasonDefinition(1003, "unwanted", "Changed my mind", "UNWANTED"),
    ReasonDefinition(1004, "not-as-described", "Item not as described", "NOT_AS_DESCRIBED"),
    ReasonDefinition(1005, "wrong-item", "Received the wrong item", "WRONG_ITEM"),
    ReasonDefinition(1006, "defective", "Damaged or defective", "DEFECTIVE"),
    ReasonDefinition(1007, "style", "Style", "STYLE"),
    ReasonDefinition(1008, "color", "Color", "COLOR"),
    ReasonDefinition(1009, "other", "Other", "OTHER"),
]


REASONS_BY_ID = {r.id: r for r in REASON_DEFINITIONS}


REASONS_BY_HANDLE = {r.handle: r for r in REASON_DEFINITIONS}


REASONS_BY_LEGACY = {r.legacy: r for r in REASON_DEFINITIONS}


@dataclass(frozen=True)
class UserError:
    field: list[str] | None
    message: str
    code: str


class ReturnInputError(Exception):
    def __init__(self, errors: list[UserError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def _fail(field: list[str] | None, message: str, code: str) -> ReturnInputError:
    return ReturnInputError([UserError(field=field, message=message, code=code)])


def _emit(ret: DevReturn, topic: str, payload: dict[str, Any], event_id: str) -> None:
    dev_webhook_emit(
        shop=ret.shop, topic=topic, payload=payload, event_id=event_id, triggered_at=dev_now()
    )


def _touch(ret: DevReturn) -> None:
    ret.updated_at = dev_now()


def _locked(ret: DevReturn) -> DevReturn:
    return DevReturn.objects.select_for_update().select_related("order", "shop").get(pk=ret.pk)


def _require(ret: DevReturn, allowed: set[str], action: str) -> None:
    if ret.status not in allowed:
        raise _fail(
            ["id"],
            f"Return is {ret.status.lower()}; it can't be {action}.",
            "INVALID_STATE",
        )


@dataclass(frozen=True)
class Settlement:
    """What returnProcess pays back, in the shop's currency."""

    refund: Decimal = Decimal("0")
    store_credit: Decimal = Decimal("0")
    note: str = ""


@dataclass(frozen=True)
class Disposition:
    """One ReverseFulfillmentOrderDisposeInput, resolved to numeric ids; ``path`` is where
    its errors point (reverseFulfillmentOrderDispose or returnProcess's dispositions)."""

    rfo_line_item_id: int
    quantity: int
    type: str
    location_id: int | None
    path: tuple[str, ...]


def shop_location_id(shop: Any) -> int:
    """The numeric id of the shop's one Location (as Fulfillment.location answers it)."""
    return shop.shopify_id + 1

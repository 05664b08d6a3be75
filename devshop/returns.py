"""Returns on the store, as Shopify's return APIs run them (shopify.dev, "Build a return
management workflow", "Process returns"):

    dev_return_request   REQUESTED   returns/request     (the app, for a shopper)
    dev_return_approve   → OPEN      returns/approve     (the merchant)
    dev_return_decline   → DECLINED  returns/decline     FINAL_SALE | RETURN_PERIOD_ENDED | OTHER
    dev_return_process   OPEN        returns/process     confirm quantities, refund / store credit;
                         → CLOSED    + returns/close     once every line is processed
                                     + refunds/create, orders/updated when money moves
    dev_return_cancel    → CANCELED  returns/cancel      only before anything was processed
    dev_return_close     → CLOSED    returns/close

Bad input raises ``ReturnInputError`` with Shopify's ``ReturnUserError`` fields (field path,
message, ``ReturnErrorCode``) and changes nothing.
"""

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum

from devshop.models import (
    DevFulfillment,
    DevFulfillmentLineItem,
    DevOrder,
    DevReturn,
    DevReturnLineItem,
)
from devshop.orders import dev_now, dev_order_touch, dev_order_webhooks_emit
from devshop.payloads import (
    ACTIVE_FULFILLMENT_STATUSES,
    refund_payload,
    return_decline_payload,
    return_payload,
    return_status_payload,
)
from devshop.webhooks import dev_webhook_emit

logger = logging.getLogger(__name__)

# Statuses whose lines still hold their units (a declined or canceled return frees them).
HOLDING_STATUSES = (DevReturn.Status.REQUESTED, DevReturn.Status.OPEN, DevReturn.Status.CLOSED)
CUSTOMER_NOTE_MAX = 300  # ReturnRequestLineItemInput.customerNote: "Maximum length: 300".


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


# -- Reads ------------------------------------------------------------------------------------


def fulfillment_line_item_returnable_quantity(fli: DevFulfillmentLineItem) -> int:
    """Units of a fulfillment line still returnable: shipped minus those in live returns."""
    if fli.fulfillment.status not in ACTIVE_FULFILLMENT_STATUSES:
        return 0
    held = DevReturnLineItem.objects.filter(
        fulfillment_line_item=fli, return_obj__status__in=HOLDING_STATUSES
    ).aggregate(n=Sum("quantity"))["n"]
    return max(0, fli.quantity - int(held or 0))


def returnable_fulfillments(*, order: DevOrder) -> list[dict[str, Any]]:
    """[{"fulfillment", "lines": [(fulfillment line item, returnable quantity)]}], only
    fulfillments with something left to return (as Shopify's returnableFulfillments)."""
    found = []
    for fulfillment in DevFulfillment.objects.filter(
        order=order, status__in=ACTIVE_FULFILLMENT_STATUSES
    ).order_by("id"):
        lines = []
        for fli in fulfillment.fulfillment_line_items.select_related("line_item", "fulfillment"):
            quantity = fulfillment_line_item_returnable_quantity(fli)
            if quantity > 0:
                lines.append((fli, quantity))
        if lines:
            found.append({"fulfillment": fulfillment, "lines": lines})
    return found


# -- Changes ----------------------------------------------------------------------------------


def _emit(ret: DevReturn, topic: str, payload: dict[str, Any], event_id: str) -> None:
    dev_webhook_emit(
        shop=ret.shop, topic=topic, payload=payload, event_id=event_id, triggered_at=dev_now()
    )


def _touch(ret: DevReturn) -> None:
    ret.updated_at = dev_now()


@transaction.atomic
def dev_return_request(
    *,
    order: DevOrder,
    lines: list[dict[str, Any]],
    return_shipping_fee: Decimal | None = None,
) -> DevReturn:
    """Request a return for a shopper: ``lines`` are {"fulfillment_line_item_id": int,
    "quantity": int, "return_reason": legacy enum?, "return_reason_definition_id": int?,
    "customer_note": str?, "restocking_fee_percentage": float?}. Fires returns/request."""
    order = DevOrder.objects.select_for_update().get(pk=order.pk)
    if not lines:
        raise _fail(["input", "returnLineItems"], "Return line items can't be blank.", "BLANK")
    errors: list[UserError] = []
    wanted: dict[int, int] = {}
    resolved = []
    for index, line in enumerate(lines):
        path = ["input", "returnLineItems", str(index)]
        fli = (
            DevFulfillmentLineItem.objects.select_related("fulfillment", "line_item")
            .filter(
                shopify_id=line["fulfillment_line_item_id"],
                fulfillment__order=order,
            )
            .first()
        )
        if fli is None:
            errors.append(
                UserError(
                    [*path, "fulfillmentLineItemId"],
                    "Fulfillment line item not found.",
                    "NOT_FOUND",
                )
            )
            continue
        quantity = int(line["quantity"])
        if quantity <= 0:
            errors.append(
                UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            )
            continue
        wanted[fli.pk] = wanted.get(fli.pk, 0) + quantity
        returnable = fulfillment_line_item_returnable_quantity(fli)
        if wanted[fli.pk] > returnable:
            errors.append(
                UserError(
                    [*path, "quantity"],
                    f"Quantity {wanted[fli.pk]} exceeds the returnable quantity ({returnable}).",
                    "LESS_THAN_OR_EQUAL_TO",
                )
            )
            continue
        note = line.get("customer_note") or ""
        if len(note) > CUSTOMER_NOTE_MAX:
            errors.append(
                UserError(
                    [*path, "customerNote"],
                    f"Customer note is too long (maximum is {CUSTOMER_NOTE_MAX} characters).",
                    "TOO_LONG",
                )
            )
            continue
        definition = None
        if line.get("return_reason_definition_id") is not None:
            definition = REASONS_BY_ID.get(int(line["return_reason_definition_id"]))
            if definition is None:
                errors.append(
                    UserError(
                        [*path, "returnReasonDefinitionId"],
                        "Return reason definition not found.",
                        "NOT_FOUND",
                    )
                )
                continue
        elif line.get("return_reason"):
            definition = REASONS_BY_LEGACY.get(line["return_reason"])
        resolved.append((fli, quantity, definition, line, note))
    if errors:
        raise ReturnInputError(errors)

    count = DevReturn.objects.filter(order=order).count()
    now = dev_now()
    ret = DevReturn.objects.create(
        shop=order.shop,
        order=order,
        name=f"{order.name}-R{count + 1}",
        status=DevReturn.Status.REQUESTED,
        return_shipping_fee=return_shipping_fee or Decimal("0"),
        created_at=now,
        updated_at=now,
    )
    for fli, quantity, definition, line, note in resolved:
        legacy = line.get("return_reason") or (definition.legacy if definition else "UNKNOWN")
        DevReturnLineItem.objects.create(
            return_obj=ret,
            fulfillment_line_item=fli,
            quantity=quantity,
            return_reason=legacy,
            return_reason_handle=definition.handle if definition else "",
            customer_note=note,
            restocking_fee_percentage=line.get("restocking_fee_percentage"),
        )
    _emit(ret, "returns/request", return_payload(ret), str(uuid.uuid4()))
    logger.info(
        "devshop.returns.requested",
        extra={"shop": order.shop.myshopify_domain, "return_id": ret.shopify_id},
    )
    return ret


def _locked(ret: DevReturn) -> DevReturn:
    return DevReturn.objects.select_for_update().select_related("order", "shop").get(pk=ret.pk)


def _require(ret: DevReturn, allowed: set[str], action: str) -> None:
    if ret.status not in allowed:
        raise _fail(
            ["id"],
            f"Return is {ret.status.lower()}; it can't be {action}.",
            "INVALID_STATE",
        )


@transaction.atomic
def dev_return_approve(*, ret: DevReturn, notify_customer: bool = False) -> DevReturn:
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.REQUESTED}, "approved")
    ret.status = DevReturn.Status.OPEN
    ret.request_approved_at = dev_now()
    _touch(ret)
    ret.save()
    _emit(ret, "returns/approve", return_payload(ret), str(uuid.uuid4()))
    return ret


@transaction.atomic
def dev_return_decline(
    *, ret: DevReturn, reason: str, note: str = "", notify_customer: bool = False
) -> DevReturn:
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.REQUESTED}, "declined")
    if reason not in DevReturn.DeclineReason.values:
        raise _fail(["input", "declineReason"], "Decline reason is invalid.", "INCLUSION")
    ret.status = DevReturn.Status.DECLINED
    ret.decline_reason = reason
    ret.decline_note = note
    _touch(ret)
    ret.save()
    _emit(ret, "returns/decline", return_decline_payload(ret), str(uuid.uuid4()))
    return ret


@transaction.atomic
def dev_return_cancel(*, ret: DevReturn) -> DevReturn:
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.REQUESTED, DevReturn.Status.OPEN}, "canceled")
    if ret.return_line_items.filter(processed_quantity__gt=0).exists():
        raise _fail(["id"], "A return with processed items can't be canceled.", "INVALID_STATE")
    ret.status = DevReturn.Status.CANCELED
    _touch(ret)
    ret.save()
    _emit(ret, "returns/cancel", return_status_payload(ret), str(uuid.uuid4()))
    return ret


@transaction.atomic
def dev_return_close(*, ret: DevReturn) -> DevReturn:
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.OPEN}, "closed")
    ret.status = DevReturn.Status.CLOSED
    ret.closed_at = dev_now()
    _touch(ret)
    ret.save()
    _emit(ret, "returns/close", return_status_payload(ret), str(uuid.uuid4()))
    return ret


@dataclass(frozen=True)
class Settlement:
    """What returnProcess pays back, in the shop's currency."""

    refund: Decimal = Decimal("0")
    store_credit: Decimal = Decimal("0")
    note: str = ""


@transaction.atomic
def dev_return_process(
    *,
    ret: DevReturn,
    lines: list[tuple[int, int]] | None,
    refund: Settlement | None,
    notify_customer: bool = False,
) -> DevReturn:
    """Confirm the returned quantities (``lines``: [(return line item id, quantity)]; None:
    every unprocessed unit) and settle them (``refund``; None: the items' value back to the
    original payment). Fires returns/process, returns/close once nothing is left to process,
    and refunds/create with orders/updated when money moves, all for one action."""
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.OPEN}, "processed")
    by_id = {
        line.shopify_id: line
        for line in ret.return_line_items.select_related("fulfillment_line_item__line_item")
    }
    if lines is None:
        lines = [
            (line.shopify_id, line.quantity - line.processed_quantity) for line in by_id.values()
        ]
        lines = [(i, q) for i, q in lines if q > 0]
    if not lines:
        raise _fail(["input", "returnLineItems"], "Nothing to process.", "BLANK")
    errors = []
    for index, (line_id, quantity) in enumerate(lines):
        path = ["input", "returnLineItems", str(index)]
        line = by_id.get(line_id)
        if line is None:
            errors.append(UserError([*path, "id"], "Return line item not found.", "NOT_FOUND"))
        elif quantity <= 0:
            errors.append(
                UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            )
        elif quantity > line.quantity - line.processed_quantity:
            errors.append(
                UserError(
                    [*path, "quantity"],
                    f"Quantity {quantity} exceeds the unprocessed quantity "
                    f"({line.quantity - line.processed_quantity}).",
                    "LESS_THAN_OR_EQUAL_TO",
                )
            )
    if errors:
        raise ReturnInputError(errors)

    processed = []
    value = Decimal("0")
    for line_id, quantity in lines:
        line = by_id[line_id]
        line.processed_quantity += quantity
        line.save(update_fields=["processed_quantity"])
        processed.append((line, quantity))
        value += line.fulfillment_line_item.line_item.price * quantity
    settlement = refund if refund is not None else Settlement(refund=value)
    ret.refunded_amount += settlement.refund
    ret.store_credit_amount += settlement.store_credit
    done = all(line.processed_quantity >= line.quantity for line in by_id.values())
    now = dev_now()
    if done:
        ret.status = DevReturn.Status.CLOSED
        ret.closed_at = now
    _touch(ret)
    ret.save()

    event_id = str(uuid.uuid4())
    _emit(ret, "returns/process", return_payload(ret), event_id)
    if done:
        _emit(ret, "returns/close", return_status_payload(ret), event_id)
    paid_back = settlement.refund + settlement.store_credit
    if paid_back > 0:
        order = DevOrder.objects.select_for_update().get(pk=ret.order.pk)
        total_back = DevReturn.objects.filter(order=order).aggregate(
            r=Sum("refunded_amount"), c=Sum("store_credit_amount")
        )
        back = (total_back["r"] or 0) + (total_back["c"] or 0)
        order.financial_status = (
            DevOrder.FinancialStatus.REFUNDED
            if back >= order.total_price
            else DevOrder.FinancialStatus.PARTIALLY_REFUNDED
        )
        dev_order_touch(order)
        order.save(update_fields=["financial_status", "updated_at"])
        refund_id = int(now.timestamp()) * 1_000_000 + ret.pk * 100 + len(processed)
        _emit(
            ret,
            "refunds/create",
            refund_payload(
                refund_id=refund_id,
                ret=ret,
                amount=settlement.refund,
                processed=processed,
                note=settlement.note,
            ),
            event_id,
        )
        dev_order_webhooks_emit(order=order, topics=["orders/updated"], event_id=event_id)
    logger.info(
        "devshop.returns.processed",
        extra={"shop": ret.shop.myshopify_domain, "return_id": ret.shopify_id, "closed": done},
    )
    return ret

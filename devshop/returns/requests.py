"""A return requested (returnRequest), approved, declined, canceled or closed; what is
returnable.
"""

import logging
import uuid
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
    DevReverseFulfillmentOrder,
    DevReverseFulfillmentOrderDisposition,
)
from devshop.orders import dev_now
from devshop.payloads import (
    ACTIVE_FULFILLMENT_STATUSES,
)
from devshop.payloads_returns import (
    return_decline_payload,
    return_payload,
    return_status_payload,
)
from devshop.returns.common import (
    CUSTOMER_NOTE_MAX,
    HOLDING_STATUSES,
    REASONS_BY_ID,
    REASONS_BY_LEGACY,
    RETURN_REASON_NOTE_MAX,
    ReturnInputError,
    UserError,
    _emit,
    _fail,
    _locked,
    _require,
    _touch,
)
from devshop.returns.reverse import (
    _reverse_fulfillment_order_create,
    _reverse_fulfillment_orders_close,
)

logger = logging.getLogger(__name__)


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


def _return_lines_resolve(
    order: DevOrder, lines: list[dict[str, Any]], root: list[str], errors: list[UserError]
) -> list[tuple]:
    """Check requested return lines against what is still returnable on ``order``; errors are
    appended (field paths under ``root``), the good lines returned."""
    wanted: dict[int, int] = {}
    resolved = []
    for index, line in enumerate(lines):
        path = [*root, "returnLineItems", str(index)]
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
        reason_note = line.get("return_reason_note") or ""
        if len(reason_note) > RETURN_REASON_NOTE_MAX:
            errors.append(
                UserError(
                    [*path, "returnReasonNote"],
                    f"Return reason note is too long (maximum is {RETURN_REASON_NOTE_MAX} "
                    "characters).",
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
    return resolved


def _return_lines_create(ret: DevReturn, resolved: list[tuple]) -> None:
    for fli, quantity, definition, line, note in resolved:
        legacy = line.get("return_reason") or (definition.legacy if definition else "UNKNOWN")
        DevReturnLineItem.objects.create(
            return_obj=ret,
            fulfillment_line_item=fli,
            quantity=quantity,
            return_reason=legacy,
            return_reason_handle=definition.handle if definition else "",
            return_reason_note=line.get("return_reason_note") or "",
            customer_note=note,
            restocking_fee_percentage=line.get("restocking_fee_percentage"),
        )


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
    resolved = _return_lines_resolve(order, lines, ["input"], errors)
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
    _return_lines_create(ret, resolved)
    _emit(ret, "returns/request", return_payload(ret), str(uuid.uuid4()))
    logger.info(
        "devshop.returns.requested",
        extra={"shop": order.shop.myshopify_domain, "return_id": ret.shopify_id},
    )
    return ret


@transaction.atomic
def dev_return_approve(*, ret: DevReturn, notify_customer: bool = False) -> DevReturn:
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.REQUESTED}, "approved")
    ret.status = DevReturn.Status.OPEN
    ret.request_approved_at = dev_now()
    _touch(ret)
    ret.save()
    _reverse_fulfillment_order_create(ret)
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
    if (
        ret.return_line_items.filter(processed_quantity__gt=0).exists()
        or ret.exchange_line_items.filter(processed_quantity__gt=0).exists()
    ):
        raise _fail(["id"], "A return with processed items can't be canceled.", "INVALID_STATE")
    if DevReverseFulfillmentOrderDisposition.objects.filter(
        reverse_fulfillment_order_line_item__reverse_fulfillment_order__return_obj=ret
    ).exists():
        raise _fail(["id"], "A return with disposed items can't be canceled.", "INVALID_STATE")
    ret.status = DevReturn.Status.CANCELED
    _touch(ret)
    ret.save()
    ret.reverse_fulfillment_orders.update(status=DevReverseFulfillmentOrder.Status.CANCELED)
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
    _reverse_fulfillment_orders_close(ret)
    _emit(ret, "returns/close", return_status_payload(ret), str(uuid.uuid4()))
    return ret

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
    dev_return_create    OPEN        returns/approve     returnCreate: the merchant's return,
                                                         with exchange lines (variant, quantity)
    dev_return_reopen    CLOSED → OPEN  returns/reopen
    dev_return_remove_items          returns/update      removeFromReturn (unprocessed units)

Exchanges (shopify.dev, "Manage exchanges"): exchange lines exist only on returns made with
returnCreate (returnRequest has no exchange lines in 2026-10); returnProcess books them on the
order (a new line item to fulfil) and a buyer-owes difference holds them (AWAITING_PAYMENT)
until ``dev_exchange_payment_collect``.

Reverse logistics: an OPEN return has one reverse fulfillment order (its lines);
``dev_reverse_delivery_create`` / ``dev_reverse_delivery_shipping_update`` attach tracking and a
label (reverse_deliveries/attach_deliverable); ``dev_reverse_fulfillment_order_dispose``
(reverse_fulfillment_orders/dispose) records what became of the items.

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
    DevExchangeLineItem,
    DevFulfillment,
    DevFulfillmentLineItem,
    DevLineItem,
    DevOrder,
    DevReturn,
    DevReturnLineItem,
    DevReverseDelivery,
    DevReverseDeliveryLineItem,
    DevReverseFulfillmentOrder,
    DevReverseFulfillmentOrderDisposition,
    DevReverseFulfillmentOrderLineItem,
    DevVariant,
)
from devshop.orders import dev_now, dev_order_touch, dev_order_webhooks_emit
from devshop.payloads import (
    ACTIVE_FULFILLMENT_STATUSES,
    refund_payload,
    return_decline_payload,
    return_payload,
    return_status_payload,
    return_update_payload,
    reverse_delivery_payload,
    reverse_fulfillment_order_dispose_payload,
)
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


@transaction.atomic
def dev_return_process(
    *,
    ret: DevReturn,
    lines: list[tuple[int, int]] | None,
    refund: Settlement | None,
    notify_customer: bool = False,
    exchange_lines: list[tuple[int, int]] | None = None,
    dispositions: list[Disposition] | None = None,
) -> DevReturn:
    """Confirm the returned quantities (``lines``: [(return line item id, quantity)]; None:
    every unprocessed unit) and the exchanged ones (``exchange_lines``: [(exchange line item
    id, quantity)]; None with ``lines`` None: every unprocessed exchange unit), dispose items
    (``dispositions``) and settle (``refund``; None: the returned value less the exchanged
    value back to the original payment).

    Processing an exchange books it on the order, as Shopify does: a new line item to fulfil
    (the order's total grows). When the exchange is worth more than what came back, the buyer
    owes the difference: the order is PARTIALLY_PAID and the exchange's fulfilment is held
    (AWAITING_PAYMENT) until paid (``dev_exchange_payment_collect``); an even exchange moves no
    money. Fires returns/process, returns/close once nothing is left to process,
    reverse_fulfillment_orders/dispose for dispositions, refunds/create when money moves back,
    and orders/updated when the order changed, all for one action."""
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.OPEN}, "processed")
    by_id = {
        line.shopify_id: line
        for line in ret.return_line_items.select_related("fulfillment_line_item__line_item")
    }
    exchanges = {
        ex.shopify_id: ex
        for ex in ret.exchange_line_items.select_related("variant__product", "line_item")
    }
    process_all = lines is None
    if lines is None:
        lines = [
            (line.shopify_id, line.quantity - line.processed_quantity) for line in by_id.values()
        ]
        lines = [(i, q) for i, q in lines if q > 0]
    if exchange_lines is None:
        exchange_lines = (
            [
                (ex.shopify_id, ex.quantity - ex.processed_quantity)
                for ex in exchanges.values()
                if ex.quantity > ex.processed_quantity
            ]
            if process_all
            else []
        )
    if not lines and not exchange_lines:
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
    seen: dict[int, int] = {}
    for index, (exchange_id, quantity) in enumerate(exchange_lines):
        path = ["input", "exchangeLineItems", str(index)]
        exchange = exchanges.get(exchange_id)
        if exchange is None:
            errors.append(UserError([*path, "id"], "Exchange line item not found.", "NOT_FOUND"))
            continue
        if quantity <= 0:
            errors.append(
                UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            )
            continue
        seen[exchange_id] = seen.get(exchange_id, 0) + quantity
        left = exchange.quantity - exchange.processed_quantity
        if seen[exchange_id] > left:
            errors.append(
                UserError(
                    [*path, "quantity"],
                    f"Quantity {seen[exchange_id]} exceeds the unprocessed quantity ({left}).",
                    "LESS_THAN_OR_EQUAL_TO",
                )
            )
    planned = _dispositions_check(ret.shop, dispositions or [], errors, return_obj=ret)
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
    order = DevOrder.objects.select_for_update().get(pk=ret.order.pk)
    booked = []
    exchange_value = Decimal("0")
    for exchange_id, quantity in exchange_lines:
        exchange = exchanges[exchange_id]
        _exchange_book(order, exchange, quantity)
        booked.append(exchange)
        exchange_value += exchange.unit_price * quantity
    settlement = (
        refund
        if refund is not None
        else Settlement(refund=max(Decimal("0"), value - exchange_value))
    )
    owed = max(Decimal("0"), exchange_value - value)
    if owed > 0:
        ret.exchange_amount_due += owed
        for exchange in booked:
            exchange.hold_reason = DevExchangeLineItem.HoldReason.AWAITING_PAYMENT
            exchange.save(update_fields=["hold_reason"])
    ret.refunded_amount += settlement.refund
    ret.store_credit_amount += settlement.store_credit
    done = all(line.processed_quantity >= line.quantity for line in by_id.values()) and all(
        ex.processed_quantity >= ex.quantity for ex in exchanges.values()
    )
    now = dev_now()
    if done:
        ret.status = DevReturn.Status.CLOSED
        ret.closed_at = now
    _touch(ret)
    ret.save()
    disposed = _dispositions_apply(planned)
    if done:
        _reverse_fulfillment_orders_close(ret)

    event_id = str(uuid.uuid4())
    _emit(ret, "returns/process", return_payload(ret), event_id)
    if done:
        _emit(ret, "returns/close", return_status_payload(ret), event_id)
    _dispositions_emit(ret.shop, disposed, event_id)
    paid_back = settlement.refund + settlement.store_credit
    order_changed = bool(booked)
    if booked:
        order.subtotal_price += exchange_value
        order.total_price += exchange_value
        from devshop.simulation import _order_fulfillment_status_refresh

        _order_fulfillment_status_refresh(order)
    if owed > 0:
        order.financial_status = DevOrder.FinancialStatus.PARTIALLY_PAID
        order_changed = True
    elif paid_back > 0:
        total_back = DevReturn.objects.filter(order=order).aggregate(
            r=Sum("refunded_amount"), c=Sum("store_credit_amount")
        )
        back = (total_back["r"] or 0) + (total_back["c"] or 0)
        order.financial_status = (
            DevOrder.FinancialStatus.REFUNDED
            if back >= order.total_price
            else DevOrder.FinancialStatus.PARTIALLY_REFUNDED
        )
        order_changed = True
    if order_changed:
        dev_order_touch(order)
        order.save(
            update_fields=[
                "financial_status",
                "fulfillment_status",
                "subtotal_price",
                "total_price",
                "updated_at",
            ]
        )
    if paid_back > 0:
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
    if order_changed:
        dev_order_webhooks_emit(order=order, topics=["orders/updated"], event_id=event_id)
    logger.info(
        "devshop.returns.processed",
        extra={
            "shop": ret.shop.myshopify_domain,
            "return_id": ret.shopify_id,
            "closed": done,
            "exchanged": len(booked),
        },
    )
    return ret


# -- Exchanges ----------------------------------------------------------------------------------


def _exchange_lines_resolve(
    order: DevOrder, exchange_lines: list[dict[str, Any]], root: list[str], errors: list[UserError]
) -> list[tuple[DevVariant, int, Decimal]]:
    """[(variant, quantity, unit price after discount)] for ExchangeLineItemInput rows
    ({"variant_id", "quantity", "discount_amount"?, "discount_percentage"?})."""
    resolved = []
    for index, row in enumerate(exchange_lines):
        path = [*root, "exchangeLineItems", str(index)]
        variant = (
            DevVariant.objects.select_related("product")
            .filter(product__shop=order.shop, shopify_id=row.get("variant_id") or -1)
            .first()
        )
        if variant is None:
            errors.append(UserError([*path, "variantId"], "Variant not found.", "NOT_FOUND"))
            continue
        quantity = int(row["quantity"])
        if quantity <= 0:
            errors.append(
                UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            )
            continue
        price = variant.price
        if row.get("discount_percentage") is not None:
            percentage = Decimal(str(row["discount_percentage"]))
            if not 0 <= percentage <= 100:
                errors.append(
                    UserError(
                        [*path, "appliedDiscount", "value", "percentage"],
                        "Percentage must be between 0 and 100.",
                        "INVALID",
                    )
                )
                continue
            price = price * (100 - percentage) / 100
        elif row.get("discount_amount") is not None:
            # A fixed amount off each unit.
            price = price - Decimal(row["discount_amount"])
        price = price.quantize(Decimal("0.01"))
        if price < 0:
            errors.append(
                UserError(
                    [*path, "appliedDiscount", "value"],
                    "Discount exceeds the variant's price.",
                    "INVALID",
                )
            )
            continue
        resolved.append((variant, quantity, price))
    return resolved


def _exchange_book(order: DevOrder, exchange: DevExchangeLineItem, quantity: int) -> None:
    """Book ``quantity`` exchanged units as a sale on the order: its order line item."""
    variant = exchange.variant
    item = exchange.line_item
    if item is None:
        item = DevLineItem.objects.create(
            order=order,
            product=variant.product if variant else None,
            variant=variant,
            title=variant.product.title if variant else exchange.title,
            variant_title=""
            if variant is None or variant.title == "Default Title"
            else variant.title,
            sku=variant.sku if variant else "",
            vendor=variant.product.vendor if variant else "",
            quantity=quantity,
            current_quantity=quantity,
            price=exchange.unit_price,
            requires_shipping=variant.requires_shipping if variant else True,
        )
        exchange.line_item = item
    else:
        item.quantity += quantity
        item.current_quantity += quantity
        item.save(update_fields=["quantity", "current_quantity"])
    exchange.processed_quantity += quantity
    exchange.save(update_fields=["line_item", "processed_quantity"])


@transaction.atomic
def dev_return_create(
    *,
    order: DevOrder,
    lines: list[dict[str, Any]],
    exchange_lines: list[dict[str, Any]] | None = None,
    return_shipping_fee: Decimal | None = None,
    requested_at: Any = None,
) -> DevReturn:
    """returnCreate: a return the merchant (or an app for them) makes directly OPEN, with
    return lines ({"fulfillment_line_item_id", "quantity", "return_reason"?,
    "return_reason_definition_id"?, "return_reason_note"?, "restocking_fee_percentage"?}) and
    exchange lines (see ``_exchange_lines_resolve``), and its reverse fulfillment order.
    Fires returns/approve (the return is OPEN; there is no request to approve)."""
    order = DevOrder.objects.select_for_update().get(pk=order.pk)
    if not lines:
        raise _fail(
            ["returnInput", "returnLineItems"], "Return line items can't be blank.", "BLANK"
        )
    errors: list[UserError] = []
    resolved = _return_lines_resolve(order, lines, ["returnInput"], errors)
    exchanges = _exchange_lines_resolve(order, exchange_lines or [], ["returnInput"], errors)
    if errors:
        raise ReturnInputError(errors)
    count = DevReturn.objects.filter(order=order).count()
    now = dev_now()
    ret = DevReturn.objects.create(
        shop=order.shop,
        order=order,
        name=f"{order.name}-R{count + 1}",
        status=DevReturn.Status.OPEN,
        return_shipping_fee=return_shipping_fee or Decimal("0"),
        created_at=now,
        updated_at=now,
        request_approved_at=now,
        requested_at=requested_at,
    )
    _return_lines_create(ret, resolved)
    for variant, quantity, price in exchanges:
        DevExchangeLineItem.objects.create(
            return_obj=ret,
            variant=variant,
            title=variant.product.title,
            quantity=quantity,
            unit_price=price,
        )
    _reverse_fulfillment_order_create(ret)
    _emit(ret, "returns/approve", return_payload(ret), str(uuid.uuid4()))
    logger.info(
        "devshop.returns.created",
        extra={
            "shop": order.shop.myshopify_domain,
            "return_id": ret.shopify_id,
            "exchange_lines": len(exchanges),
        },
    )
    return ret


@transaction.atomic
def dev_exchange_payment_collect(*, ret: DevReturn) -> DevReturn:
    """The buyer pays what a buyer-owes exchange left due (the devshop's stand-in for the
    payment link or mandate charge): holds released, the order PAID again; orders/paid and
    orders/updated for the one action."""
    ret = _locked(ret)
    if ret.exchange_amount_due <= 0:
        raise _fail(["id"], "Nothing is due on this return.", "INVALID_STATE")
    ret.exchange_amount_due = Decimal("0")
    _touch(ret)
    ret.save(update_fields=["exchange_amount_due", "updated_at"])
    ret.exchange_line_items.update(hold_reason="")
    order = DevOrder.objects.select_for_update().get(pk=ret.order.pk)
    still_due = DevReturn.objects.filter(order=order, exchange_amount_due__gt=0).exists()
    if not still_due:
        order.financial_status = DevOrder.FinancialStatus.PAID
    dev_order_touch(order)
    order.save(update_fields=["financial_status", "updated_at"])
    topics = ["orders/updated"] if still_due else ["orders/paid", "orders/updated"]
    dev_order_webhooks_emit(order=order, topics=topics)
    return ret


@transaction.atomic
def dev_return_remove_items(
    *,
    ret: DevReturn,
    return_lines: list[tuple[int, int]],
    exchange_lines: list[tuple[int, int]],
) -> DevReturn:
    """removeFromReturn: take unprocessed units off return and exchange lines (a line left
    with nothing is removed). Fires returns/update with the removals."""
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.REQUESTED, DevReturn.Status.OPEN}, "changed")
    if not return_lines and not exchange_lines:
        raise _fail(["returnLineItems"], "Nothing to remove.", "BLANK")
    lines = {line.shopify_id: line for line in ret.return_line_items.all()}
    exchanges = {ex.shopify_id: ex for ex in ret.exchange_line_items.all()}
    errors: list[UserError] = []
    for field, rows, found, label in (
        ("returnLineItems", return_lines, lines, "Return line item"),
        ("exchangeLineItems", exchange_lines, exchanges, "Exchange line item"),
    ):
        for index, (line_id, quantity) in enumerate(rows):
            path = [field, str(index)]
            line = found.get(line_id)
            if line is None:
                errors.append(UserError([*path, "id"], f"{label} not found.", "NOT_FOUND"))
                continue
            if quantity <= 0:
                errors.append(
                    UserError(
                        [*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN"
                    )
                )
                continue
            removable = line.quantity - line.processed_quantity
            if field == "returnLineItems":
                disposed = DevReverseFulfillmentOrderDisposition.objects.filter(
                    reverse_fulfillment_order_line_item__return_line_item=line
                ).aggregate(n=Sum("quantity"))["n"]
                removable = min(removable, line.quantity - int(disposed or 0))
            if quantity > removable:
                errors.append(
                    UserError(
                        [*path, "quantity"],
                        f"Quantity {quantity} exceeds the removable quantity ({removable}).",
                        "LESS_THAN_OR_EQUAL_TO",
                    )
                )
    if errors:
        raise ReturnInputError(errors)
    for line_id, quantity in return_lines:
        line = lines[line_id]
        line.quantity -= quantity
        for rfo_line in line.reverse_fulfillment_order_line_items.all():
            rfo_line.total_quantity = max(0, rfo_line.total_quantity - quantity)
            rfo_line.save(update_fields=["total_quantity"])
        if line.quantity == 0:
            line.delete()
        else:
            line.save(update_fields=["quantity"])
    for line_id, quantity in exchange_lines:
        exchange = exchanges[line_id]
        exchange.quantity -= quantity
        if exchange.quantity == 0:
            exchange.delete()
        else:
            exchange.save(update_fields=["quantity"])
    _touch(ret)
    ret.save(update_fields=["updated_at"])
    _emit(
        ret,
        "returns/update",
        return_update_payload(ret, return_removals=return_lines, exchange_removals=exchange_lines),
        str(uuid.uuid4()),
    )
    return ret


@transaction.atomic
def dev_return_reopen(*, ret: DevReturn) -> DevReturn:
    """returnReopen: a CLOSED return is OPEN again (its reverse fulfillment orders with items
    still to dispose too). Fires returns/reopen."""
    ret = _locked(ret)
    _require(ret, {DevReturn.Status.CLOSED}, "reopened")
    ret.status = DevReturn.Status.OPEN
    ret.closed_at = None
    _touch(ret)
    ret.save()
    for rfo in ret.reverse_fulfillment_orders.filter(
        status=DevReverseFulfillmentOrder.Status.CLOSED
    ):
        if not _rfo_fully_disposed(rfo):
            rfo.status = DevReverseFulfillmentOrder.Status.OPEN
            rfo.save(update_fields=["status"])
    _emit(ret, "returns/reopen", return_status_payload(ret), str(uuid.uuid4()))
    return ret


# -- Reverse fulfillment orders, deliveries and dispositions ----------------------------------


def _reverse_fulfillment_order_create(ret: DevReturn) -> DevReverseFulfillmentOrder | None:
    """One reverse fulfillment order for an OPEN return's lines (once)."""
    if ret.reverse_fulfillment_orders.exists():
        return None
    rfo = DevReverseFulfillmentOrder.objects.create(return_obj=ret, created_at=dev_now())
    for line in ret.return_line_items.all():
        DevReverseFulfillmentOrderLineItem.objects.create(
            reverse_fulfillment_order=rfo, return_line_item=line, total_quantity=line.quantity
        )
    return rfo


def _reverse_fulfillment_orders_close(ret: DevReturn) -> None:
    ret.reverse_fulfillment_orders.filter(status=DevReverseFulfillmentOrder.Status.OPEN).update(
        status=DevReverseFulfillmentOrder.Status.CLOSED
    )


def rfo_line_disposed_quantity(rfo_line: DevReverseFulfillmentOrderLineItem) -> int:
    return int(rfo_line.dispositions.aggregate(n=Sum("quantity"))["n"] or 0)


def _rfo_fully_disposed(rfo: DevReverseFulfillmentOrder) -> bool:
    return all(
        rfo_line_disposed_quantity(line) >= line.total_quantity for line in rfo.line_items.all()
    )


def _dispositions_check(
    shop: Any,
    dispositions: list[Disposition],
    errors: list[UserError],
    *,
    return_obj: DevReturn | None = None,
) -> list[tuple[DevReverseFulfillmentOrderLineItem, Disposition]]:
    """Validate dispositions (line exists in the shop, and in ``return_obj`` if given; its
    reverse fulfillment order is OPEN; quantity within what is left to dispose; RESTOCKED
    has the shop's location)."""
    planned = []
    taken: dict[int, int] = {}
    for item in dispositions:
        path = list(item.path)
        rfo_line = (
            DevReverseFulfillmentOrderLineItem.objects.select_related(
                "reverse_fulfillment_order__return_obj"
            )
            .filter(
                shopify_id=item.rfo_line_item_id,
                reverse_fulfillment_order__return_obj__shop=shop,
            )
            .first()
        )
        if rfo_line is None or (
            return_obj is not None
            and rfo_line.reverse_fulfillment_order.return_obj_id != return_obj.pk
        ):
            errors.append(
                UserError(
                    [*path, "reverseFulfillmentOrderLineItemId"],
                    "Reverse fulfillment order line item not found.",
                    "NOT_FOUND",
                )
            )
            continue
        if rfo_line.reverse_fulfillment_order.status != DevReverseFulfillmentOrder.Status.OPEN:
            errors.append(
                UserError(
                    [*path, "reverseFulfillmentOrderLineItemId"],
                    "The reverse fulfillment order is "
                    f"{rfo_line.reverse_fulfillment_order.status.lower()}.",
                    "INVALID_STATE",
                )
            )
            continue
        if item.type not in DevReverseFulfillmentOrderDisposition.Type.values:
            errors.append(
                UserError([*path, "dispositionType"], "Disposition type is invalid.", "INCLUSION")
            )
            continue
        if item.quantity <= 0:
            errors.append(
                UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            )
            continue
        taken[rfo_line.pk] = taken.get(rfo_line.pk, 0) + item.quantity
        left = rfo_line.total_quantity - rfo_line_disposed_quantity(rfo_line)
        if taken[rfo_line.pk] > left:
            errors.append(
                UserError(
                    [*path, "quantity"],
                    f"Quantity {taken[rfo_line.pk]} exceeds the quantity left to dispose ({left}).",
                    "LESS_THAN_OR_EQUAL_TO",
                )
            )
            continue
        if (
            item.type == DevReverseFulfillmentOrderDisposition.Type.RESTOCKED
            and item.location_id is None
        ):
            errors.append(
                UserError(
                    [*path, "locationId"], "A location is required to restock items.", "BLANK"
                )
            )
            continue
        if item.location_id is not None and item.location_id != shop_location_id(shop):
            errors.append(UserError([*path, "locationId"], "Location not found.", "NOT_FOUND"))
            continue
        planned.append((rfo_line, item))
    return planned


def _dispositions_apply(
    planned: list[tuple[DevReverseFulfillmentOrderLineItem, Disposition]],
) -> list[DevReverseFulfillmentOrderDisposition]:
    made = []
    now = dev_now()
    for rfo_line, item in planned:
        delivery_line = rfo_line.reverse_delivery_line_items.order_by("id").first()
        made.append(
            DevReverseFulfillmentOrderDisposition.objects.create(
                reverse_fulfillment_order_line_item=rfo_line,
                reverse_delivery_line_item=delivery_line,
                type=item.type,
                quantity=item.quantity,
                location_id=item.location_id,
                created_at=now,
            )
        )
    for rfo in {line.reverse_fulfillment_order for line, _ in planned}:
        if _rfo_fully_disposed(rfo):
            rfo.status = DevReverseFulfillmentOrder.Status.CLOSED
            rfo.save(update_fields=["status"])
    return made


def _dispositions_emit(
    shop: Any, made: list[DevReverseFulfillmentOrderDisposition], event_id: str
) -> None:
    by_rfo: dict[int, list[DevReverseFulfillmentOrderDisposition]] = {}
    rfos = {}
    for disposition in made:
        rfo = disposition.reverse_fulfillment_order_line_item.reverse_fulfillment_order
        rfos[rfo.pk] = rfo
        by_rfo.setdefault(rfo.pk, []).append(disposition)
    for pk, dispositions in by_rfo.items():
        dev_webhook_emit(
            shop=shop,
            topic="reverse_fulfillment_orders/dispose",
            payload=reverse_fulfillment_order_dispose_payload(rfos[pk], dispositions),
            event_id=event_id,
            triggered_at=dev_now(),
        )


@transaction.atomic
def dev_reverse_fulfillment_order_dispose(
    *, shop: Any, dispositions: list[Disposition]
) -> list[DevReverseFulfillmentOrderLineItem]:
    """reverseFulfillmentOrderDispose: what became of returned items (RESTOCKED at the
    location, NOT_RESTOCKED, PROCESSING_REQUIRED, MISSING). A reverse fulfillment order whose
    every unit is disposed is CLOSED. Fires reverse_fulfillment_orders/dispose per reverse
    fulfillment order, one event id for the action."""
    if not dispositions:
        raise _fail(["dispositionInputs"], "Disposition inputs can't be blank.", "BLANK")
    errors: list[UserError] = []
    planned = _dispositions_check(shop, dispositions, errors)
    if errors:
        raise ReturnInputError(errors)
    made = _dispositions_apply(planned)
    _dispositions_emit(shop, made, str(uuid.uuid4()))
    seen = []
    for line, _ in planned:
        if line not in seen:
            seen.append(line)
    return seen


def _carrier_from(url: str, number: str) -> str:
    """The carrier Shopify would recognise from a tracking URL's host (empty if none)."""
    from urllib.parse import urlsplit

    from devshop.simulation import CARRIERS

    host = urlsplit(url).hostname or "" if url else ""
    for carrier in CARRIERS.values():
        carrier_host = urlsplit(carrier.url_template).hostname or ""
        if host and carrier_host and host.endswith(carrier_host.removeprefix("www.")):
            return carrier.name
    return ""


def _label_resolve(shop: Any, file_url: str, errors: list[UserError], path: list[str]) -> str:
    """The public URL of a label given as labelInput.fileUrl: a staged upload on this store
    must belong to the shop and have received its file; another https URL is taken as is."""
    from devshop.staged_uploads import staged_upload_for_url

    if not file_url.startswith(("https://", "http://")):
        errors.append(UserError([*path, "fileUrl"], "File URL is invalid.", "INVALID"))
        return ""
    found, upload = staged_upload_for_url(file_url)
    if not found:
        return file_url
    if upload is None or upload.shop_id != shop.pk:
        errors.append(UserError([*path, "fileUrl"], "Staged upload not found.", "NOT_FOUND"))
        return ""
    if upload.uploaded_at is None:
        errors.append(
            UserError([*path, "fileUrl"], "The label file hasn't been uploaded.", "INVALID")
        )
        return ""
    from devshop.staged_uploads import staged_upload_resource_url

    return staged_upload_resource_url(upload)


def _deliverable_set(
    delivery: DevReverseDelivery, tracking: dict[str, Any] | None, label: str
) -> bool:
    changed = False
    if tracking:
        number = tracking.get("number") or ""
        url = tracking.get("url") or ""
        delivery.tracking_number = number
        delivery.tracking_url = url
        delivery.carrier_name = _carrier_from(url, number)
        changed = True
    if label:
        now = dev_now()
        delivery.label_file_url = label
        delivery.label_public_url = label
        delivery.label_created_at = delivery.label_created_at or now
        delivery.label_updated_at = now
        changed = True
    return changed


@transaction.atomic
def dev_reverse_delivery_create(
    *,
    rfo: DevReverseFulfillmentOrder,
    lines: list[tuple[int, int]],
    tracking: dict[str, Any] | None = None,
    label_file_url: str | None = None,
    notify_customer: bool = True,
) -> DevReverseDelivery:
    """reverseDeliveryCreateWithShipping: the buyer's parcel back, for ``lines``
    ([(reverse fulfillment order line item id, quantity)]; [] = every line, whole), with
    tracking ({"number", "url"}) and a label (a staged upload's URL). Fires
    reverse_deliveries/attach_deliverable when tracking or a label is attached."""
    rfo = (
        DevReverseFulfillmentOrder.objects.select_for_update()
        .select_related("return_obj__shop", "return_obj__order")
        .get(pk=rfo.pk)
    )
    shop = rfo.return_obj.shop
    errors: list[UserError] = []
    if rfo.status != DevReverseFulfillmentOrder.Status.OPEN:
        raise _fail(
            ["reverseFulfillmentOrderId"],
            f"The reverse fulfillment order is {rfo.status.lower()}.",
            "INVALID_STATE",
        )
    by_id = {line.shopify_id: line for line in rfo.line_items.all()}
    if not lines:
        lines = [(line.shopify_id, line.total_quantity) for line in by_id.values()]
    wanted: dict[int, int] = {}
    for index, (line_id, quantity) in enumerate(lines):
        path = ["reverseDeliveryLineItems", str(index)]
        line = by_id.get(line_id)
        if line is None:
            errors.append(
                UserError(
                    [*path, "reverseFulfillmentOrderLineItemId"],
                    "Reverse fulfillment order line item not found.",
                    "NOT_FOUND",
                )
            )
            continue
        if quantity <= 0:
            errors.append(
                UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            )
            continue
        wanted[line_id] = wanted.get(line_id, 0) + quantity
        if wanted[line_id] > line.total_quantity:
            errors.append(
                UserError(
                    [*path, "quantity"],
                    f"Quantity {wanted[line_id]} exceeds the line's quantity "
                    f"({line.total_quantity}).",
                    "LESS_THAN_OR_EQUAL_TO",
                )
            )
    label = _label_resolve(shop, label_file_url, errors, ["labelInput"]) if label_file_url else ""
    if errors:
        raise ReturnInputError(errors)
    delivery = DevReverseDelivery(reverse_fulfillment_order=rfo, created_at=dev_now())
    attached = _deliverable_set(delivery, tracking, label)
    delivery.save()
    for line_id, quantity in lines:
        DevReverseDeliveryLineItem.objects.create(
            reverse_delivery=delivery,
            reverse_fulfillment_order_line_item=by_id[line_id],
            quantity=quantity,
        )
    if attached:
        _emit(
            rfo.return_obj,
            "reverse_deliveries/attach_deliverable",
            reverse_delivery_payload(delivery),
            str(uuid.uuid4()),
        )
    return delivery


@transaction.atomic
def dev_reverse_delivery_shipping_update(
    *,
    delivery: DevReverseDelivery,
    tracking: dict[str, Any] | None = None,
    label_file_url: str | None = None,
    notify_customer: bool = True,
) -> DevReverseDelivery:
    """reverseDeliveryShippingUpdate: new tracking and/or label on a reverse delivery; fires
    reverse_deliveries/attach_deliverable."""
    delivery = (
        DevReverseDelivery.objects.select_for_update()
        .select_related("reverse_fulfillment_order__return_obj__shop")
        .get(pk=delivery.pk)
    )
    ret = delivery.reverse_fulfillment_order.return_obj
    errors: list[UserError] = []
    label = (
        _label_resolve(ret.shop, label_file_url, errors, ["labelInput"]) if label_file_url else ""
    )
    if not tracking and not label_file_url:
        errors.append(UserError(["trackingInput"], "Give tracking or a label.", "BLANK"))
    if errors:
        raise ReturnInputError(errors)
    _deliverable_set(delivery, tracking, label)
    delivery.save()
    _emit(
        ret,
        "reverse_deliveries/attach_deliverable",
        reverse_delivery_payload(delivery),
        str(uuid.uuid4()),
    )
    return delivery

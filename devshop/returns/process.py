"""returnProcess: confirm returned and exchanged units, dispose them, settle the money."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Sum

from devshop.models import (
    DevExchangeLineItem,
    DevLineItem,
    DevOrder,
    DevReturn,
    DevReturnLineItem,
)
from devshop.orders import dev_now, dev_order_touch, dev_order_webhooks_emit
from devshop.payloads_returns import (
    refund_payload,
    return_payload,
    return_status_payload,
)
from devshop.returns.common import (
    Disposition,
    ReturnInputError,
    Settlement,
    UserError,
    _emit,
    _fail,
    _locked,
    _require,
    _touch,
)
from devshop.returns.exchanges import _exchange_book
from devshop.returns.reverse import (
    _dispositions_apply,
    _dispositions_check,
    _dispositions_emit,
    _reverse_fulfillment_orders_close,
)

logger = logging.getLogger(__name__)


def _process_defaults(
    *,
    by_id: dict[int, DevReturnLineItem],
    exchanges: dict[int, DevExchangeLineItem],
    lines: list[tuple[int, int]] | None,
    exchange_lines: list[tuple[int, int]] | None,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """None means every unprocessed unit (exchange units only when the lines are None too)."""
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
    return lines, exchange_lines


def _return_lines_check(
    lines: list[tuple[int, int]], by_id: dict[int, DevReturnLineItem], errors: list[UserError]
) -> None:
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


def _exchange_lines_check(
    exchange_lines: list[tuple[int, int]],
    exchanges: dict[int, DevExchangeLineItem],
    errors: list[UserError],
) -> None:
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


def _unit_paid(line_item: DevLineItem) -> Decimal:
    """What one unit of a line cost the buyer, its share of the line's discount deducted: the
    value a returned unit brings back, as Shopify values return lines
    (ReturnLineItem.withCodeDiscountedTotalPriceSet: "after all discounts on the line item")."""
    if not line_item.quantity:
        return line_item.price
    return (line_item.price - line_item.total_discount / line_item.quantity).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


@dataclass
class _Processed:
    """What one returnProcess confirmed, booked and paid back."""

    processed: list[tuple[DevReturnLineItem, int]]
    booked: list[DevExchangeLineItem]
    value: Decimal
    exchange_value: Decimal
    settlement: Settlement
    owed: Decimal


def _process_apply(
    *,
    ret: DevReturn,
    order: DevOrder,
    lines: list[tuple[int, int]],
    exchange_lines: list[tuple[int, int]],
    by_id: dict[int, DevReturnLineItem],
    exchanges: dict[int, DevExchangeLineItem],
    refund: Settlement | None,
) -> _Processed:
    processed = []
    value = Decimal("0")
    for line_id, quantity in lines:
        line = by_id[line_id]
        line.processed_quantity += quantity
        line.save(update_fields=["processed_quantity"])
        processed.append((line, quantity))
        value += _unit_paid(line.fulfillment_line_item.line_item) * quantity
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
    return _Processed(processed, booked, value, exchange_value, settlement, owed)


def _order_settle(*, order: DevOrder, done: _Processed) -> bool:
    """The order after the processing: exchanges booked, what it owes or got back. Returns
    whether it changed (orders/updated)."""
    paid_back = done.settlement.refund + done.settlement.store_credit
    order_changed = bool(done.booked)
    if done.booked:
        order.subtotal_price += done.exchange_value
        order.total_price += done.exchange_value
        from devshop.simulation import _order_fulfillment_status_refresh

        _order_fulfillment_status_refresh(order)
    if done.owed > 0:
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
    return order_changed


def _refund_emit(ret: DevReturn, *, done: _Processed, at: datetime, event_id: str) -> None:
    """refunds/create when the processing moved money back (refund or store credit)."""
    if done.settlement.refund + done.settlement.store_credit <= 0:
        return
    refund_id = int(at.timestamp()) * 1_000_000 + ret.pk * 100 + len(done.processed)
    _emit(
        ret,
        "refunds/create",
        refund_payload(
            refund_id=refund_id,
            ret=ret,
            amount=done.settlement.refund,
            processed=done.processed,
            note=done.settlement.note,
        ),
        event_id,
    )


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
    lines, exchange_lines = _process_defaults(
        by_id=by_id, exchanges=exchanges, lines=lines, exchange_lines=exchange_lines
    )
    if not lines and not exchange_lines:
        raise _fail(["input", "returnLineItems"], "Nothing to process.", "BLANK")
    errors: list[UserError] = []
    _return_lines_check(lines, by_id, errors)
    _exchange_lines_check(exchange_lines, exchanges, errors)
    planned = _dispositions_check(ret.shop, dispositions or [], errors, return_obj=ret)
    if errors:
        raise ReturnInputError(errors)

    order = DevOrder.objects.select_for_update().get(pk=ret.order.pk)
    done = _process_apply(
        ret=ret,
        order=order,
        lines=lines,
        exchange_lines=exchange_lines,
        by_id=by_id,
        exchanges=exchanges,
        refund=refund,
    )
    closed = all(line.processed_quantity >= line.quantity for line in by_id.values()) and all(
        ex.processed_quantity >= ex.quantity for ex in exchanges.values()
    )
    now = dev_now()
    if closed:
        ret.status = DevReturn.Status.CLOSED
        ret.closed_at = now
    _touch(ret)
    ret.save()
    disposed = _dispositions_apply(planned)
    if closed:
        _reverse_fulfillment_orders_close(ret)

    event_id = str(uuid.uuid4())
    _emit(ret, "returns/process", return_payload(ret), event_id)
    if closed:
        _emit(ret, "returns/close", return_status_payload(ret), event_id)
    _dispositions_emit(ret.shop, disposed, event_id)
    order_changed = _order_settle(order=order, done=done)
    _refund_emit(ret, done=done, at=now, event_id=event_id)
    if order_changed:
        dev_order_webhooks_emit(order=order, topics=["orders/updated"], event_id=event_id)
    logger.info(
        "devshop.returns.processed",
        extra={
            "shop": ret.shop.myshopify_domain,
            "return_id": ret.shopify_id,
            "closed": closed,
            "exchanged": len(done.booked),
        },
    )
    return ret

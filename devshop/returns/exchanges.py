"""Exchanges: returnCreate with exchange lines, booking them at processing, payment of what
the buyer owes; removeFromReturn and returnReopen.
"""

import logging
import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum

from devshop.models import (
    DevExchangeLineItem,
    DevLineItem,
    DevOrder,
    DevReturn,
    DevReverseFulfillmentOrder,
    DevReverseFulfillmentOrderDisposition,
    DevVariant,
)
from devshop.orders import dev_now, dev_order_touch, dev_order_webhooks_emit
from devshop.payloads_returns import (
    return_payload,
    return_status_payload,
    return_update_payload,
)
from devshop.returns.common import (
    ReturnInputError,
    UserError,
    _emit,
    _fail,
    _locked,
    _require,
    _touch,
)
from devshop.returns.requests import _return_lines_create, _return_lines_resolve
from devshop.returns.reverse import _reverse_fulfillment_order_create, _rfo_fully_disposed

logger = logging.getLogger(__name__)


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

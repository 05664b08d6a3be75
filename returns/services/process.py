"""Processing a return: returnProcess with refunds, store credit or exchanges, and what an
exchange books on the order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from returns import shopify
from returns.eligibility import return_quote
from returns.models import (
    Resolution,
    ReturnLineItem,
    ReturnRequest,
)
from returns.policy import return_policy_get
from returns.services.actions import _reverse_store
from returns.services.common import (
    _DONE,
    UNAVAILABLE_MESSAGE,
    ReturnActionError,
    ReturnShopifyUnavailable,
    Status,
    _fresh,
    _locked,
    _mutate,
    _one_at_a_time,
    _order_gid,
    _require,
    _return_gid,
    _step,
)
from shopapp.admin_api.client import (
    AdminApiClient,
    AdminApiError,
    admin_client_for_shop,
)
from shopapp.models import OrderEvent, Shop
from shopapp.orders.reconcile import legacy_id
from shopapp.orders.services import line_item_replacement_record

logger = logging.getLogger(__name__)


def _process_quantities(
    lines: list[ReturnLineItem], quantities: Mapping[int, int] | None
) -> list[tuple[ReturnLineItem, int]]:
    """Units to confirm now per line: those asked for; else received and not yet processed;
    else (nothing marked received) every unit not yet processed."""
    if quantities is not None:
        chosen = []
        by_pk = {line.pk: line for line in lines}
        for pk, quantity in quantities.items():
            line = by_pk.get(int(pk))
            if line is None:
                raise ReturnActionError("That item is not part of this return.", code="item")
            left = line.quantity - line.processed_quantity
            if not 0 <= int(quantity) <= left:
                raise ReturnActionError(
                    f"{line.line_item.title}: between 0 and {left}.", code="quantity"
                )
            if int(quantity) > 0:
                chosen.append((line, int(quantity)))
        return chosen
    received_any = any(line.received_quantity for line in lines)
    chosen = []
    for line in lines:
        ceiling = line.received_quantity if received_any else line.quantity
        left = min(ceiling, line.quantity) - line.processed_quantity
        if left > 0:
            chosen.append((line, left))
    return chosen


def _line_resolution(line: ReturnLineItem, request: ReturnRequest, override: str) -> str:
    """How a line is settled: the merchant's choice for the whole return when given (not
    MIXED), else the shopper's for the line, else the request's."""
    if override and override != Resolution.MIXED:
        return override
    resolution = line.resolution or request.resolution
    return resolution if resolution != Resolution.MIXED else Resolution.REFUND


@dataclass(frozen=True)
class _Settlement:
    """What one returnProcess pays back: to the original payment and as store credit."""

    refund: Decimal
    store_credit: Decimal
    store_credit_bonus: Decimal
    currency: str

    @property
    def total(self) -> Decimal:
        return self.refund + self.store_credit


def _process_input(
    *,
    client: AdminApiClient,
    request: ReturnRequest,
    resolution: str,
    quantities: Mapping[int, int] | None,
) -> tuple[
    dict[str, Any], _Settlement, list[tuple[ReturnLineItem, int]], list[tuple[ReturnLineItem, int]]
]:
    lines = list(request.line_items.select_related("line_item").order_by("pk"))
    chosen = _process_quantities(lines, quantities)
    if not chosen:
        raise ReturnActionError("Nothing is left to process on this return.", code="quantity")
    missing = [line for line, _q in chosen if not line.shopify_return_line_item_gid]
    if missing:
        raise ReturnActionError(
            "Shopify's line ids for this return are not known yet; try again in a minute.",
            code="not_synced",
        )
    exchanged = [
        (line, min(q, line.quantity - line.exchange_processed_quantity))
        for line, q in chosen
        if _line_resolution(line, request, resolution) == Resolution.EXCHANGE
        and line.shopify_exchange_line_item_gid
    ]
    exchanged = [(line, q) for line, q in exchanged if q > 0]
    first = not any(line.processed_quantity for line in lines)
    settlement = _settlement(
        client=client,
        request=request,
        resolution=resolution,
        chosen=chosen,
        exchanged=exchanged,
        first=first,
    )
    process: dict[str, Any] = {
        "returnId": _return_gid(request),
        "returnLineItems": [
            {"id": line.shopify_return_line_item_gid, "quantity": q} for line, q in chosen
        ],
        "exchangeLineItems": [
            {"id": line.shopify_exchange_line_item_gid, "quantity": q} for line, q in exchanged
        ],
        # The app's return_processed message tells the shopper.
        "notifyCustomer": False,
    }
    transfer = _financial_transfer(
        client=client, request=request, resolution=resolution, settlement=settlement
    )
    if transfer is not None:
        process["financialTransfer"] = transfer
    return process, settlement, chosen, exchanged


def _financial_transfer(
    *,
    client: AdminApiClient,
    request: ReturnRequest,
    resolution: str,
    settlement: _Settlement,
) -> dict[str, Any] | None:
    """ReturnProcessInput.financialTransfer: a refund to the order's payment
    (orderTransactions), store credit (refundMethods.storeCreditRefund), both in one
    issueRefund when the items were settled differently, or none (nothing to pay back)."""
    issue: dict[str, Any] = {"orderTransactions": []}
    currency = settlement.currency
    if settlement.refund > 0:
        # An exchange that leaves the shopper money is refunded in the same returnProcess
        # (financialTransfer is optional; without it Shopify books the exchange and the
        # money stays owed: "Migrate to return processing", even or refundable exchanges).
        parent = shopify.refund_parent_transaction(client, order_gid=_order_gid(request))
        if parent is None:
            raise ReturnActionError(
                "The order has no captured payment to refund the difference to; settle it in "
                "Shopify's admin."
                if resolution == Resolution.EXCHANGE
                else "The order's payment isn't captured, so there is nothing to refund it to: "
                "capture the payment in Shopify first, or settle as store credit.",
                code="no_payment",
            )
        issue["orderTransactions"] = [
            {
                "transactionAmount": {"amount": str(settlement.refund), "currencyCode": currency},
                "parentId": parent,
            }
        ]
    if settlement.store_credit > 0:
        issue["refundMethods"] = [
            {
                "storeCreditRefund": {
                    "amount": {"amount": str(settlement.store_credit), "currencyCode": currency}
                }
            }
        ]
        if settlement.store_credit_bonus > 0:
            # The bonus is the merchant's gift on top of what was paid: with it, an order
            # returned in full pays back more than its total, which Shopify refuses unless
            # asked (ReturnProcessRefundInput.allowOverRefunding).
            issue["allowOverRefunding"] = True
    if settlement.total <= 0:
        return None
    return {"issueRefund": issue}


def _settlement(
    *,
    client: AdminApiClient,
    request: ReturnRequest,
    resolution: str,
    chosen: list[tuple[ReturnLineItem, int]],
    exchanged: list[tuple[ReturnLineItem, int]],
    first: bool,
) -> _Settlement:
    """What the units processed now pay back, computed by ``return_quote`` as the review
    showed it: each unit by its line's resolution (or the merchant's for the whole return),
    the store credit bonus the request was submitted with, the return shipping fee once, at
    the first processing. An exchanged unit brings back its value less the price of the unit
    sent in its place, to the original payment; a unit with nothing to exchange it for (the
    exchange line already used) is refunded. Zero when the shopper owes money instead:
    Shopify then holds the exchange until paid (``amount_outstanding``)."""
    prices = (
        shopify.exchange_unit_prices(client, return_gid=_return_gid(request)) if exchanged else {}
    )
    sent_price: dict[int, Decimal] = {}
    for line, _quantity in exchanged:
        price = prices.get(line.shopify_exchange_line_item_gid)
        if price is None:
            raise ReturnActionError(
                f"{line.line_item.title}: Shopify no longer has the variant sent in exchange; "
                "settle this return in Shopify's admin.",
                code="variant",
            )
        sent_price[line.pk] = price
    swapped = {line.pk: quantity for line, quantity in exchanged}
    items: list[tuple[Any, ...]] = []
    for line, quantity in chosen:
        if swapped.get(line.pk):
            # The unit sent in its place at Shopify's price: the quote sets the difference
            # against the refund (or owes it), as the review showed it.
            items.append(
                (line.line_item, swapped[line.pk], Resolution.EXCHANGE, sent_price[line.pk])
            )
        rest = quantity - swapped.get(line.pk, 0)
        if rest > 0:
            line_resolution = _line_resolution(line, request, resolution)
            items.append(
                (
                    line.line_item,
                    rest,
                    Resolution.STORE_CREDIT
                    if line_resolution == Resolution.STORE_CREDIT
                    else Resolution.REFUND,
                )
            )
    quote = return_quote(
        shop=request.shop,
        order=request.order,
        items=items,
        bonus_percent=request.store_credit_bonus_percent,
        with_shipping_fee=False,
    )
    refund = quote.refund_total
    credit = quote.store_credit_total
    shipping = quote_shipping_fee(request) if first else Decimal("0")
    from_refund = max(Decimal("0"), min(refund, shipping))
    refund -= from_refund
    credit -= min(credit, shipping - from_refund)
    return _Settlement(
        refund=max(Decimal("0.00"), refund.quantize(Decimal("0.01"))),
        store_credit=max(Decimal("0.00"), credit.quantize(Decimal("0.01"))),
        store_credit_bonus=quote.store_credit_bonus if credit > 0 else Decimal("0.00"),
        currency=quote.currency,
    )


def quote_shipping_fee(request: ReturnRequest) -> Decimal:
    """The return shipping fee the policy charges once per return (none when the shopper
    keeps the items)."""
    if request.is_returnless:
        return Decimal("0.00")
    fee = return_policy_get(shop=request.shop).return_shipping_fee
    return fee.quantize(Decimal("0.01")) if fee > 0 else Decimal("0.00")


@_one_at_a_time
def return_request_process(
    *,
    shop: Shop,
    request: ReturnRequest,
    resolution: str | None = None,
    quantities: Mapping[int, int] | None = None,
) -> ReturnRequest:
    """returnProcess: confirm units and settle them as ``resolution`` (default: the shopper's
    choice, item by item; MIXED too). Units: ``quantities`` ({ReturnLineItem.pk: units
    now}), else those received and not yet processed, else every unprocessed unit; a later
    call processes the rest.
    Refund to the original payment (financialTransfer.issueRefund with the order's payment as
    parent), store credit (refundMethods.storeCreditRefund), or exchange: the exchange lines
    made by returnCreate are confirmed with the same units (exchangeLineItems), which books
    them on the order; an exchange worth less than what came back (or lines returned without
    an exchange) refunds the difference less the policy's fees to the original payment in the
    same call (``_settlement``); one worth more leaves the buyer owing the
    difference (the order's totalOutstandingSet), kept in ``amount_outstanding`` for the
    merchant to collect. Money paid back adds to ``refunded_amount``."""
    resolution = resolution or request.resolution
    if resolution not in Resolution.values:
        raise ReturnActionError("Choose refund, store credit or exchange.", code="resolution")
    request = _fresh(request, shop)
    _require(request, {Status.OPEN}, "processed")
    client = admin_client_for_shop(shop)
    unmapped = request.line_items.filter(
        exchange_variant_id__isnull=False, shopify_exchange_line_item_gid=""
    ).exists()
    if resolution in (Resolution.EXCHANGE, Resolution.MIXED) and unmapped:
        # Approved while our call's answer was lost (the webhook linked it): read the ids.
        returned = _mutate(shopify.return_fetch, client, return_gid=_return_gid(request)) or {}
        with transaction.atomic():
            _reverse_store(_locked(request, shop), returned)
    try:
        process, settlement, chosen, exchanged = _process_input(
            client=client, request=request, resolution=resolution, quantities=quantities
        )
    except AdminApiError as exc:
        raise ReturnShopifyUnavailable(UNAVAILABLE_MESSAGE, code="unavailable") from exc
    started = timezone.now()
    result = _mutate(shopify.return_process_send, client, process_input=process)
    request = _processed_record(
        shop=shop,
        request=request,
        resolution=resolution,
        result=result,
        processed=_Processed(chosen=chosen, exchanged=exchanged, settlement=settlement),
        started=started,
    )
    logger.info(
        "returns.request.processed",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk, "resolution": resolution},
    )
    return request


@dataclass(frozen=True)
class _Processed:
    """What one returnProcess settled: the units, and the money."""

    chosen: list[tuple[ReturnLineItem, int]]
    exchanged: list[tuple[ReturnLineItem, int]]
    settlement: _Settlement


def _processed_record(
    *,
    shop: Shop,
    request: ReturnRequest,
    resolution: str,
    result: dict[str, Any],
    processed: _Processed,
    started: datetime,
) -> ReturnRequest:
    """Step 3 of the action: lock, write the units and money Shopify settled, one step."""
    outstanding = (
        ((result.get("order") or {}).get("totalOutstandingSet") or {}).get("shopMoney") or {}
    ).get("amount")
    chosen, exchanged = processed.chosen, processed.exchanged
    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        for line, quantity in chosen:
            ReturnLineItem.objects.filter(pk=line.pk).update(
                processed_quantity=min(line.quantity, line.processed_quantity + quantity)
            )
        for line, quantity in exchanged:
            ReturnLineItem.objects.filter(pk=line.pk).update(
                exchange_processed_quantity=min(
                    line.quantity, line.exchange_processed_quantity + quantity
                )
            )
        # The returns/process echo may have been applied first; then it recorded this step.
        echoed = request.processed_at is not None and request.processed_at >= started
        request.processed_at = now
        request.resolution = resolution
        settlement = processed.settlement
        request.refunded_amount += settlement.total
        _replacements_record(request, result)
        if outstanding is not None and exchanged:
            # What the order still owes once the exchange is booked: Shopify holds the
            # replacement until it is paid. Not for a refund or store credit: an order whose
            # payment is only authorized owes its whole total, which no return changed.
            request.amount_outstanding = Decimal(str(outstanding))
        detail: dict[str, Any] = {
            "resolution": resolution,
            "amount": str(settlement.total),
            "units": sum(q for _line, q in chosen),
        }
        if settlement.refund > 0 and settlement.store_credit > 0:
            # Items settled differently: the news says how much went where.
            detail["refund"] = str(settlement.refund)
            detail["store_credit"] = str(settlement.store_credit)
        if settlement.store_credit_bonus > 0:
            detail["store_credit_bonus"] = str(settlement.store_credit_bonus)
        if exchanged:
            detail["exchange_variant_ids"] = [line.exchange_variant_id for line, _q in exchanged]
        if request.amount_outstanding > 0:
            detail["amount_outstanding"] = str(request.amount_outstanding)
        closed = result.get("status") == Status.CLOSED and request.status not in _DONE
        if closed:
            request.status = Status.CLOSED
            request.closed_at = now
        request.save()
        if not echoed:
            _step(
                request=request,
                step="processed",
                source=OrderEvent.Source.STAFF,
                occurred_at=now,
                detail=detail,
                dedupe_suffix=f":{now.isoformat()}",
            )
        if closed:
            _step(request=request, step="closed", source=OrderEvent.Source.APP, occurred_at=now)
    return request


def _replacements_record(request: ReturnRequest, returned: dict[str, Any]) -> None:
    """Tell the order mirror which lines an exchange booked and what each replaces, so the
    replacement's parcel says so ("replaces your Linen shirt · M")."""
    nodes = ((returned.get("exchangeLineItems") or {}).get("nodes")) or []
    by_gid = {
        line.shopify_exchange_line_item_gid: line
        for line in request.line_items.select_related("line_item")
        if line.shopify_exchange_line_item_gid
    }
    for node in nodes:
        line = by_gid.get(node.get("id"))
        for booked in (node.get("lineItems") or []) if line is not None else []:
            new_id = legacy_id(booked.get("id"))
            if new_id is not None and line is not None:
                line_item_replacement_record(
                    shop=request.shop,
                    order=request.order,
                    line_item_shopify_id=new_id,
                    replaces_line_item_shopify_id=line.line_item.shopify_id,
                )

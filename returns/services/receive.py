"""Receiving returned items: reverseFulfillmentOrderDispose for the units Shopify lacks."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from returns import shopify
from returns.models import (
    ReturnLineItem,
    ReturnRequest,
)
from returns.services.actions import _reverse_store
from returns.services.common import (
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
    UserErrors,
    admin_client_for_shop,
)
from shopapp.models import OrderEvent, Shop

logger = logging.getLogger(__name__)


# What a merchant may choose when items come back (Shopify's
# ReverseFulfillmentOrderDispositionType). PROCESSING_REQUIRED and MISSING stay in Shopify's
# admin: neither says the item is back and sellable, which is what "received" means here.
RECEIVE_DISPOSITIONS = ("RESTOCKED", "NOT_RESTOCKED")


def _received_apply(
    *,
    request: ReturnRequest,
    totals: Mapping[int, int],
    source: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Raise the received units of the (locked) request's lines to ``totals`` ({line pk: units
    Shopify is known to have disposed}), never above a line's quantity and never down, and
    record one ``return.received`` step for what moved. The step's key is the lines it moved
    and their new totals: a dispose call's answer and its webhook echo move the same lines to
    the same totals, so whichever is applied second finds nothing left to move (or the step
    already there). Returns {line pk: new total} for the lines moved."""
    changed: dict[str, int] = {}
    for line in request.line_items.select_for_update().order_by("pk"):
        received = min(line.quantity, max(line.received_quantity, totals.get(line.pk, 0)))
        if received > line.received_quantity:
            line.received_quantity = received
            line.save(update_fields=["received_quantity"])
            changed[str(line.pk)] = received
    if changed:
        request.received_at = at
        request.save(update_fields=["received_at", "updated_at"])
        _step(
            request=request,
            step="received",
            source=source,
            occurred_at=at,
            detail={"quantities": changed} | (detail or {}),
            dedupe_suffix=":" + ",".join(f"{k}={v}" for k, v in sorted(changed.items())),
        )
    return changed


def _dispose_errors_text(exc: UserErrors, sent: Sequence[ReturnLineItem]) -> str:
    """Shopify's userErrors for a dispose call, each named after the item it is about (the
    field path is ["dispositionInputs", index, …], in the order the lines were sent)."""
    messages = []
    for error in exc.user_errors:
        field = error.get("field") or []
        message = str(error.get("message") or "").strip() or "Shopify refused the change"
        index = int(field[1]) if len(field) > 1 and str(field[1]).isdigit() else None
        if index is not None and index < len(sent):
            message = f"{sent[index].line_item.title}: {message}"
        messages.append(message if message.endswith(".") else message + ".")
    return " ".join(messages) or "Shopify refused the change."


def _receipt_wanted(
    lines: dict[int, ReturnLineItem], quantities: Mapping[int, int]
) -> dict[int, int]:
    """{line pk: units received in all}, checked against the return's lines."""
    wanted: dict[int, int] = {}
    for pk, raw in quantities.items():
        line = lines.get(int(pk))
        if line is None:
            raise ReturnActionError("That item is not part of this return.", code="item")
        quantity = int(raw)
        title = line.line_item.title
        if not 0 <= quantity <= line.quantity:
            raise ReturnActionError(f"{title}: between 0 and {line.quantity}.", code="quantity")
        if quantity < line.received_quantity:
            raise ReturnActionError(
                f"{title}: {line.received_quantity} already received; Shopify can't take a "
                "receipt back.",
                code="quantity",
            )
        wanted[line.pk] = quantity
    if not any(q > 0 for q in wanted.values()):
        raise ReturnActionError("Enter how many items came back.", code="quantity")
    return wanted


def _lines_of(request: ReturnRequest) -> dict[int, ReturnLineItem]:
    return {line.pk: line for line in request.line_items.select_related("line_item")}


def _unmapped(
    request: ReturnRequest, lines: dict[int, ReturnLineItem], wanted: dict[int, int]
) -> bool:
    return not request.reverse_fulfillment_order_gid or any(
        not lines[pk].reverse_fulfillment_order_line_item_gid for pk, q in wanted.items() if q
    )


def _reverse_ids_ensure(
    *, shop: Shop, client: AdminApiClient, request: ReturnRequest, wanted: dict[int, int]
) -> tuple[ReturnRequest, dict[int, ReturnLineItem]]:
    """The reverse fulfillment order ids the dispose call names; read from Shopify when the
    app lacks them (approved in Shopify's admin, or our approval's answer was lost)."""
    lines = _lines_of(request)
    if not _unmapped(request, lines, wanted):
        return request, lines
    returned = _mutate(shopify.return_fetch, client, return_gid=_return_gid(request)) or {}
    with transaction.atomic():
        _reverse_store(_locked(request, shop), returned)
    request = _fresh(request, shop)
    lines = _lines_of(request)
    if _unmapped(request, lines, wanted):
        raise ReturnActionError(
            "Shopify has no reverse fulfillment order for these items yet; try again in a minute.",
            code="not_synced",
        )
    return request, lines


def _dispositions_input(
    *,
    lines: dict[int, ReturnLineItem],
    wanted: dict[int, int],
    totals: dict[int, int],
    disposition: str,
    locations: dict[str, str],
) -> tuple[list[dict[str, Any]], list[ReturnLineItem]]:
    """The units Shopify has not disposed yet, as ReverseFulfillmentOrderDisposeInput."""
    inputs: list[dict[str, Any]] = []
    sent: list[ReturnLineItem] = []
    for pk, target in sorted(wanted.items()):
        line = lines[pk]
        units = target - max(line.received_quantity, totals[pk])
        if units <= 0:
            continue
        entry: dict[str, Any] = {
            "reverseFulfillmentOrderLineItemId": line.reverse_fulfillment_order_line_item_gid,
            "quantity": units,
            "dispositionType": disposition,
        }
        if disposition == "RESTOCKED":
            # Required for RESTOCKED (ReverseFulfillmentOrderDisposeInput.locationId): the
            # location whose fulfillment shipped the item takes it back.
            location = locations.get(line.fulfillment_line_item_gid)
            if not location:
                raise ReturnActionError(
                    f"{line.line_item.title}: Shopify doesn't say which location shipped it; "
                    "choose not to restock, or restock it in Shopify's admin.",
                    code="location",
                )
            entry["locationId"] = location
        inputs.append(entry)
        sent.append(line)
    return inputs, sent


def _dispose_send(
    client: AdminApiClient,
    *,
    inputs: list[dict[str, Any]],
    sent: list[ReturnLineItem],
    totals: dict[int, int],
) -> None:
    """reverseFulfillmentOrderDispose; the answer's totals raise ``totals``."""
    try:
        answered = shopify.reverse_fulfillment_order_dispose_send(client, dispositions=inputs)
    except UserErrors as exc:
        raise ReturnActionError(_dispose_errors_text(exc, sent), code="user_errors") from exc
    except AdminApiError as exc:
        raise ReturnShopifyUnavailable(UNAVAILABLE_MESSAGE, code="unavailable") from exc
    for line in sent:
        gid = line.reverse_fulfillment_order_line_item_gid
        totals[line.pk] = max(totals[line.pk], answered.get(gid, 0))


@_one_at_a_time
def return_items_receive(
    *,
    shop: Shop,
    request: ReturnRequest,
    quantities: Mapping[int, int],
    disposition: str,
) -> ReturnRequest:
    """Record what came back ({ReturnLineItem.pk: units received in all}) and tell Shopify:
    reverseFulfillmentOrderDispose as ``disposition``, RESTOCKED at the location that shipped
    each item or NOT_RESTOCKED. Shopify disposes units, not totals, so only the units it has
    not disposed yet are sent: Shopify's dispositions are read first, which also keeps a retry
    after a lost answer from disposing the same units twice. A receipt that adds nothing
    changes nothing. Received units never go down (a disposition can't be taken back).

    Shopify's userErrors raise ReturnActionError (named after the item), an unreachable
    Shopify ReturnShopifyUnavailable; nothing is written here then. The webhook the call fires
    (reverse_fulfillment_orders/dispose, ``_dispose_apply``) and the call's answer, in either
    order, make one timeline step (see ``_received_apply``)."""
    if disposition not in RECEIVE_DISPOSITIONS:
        raise ReturnActionError("Choose whether the items go back into stock.", code="disposition")
    request = _fresh(request, shop)
    _require(request, {Status.OPEN}, "received")
    wanted = _receipt_wanted(_lines_of(request), quantities)
    client = admin_client_for_shop(shop)
    request, lines = _reverse_ids_ensure(shop=shop, client=client, request=request, wanted=wanted)
    state = _mutate(
        shopify.reverse_fulfillment_order_state,
        client,
        rfo_gid=request.reverse_fulfillment_order_gid,
        order_gid=_order_gid(request),
    )
    disposed: dict[str, int] = state["disposed"]
    totals = {
        pk: disposed.get(line.reverse_fulfillment_order_line_item_gid, 0)
        for pk, line in lines.items()
    }
    inputs, sent = _dispositions_input(
        lines=lines,
        wanted=wanted,
        totals=totals,
        disposition=disposition,
        locations=state["locations"],
    )
    if inputs:
        _dispose_send(client, inputs=inputs, sent=sent, totals=totals)
    with transaction.atomic():
        request = _locked(request, shop)
        changed = _received_apply(
            request=request,
            totals=totals,
            source=OrderEvent.Source.STAFF,
            at=timezone.now(),
            detail={"disposition": disposition},
        )
    logger.info(
        "returns.request.received",
        extra={
            "shop": shop.myshopify_domain,
            "return_id": request.pk,
            "disposed_lines": len(inputs),
            "lines_moved": len(changed),
        },
    )
    return request

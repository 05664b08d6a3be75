"""A request as Shopify takes it and gives it back: the lines' input, their signature (to
recognise a return a timed-out call created), and the ids Shopify assigned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from returns import shopify
from returns.models import (
    Resolution,
    ReturnPolicy,
    ReturnRequest,
)
from returns.policy import (
    REASON_DEFINITIONS_SINCE,
    reason_enum,
    reason_handle,
)
from returns.services.common import (
    CUSTOMER_NOTE_MAX,
    RETURN_REASON_NOTE_MAX,
    _api_version_at_least,
    _order_gid,
)
from shopapp.admin_api.client import (
    AdminApiClient,
)

logger = logging.getLogger(__name__)


def _request_lines_input(
    *,
    client: AdminApiClient,
    request: ReturnRequest,
    policy: ReturnPolicy,
    for_create: bool = False,
) -> list[dict[str, Any]]:
    """ReturnRequestLineItemInput dicts, or ReturnLineItemInput ones for returnCreate
    (``for_create``: the shopper's note goes in ``returnReasonNote``, at most 255)."""
    lines = list(request.line_items.order_by("pk"))
    definitions: dict[str, str] = {}
    # From 2026-01 a reason is named by its ReturnReasonDefinition; the enum is deprecated
    # (changelog "New return reason definitions API"). Older versions only know the enum.
    use_definitions = _api_version_at_least(client.api_version, REASON_DEFINITIONS_SINCE)
    if use_definitions:
        definitions = shopify.reason_definition_ids(client)
    payload = []
    for line in lines:
        entry: dict[str, Any] = {
            "fulfillmentLineItemId": line.fulfillment_line_item_gid,
            "quantity": line.quantity,
        }
        definition_id = definitions.get(reason_handle(line.reason)) if use_definitions else None
        if definition_id:
            entry["returnReasonDefinitionId"] = definition_id
        else:
            entry["returnReason"] = reason_enum(line.reason)
        if line.customer_note and for_create:
            entry["returnReasonNote"] = line.customer_note[:RETURN_REASON_NOTE_MAX]
        elif line.customer_note:
            entry["customerNote"] = line.customer_note[:CUSTOMER_NOTE_MAX]
        # No restocking fee on an item exchanged: its value goes to the new item.
        line_resolution = line.resolution or request.resolution
        if policy.restocking_fee_percent > 0 and line_resolution != Resolution.EXCHANGE:
            entry["restockingFee"] = {"percentage": float(policy.restocking_fee_percent)}
        payload.append(entry)
    return payload


def _lines_signature(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Fulfillment line item and quantity per line, in a stable order: how a return in Shopify
    is recognised as one of ours (same order, same lines, same quantities)."""
    return sorted((gid, int(q)) for gid, q in pairs if gid)


def _request_signature(request: ReturnRequest) -> list[tuple[str, int]]:
    return _lines_signature(
        (line.fulfillment_line_item_gid, line.quantity) for line in request.line_items.all()
    )


def _send_started_mark(request: ReturnRequest) -> None:
    """Committed before the create call, so that a retry after a timeout knows Shopify may
    already hold the return."""
    now = timezone.now()
    ReturnRequest.objects.filter(pk=request.pk, send_started_at__isnull=True).update(
        send_started_at=now
    )
    request.send_started_at = request.send_started_at or now


def _adopt_sent(
    client: AdminApiClient, request: ReturnRequest, *, statuses: set[str]
) -> dict[str, Any] | None:
    """The return an earlier, timed-out call created, if Shopify holds one: same order, same
    lines and quantities, in ``statuses``, and not already another local request's. Read from
    the order's ``returns`` connection, then in full (RETURN_FULL_FIELDS)."""
    wanted = _request_signature(request)
    for found in shopify.order_returns_fetch(client, order_gid=_order_gid(request)):
        if found["status"] not in statuses or _lines_signature(found["lines"]) != wanted:
            continue
        numeric = shopify.gid_numeric(found["id"])
        taken = (
            ReturnRequest.objects.filter(shop_id=request.shop_id, shopify_return_id=numeric)
            .exclude(pk=request.pk)
            .exists()
        )
        if taken:
            continue
        logger.info(
            "returns.send.adopted",
            extra={"shop": request.shop.myshopify_domain, "return_id": request.pk},
        )
        return shopify.return_fetch(client, return_gid=found["id"])
    return None


def _shopify_id_assign(request: ReturnRequest, returned: dict[str, Any]) -> bool:
    """Link the (locked) request to Shopify's return; False when it is already linked to
    another one (a webhook attached a different return meanwhile: nothing to write)."""
    numeric = shopify.gid_numeric(returned.get("id"))
    if request.shopify_return_id is not None and request.shopify_return_id != numeric:
        logger.warning(
            "returns.send.conflict",
            extra={"shop_id": request.shop_id, "return_id": request.pk},
        )
        return False
    request.shopify_return_id = numeric
    return True


def _line_gids_store(*, request: ReturnRequest, nodes: list[dict] | None) -> None:
    """Map Shopify's ReturnLineItem ids onto ours by fulfillment line item (returnProcess
    names return line items)."""
    by_fli: dict[str, list[str]] = {}
    for node in nodes or []:
        fli = (node.get("fulfillmentLineItem") or {}).get("id")
        if fli and node.get("id"):
            by_fli.setdefault(fli, []).append(node["id"])
    for line in request.line_items.filter(shopify_return_line_item_gid=""):
        gids = by_fli.get(line.fulfillment_line_item_gid) or []
        if gids:
            line.shopify_return_line_item_gid = gids.pop(0)
            line.save(update_fields=["shopify_return_line_item_gid"])

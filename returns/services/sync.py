"""Shopify to the app: returns/* webhooks ordered by Shopify's clock, and reading a return
back when webhooks leave doubt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from returns import shopify
from returns.models import (
    Resolution,
    ReturnLineItem,
    ReturnRequest,
)
from returns.services.actions import _reverse_store
from returns.services.common import (
    _RANK,
    CUSTOMER_NOTE_MAX,
    DECLINE_NOTE_MAX,
    ECHO_SLACK,
    ReturnNotYetSynced,
    ReturnOrderMissing,
    Status,
    _locked,
    _return_gid,
    _step,
)
from returns.services.process import _replacements_record
from returns.services.receive import _received_apply
from returns.services.requests import _line_gids_store, _lines_signature, _request_signature
from shopapp.admin_api.client import (
    admin_client_for_shop,
)
from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import LineItem, Order, OrderEvent, Shop

logger = logging.getLogger(__name__)


_TOPIC_STATUS: dict[str, str] = {
    "returns/request": Status.REQUESTED,
    "returns/approve": Status.OPEN,
    "returns/decline": Status.DECLINED,
    "returns/cancel": Status.CANCELED,
    "returns/close": Status.CLOSED,
    "returns/reopen": Status.OPEN,
}


_STATUS_STEP: dict[str, str] = {
    Status.REQUESTED: "requested",
    Status.OPEN: "approved",
    Status.DECLINED: "declined",
    Status.CANCELED: "canceled",
    Status.CLOSED: "closed",
}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _return_id(payload: dict) -> int | None:
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and "/Return/" in gid:
        return shopify.gid_numeric(gid)
    return _int(payload.get("id"))


def _order_id(payload: dict) -> int | None:
    order = payload.get("order") or {}
    return _int(order.get("id")) or _int(payload.get("order_id"))


def _pending_match(*, shop: Shop, order: Order, payload: dict) -> ReturnRequest | None:
    """Our own request a returns webhook is about, before our call's answer was stored (a
    timeout, or the webhook simply came first): not linked yet, still being sent (SUBMITTED)
    or an exchange held for approval, with the same lines and quantities. Locked."""
    signature = _lines_signature(
        (
            (row.get("fulfillment_line_item") or {}).get("admin_graphql_api_id") or "",
            _int(row.get("quantity")) or 0,
        )
        for row in payload.get("return_line_items") or []
        if isinstance(row, dict)
    )
    if not signature:
        return None
    candidates = (
        ReturnRequest.objects.select_for_update()
        .select_related("order", "shop")
        .filter(shop=shop, order=order, shopify_return_id__isnull=True)
        .filter(
            Q(status=Status.SUBMITTED, sync_state=ReturnRequest.SyncState.PENDING)
            | Q(status=Status.REQUESTED, sync_state=ReturnRequest.SyncState.HELD)
        )
        .order_by("created_at", "pk")
    )
    for candidate in candidates:
        if _request_signature(candidate) == signature:
            return candidate
    return None


def _request_from_payload(
    *, shop: Shop, return_id: int, payload: dict, status: str
) -> tuple[ReturnRequest, bool]:
    """(request, attached): our own pending request the webhook is about (attached to Shopify's
    return), or a new local copy of a return the merchant made in Shopify's admin (or one
    whose creation we missed)."""
    order_id = _order_id(payload)
    order = (
        Order.objects.filter(shop=shop, shopify_id=order_id).first()
        if order_id is not None
        else None
    )
    if order is None:
        # The order webhook may still be on its way: the job retries (RQ Retry).
        raise ReturnOrderMissing(f"order {order_id} of return {return_id} not mirrored yet")
    mine = _pending_match(shop=shop, order=order, payload=payload)
    if mine is not None:
        mine.shopify_return_id = return_id
        mine.name = mine.name or (payload.get("name") or "")[:64]
        mine.sync_state = ReturnRequest.SyncState.SYNCED
        mine.sync_error = ""
        mine.save()
        logger.info(
            "returns.webhook.attached",
            extra={"shop": shop.myshopify_domain, "return_id": mine.pk},
        )
        return mine, True
    waiting = ReturnRequest.objects.filter(
        shop=shop,
        order=order,
        shopify_return_id__isnull=True,
        status=Status.SUBMITTED,
        sync_state=ReturnRequest.SyncState.PENDING,
    ).exists()
    if waiting:
        # A request of ours on this order is being sent and its lines are not known to match
        # (e.g. not split per fulfillment line yet): wait for the send job rather than risk a
        # second local copy. The job retries.
        raise ReturnNotYetSynced(f"return {return_id}: a local request is being sent")
    created = ReturnRequest.objects.create(
        shop=shop,
        order=order,
        shopify_return_id=return_id,
        name=(payload.get("name") or "")[:64],
        status=status,
        sync_state=ReturnRequest.SyncState.SYNCED,
        resolution=Resolution.EXCHANGE if payload.get("exchange_line_items") else Resolution.REFUND,
        customer_id=order.customer_id,
        customer_email=(order.email or "").lower(),
        currency=order.currency,
    )
    return created, False


def _lines_from_payload(*, request: ReturnRequest, payload: dict) -> None:
    if request.line_items.exists():
        return
    for row in payload.get("return_line_items") or []:
        fli = row.get("fulfillment_line_item") or {}
        line_item_id = _int((fli.get("line_item") or {}).get("id"))
        if line_item_id is None:
            continue
        line_item = LineItem.objects.filter(
            shop=request.shop, order=request.order, shopify_id=line_item_id
        ).first()
        if line_item is None:
            continue
        ReturnLineItem.objects.create(
            shop=request.shop,
            return_request=request,
            line_item=line_item,
            fulfillment_line_item_gid=fli.get("admin_graphql_api_id") or "",
            shopify_return_line_item_gid=row.get("admin_graphql_api_id") or "",
            quantity=_int(row.get("quantity")) or 0,
            reason=str(row.get("return_reason") or "unknown").upper(),
            customer_note=(row.get("customer_note") or "")[:CUSTOMER_NOTE_MAX],
        )


def _status_apply(
    *, request: ReturnRequest, status: str, topic: str, at: datetime, payload: dict
) -> bool:
    """Move the status per the module's rule; True when it moved."""
    if request.shopify_status_at and at < request.shopify_status_at:
        return False
    current = request.status
    if topic == "returns/reopen":
        if current != Status.CLOSED:
            return False
    elif _RANK.get(status, 0) <= _RANK.get(current, 0):
        return False
    _status_set(
        request,
        status,
        at=at,
        decline=payload.get("decline") or {},
        reopen=topic == "returns/reopen",
    )
    request.shopify_status_at = at
    request.save()
    return True


def _status_set(
    request: ReturnRequest, status: str, *, at: datetime, decline: dict, reopen: bool
) -> None:
    """Set ``status`` and the moment (and, for a decline, the why) that goes with it; unsaved.
    A webhook's move and a status read from Shopify (``return_refresh``) alike."""
    request.status = status
    if status == Status.REQUESTED:
        request.requested_at = request.requested_at or at
    elif status == Status.OPEN and reopen:
        request.closed_at = None
    elif status == Status.OPEN:
        request.approved_at = request.approved_at or at
    elif status == Status.DECLINED:
        request.declined_at = at
        request.decline_reason = str(decline.get("reason") or "").upper()[:32]
        request.decline_note = (decline.get("note") or "")[:DECLINE_NOTE_MAX]
    elif status == Status.CANCELED:
        request.canceled_at = at
    elif status == Status.CLOSED:
        request.closed_at = at


def _webhook_return_id(topic: str, payload: dict) -> int | None:
    if topic == "reverse_deliveries/attach_deliverable":
        found = payload.get("return") or {}
        return _int(found.get("id")) or shopify.gid_numeric(found.get("admin_graphql_api_id"))
    return _return_id(payload)


def _webhook_status(topic: str, payload: dict) -> str | None:
    """The status a topic says the return is in (returns/process: closed, or no change)."""
    if topic == "returns/process":
        return Status.CLOSED if str(payload.get("status")).lower() == "closed" else None
    return _TOPIC_STATUS.get(topic)


@dataclass
class _Applied:
    request: ReturnRequest
    # The status moved forward (a new step for the timeline).
    moved: bool
    # Shopify should be read back (webhooks left doubt).
    refresh: bool = False


def _known_return_apply(
    *, request: ReturnRequest, status: str | None, topic: str, at: datetime, payload: dict
) -> _Applied:
    moved = status is not None and _status_apply(
        request=request, status=status, topic=topic, at=at, payload=payload
    )
    # Dropped by the order rule while it disagrees with ours, or a reopen with nothing to
    # reopen (its close not here yet, or in the same second): ask Shopify.
    refresh = bool(status) and not moved and (status != request.status or topic == "returns/reopen")
    return _Applied(request=request, moved=moved, refresh=refresh)


def _new_return_apply(
    *, shop: Shop, return_id: int, status: str | None, topic: str, at: datetime, payload: dict
) -> _Applied | None:
    """A return the app does not know: one of ours pending, or one made in Shopify's admin."""
    if _order_id(payload) is None:
        # returns/update and reverse deliveries carry no order: nothing to attach to until
        # returns/request (always sent) has created the return here.
        logger.info(
            "returns.webhook.unknown_return", extra={"shop": shop.myshopify_domain, "topic": topic}
        )
        return None
    request, attached = _request_from_payload(
        shop=shop, return_id=return_id, payload=payload, status=status or Status.REQUESTED
    )
    if attached:
        moved = status is not None and _status_apply(
            request=request, status=status, topic=topic, at=at, payload=payload
        )
        return _Applied(request=request, moved=moved)
    request.shopify_status_at = at
    request.requested_at = at
    request.save()
    return _Applied(request=request, moved=True)


def _deliverable_apply(*, request: ReturnRequest, payload: dict, at: datetime) -> None:
    """reverse_deliveries/attach_deliverable: the label and tracking of the way back."""
    deliverable = payload.get("shipping_deliverable") or {}
    tracking = deliverable.get("tracking") or {}
    request.reverse_delivery_gid = str(payload.get("admin_graphql_api_id") or "")[:255]
    request.return_tracking_number = (
        tracking.get("tracking_number") or request.return_tracking_number or ""
    )[:255]
    request.return_tracking_url = (
        tracking.get("tracking_url") or request.return_tracking_url or ""
    )[:1000]
    request.label_url = (
        (deliverable.get("label") or {}).get("public_file_url") or request.label_url or ""
    )[:1000]
    request.save()
    _step(
        request=request,
        step="label_attached",
        source=OrderEvent.Source.WEBHOOK,
        occurred_at=at,
        detail={
            "carrier": tracking.get("carrier_name"),
            "tracking_number": tracking.get("tracking_number"),
        },
        dedupe_suffix=f":{_int(payload.get('id'))}",
    )


def _processed_apply(*, request: ReturnRequest, at: datetime) -> bool:
    """returns/process. Our own returnProcess is echoed here: its processed_at was written
    after Shopify answered, so it is not older than the echo. Only a processing made elsewhere
    (in Shopify's admin) is a new step; it returns True: read the units it processed."""
    if request.processed_at is not None and request.processed_at >= at - ECHO_SLACK:
        return False
    request.processed_at = at
    request.save(update_fields=["processed_at", "updated_at"])
    _step(
        request=request,
        step="processed",
        source=OrderEvent.Source.WEBHOOK,
        occurred_at=at,
        dedupe_suffix=f":{at.isoformat()}",
    )
    return True


def _status_step_record(*, request: ReturnRequest, topic: str, at: datetime) -> None:
    source = OrderEvent.Source.WEBHOOK
    if topic == "returns/reopen":
        _step(
            request=request,
            step="reopened",
            source=source,
            occurred_at=at,
            dedupe_suffix=f":{at.isoformat()}",
        )
    elif request.status in _STATUS_STEP:
        _step(request=request, step=_STATUS_STEP[request.status], source=source, occurred_at=at)


def return_webhook_apply(
    *, shop: Shop, topic: str, payload: dict, triggered_at: datetime | None = None
) -> ReturnRequest | None:
    """Apply one returns/* or reverse logistics webhook to the local return. Idempotent."""
    at = triggered_at or timezone.now()
    if topic == "reverse_fulfillment_orders/dispose":
        return _dispose_apply(shop=shop, payload=payload, at=at)
    return_id = _webhook_return_id(topic, payload)
    if return_id is None:
        logger.warning(
            "returns.webhook.no_id", extra={"shop": shop.myshopify_domain, "topic": topic}
        )
        return None
    status = _webhook_status(topic, payload)
    with transaction.atomic():
        request = (
            ReturnRequest.objects.select_for_update()
            .select_related("order", "shop")
            .filter(shop=shop, shopify_return_id=return_id)
            .first()
        )
        if request is None:
            applied = _new_return_apply(
                shop=shop, return_id=return_id, status=status, topic=topic, at=at, payload=payload
            )
            if applied is None:
                return None
        else:
            applied = _known_return_apply(
                request=request, status=status, topic=topic, at=at, payload=payload
            )
        request = applied.request
        if not request.name and payload.get("name"):
            request.name = str(payload["name"])[:64]
            request.save(update_fields=["name", "updated_at"])
        _lines_from_payload(request=request, payload=payload)
        _line_gids_store_from_payload(request=request, payload=payload)
        if topic == "returns/update":
            _update_apply(request=request, payload=payload)
        elif topic == "reverse_deliveries/attach_deliverable":
            _deliverable_apply(request=request, payload=payload, at=at)
        elif topic == "returns/process" and _processed_apply(request=request, at=at):
            applied.refresh = True
        if applied.moved:
            _status_step_record(request=request, topic=topic, at=at)
        if request.status == Status.OPEN and not request.reverse_fulfillment_order_gid:
            # Open in Shopify (approved or made in its admin) and the app does not know the
            # reverse fulfillment order its dispose webhooks will name: read it.
            applied.refresh = True
        if applied.refresh:
            # A task row in this transaction: handed to RQ when it commits.
            _refresh_enqueue(request.pk)
    logger.info(
        "returns.webhook.applied",
        extra={
            "shop": shop.myshopify_domain,
            "topic": topic,
            "return_id": request.pk,
            "moved": applied.moved,
        },
    )
    return request


def _dispose_apply(*, shop: Shop, payload: dict, at: datetime) -> ReturnRequest | None:
    """reverse_fulfillment_orders/dispose: items came back and were restocked, kept, sent for
    processing or found missing, by our own reverseFulfillmentOrderDispose (the echo of
    ``return_items_receive``), by returnProcess or in Shopify's admin. The payload names the
    reverse fulfillment order (stored on the request at approval) and each disposition's line
    and units, but no totals and no disposition ids. So each line keeps the sum the webhooks
    reported (a repeated delivery has the same X-Shopify-Webhook-Id and is dropped at the
    intake) and its received units become the larger of that sum and what the dispose call's
    answer said Shopify held: our call and its echo count once, whichever comes first. No
    Shopify call here: webhook handlers run inside the intake's transaction."""
    rfo_gid = payload.get("admin_graphql_api_id") or (
        shopify.gid("ReverseFulfillmentOrder", payload["id"]) if _int(payload.get("id")) else ""
    )
    units: dict[str, int] = {}
    for row in payload.get("dispositions") or []:
        line_gid = (row.get("reverse_fulfillment_order_line_item") or {}).get(
            "admin_graphql_api_id"
        )
        if line_gid:
            units[line_gid] = units.get(line_gid, 0) + (_int(row.get("quantity")) or 0)
    with transaction.atomic():
        request = (
            ReturnRequest.objects.select_for_update()
            .select_related("order", "shop")
            .filter(shop=shop, reverse_fulfillment_order_gid=rfo_gid)
            .first()
            if rfo_gid
            else None
        )
        if request is None:
            logger.info("returns.webhook.dispose_unknown", extra={"shop": shop.myshopify_domain})
            return None
        totals: dict[int, int] = {}
        for line in request.line_items.select_for_update():
            added = units.get(line.reverse_fulfillment_order_line_item_gid, 0)
            if added > 0:
                line.dispose_webhook_quantity += added
                line.save(update_fields=["dispose_webhook_quantity"])
                totals[line.pk] = line.dispose_webhook_quantity
        changed = _received_apply(
            request=request, totals=totals, source=OrderEvent.Source.WEBHOOK, at=at
        )
    logger.info(
        "returns.webhook.disposed",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk, "lines": len(changed)},
    )
    return request


def _line_gids_store_from_payload(*, request: ReturnRequest, payload: dict) -> None:
    nodes = []
    for row in payload.get("return_line_items") or []:
        fli = row.get("fulfillment_line_item") or {}
        nodes.append(
            {
                "id": row.get("admin_graphql_api_id"),
                "fulfillmentLineItem": {"id": fli.get("admin_graphql_api_id")},
            }
        )
    _line_gids_store(request=request, nodes=nodes)


def _update_apply(*, request: ReturnRequest, payload: dict) -> None:
    """returns/update: lines removed from the return (``delta`` units each)."""
    removals = (payload.get("return_line_items") or {}).get("removals") or []
    changed = []
    for removal in removals:
        gid = removal.get("admin_graphql_api_id")
        delta = _int(removal.get("delta")) or 0
        line = request.line_items.filter(shopify_return_line_item_gid=gid).first()
        if line is None or delta <= 0:
            continue
        line.quantity = max(0, line.quantity - delta)
        line.save(update_fields=["quantity"])
        changed.append({"line": gid, "removed": delta})
    if changed:
        _step(
            request=request,
            step="updated",
            source=OrderEvent.Source.WEBHOOK,
            detail={"removals": changed},
            dedupe_suffix=f":{timezone.now().isoformat()}",
        )


def _refresh_enqueue(request_id: int) -> None:
    from returns.jobs import return_refresh_job

    task_defer(
        return_refresh_job,
        shop=None,
        kwargs={"request_id": request_id},
        # One pending read per return, however many webhooks left doubt.
        key=f"returns.refresh:{request_id}",
        queue=Queues.SYNCS,
    )


def _quantities_adopt(*, request: ReturnRequest, returned: dict[str, Any], at: datetime) -> None:
    """Raise each (locked) line's processed and received units to what Shopify holds:
    ``processedQuantity`` of its return line, the dispositions of its reverse fulfillment
    order line. Never down; a receipt moved here is one ``return.received`` step."""
    processed = {
        node["id"]: int(node.get("processedQuantity") or 0)
        for node in (returned.get("returnLineItems") or {}).get("nodes") or []
        if node.get("id")
    }
    disposed = {
        node["id"]: sum(int(d.get("quantity") or 0) for d in node.get("dispositions") or [])
        for rfo in (returned.get("reverseFulfillmentOrders") or {}).get("nodes") or []
        for node in (rfo.get("lineItems") or {}).get("nodes") or []
        if node.get("id")
    }
    totals: dict[int, int] = {}
    for line in request.line_items.select_for_update().order_by("pk"):
        units = min(line.quantity, processed.get(line.shopify_return_line_item_gid, 0))
        if units > line.processed_quantity:
            line.processed_quantity = units
            line.save(update_fields=["processed_quantity"])
        if disposed.get(line.reverse_fulfillment_order_line_item_gid):
            totals[line.pk] = disposed[line.reverse_fulfillment_order_line_item_gid]
    _received_apply(request=request, totals=totals, source=OrderEvent.Source.APP, at=at)


def return_refresh(*, request_id: int) -> ReturnRequest | None:
    """Adopt the return as Shopify holds it now: its status, the ids later steps need (return
    lines, reverse fulfillment order and its lines, exchange lines) and the units processed
    and disposed. Queued when webhooks leave doubt or name what the app cannot place:
    - a status webhook the order rule dropped while it disagrees with ours (usually a stale
      delivery, and the read confirms what we have; but Shopify's whole-second timestamps
      cannot order a close and a reopen made in the same second, and a reopen delivered
      before its close finds nothing to reopen);
    - a return made or moved in Shopify's admin whose reverse fulfillment order the app does
      not know yet, so its dispose webhooks would name lines it cannot place;
    - a processing made in Shopify's admin (returns/process carries no units per line).
    A status this module does not know (Shopify adds values) is left alone."""
    request = ReturnRequest.objects.select_related("shop").filter(pk=request_id).first()
    if request is None or request.shopify_return_id is None or not request.shop.is_active:
        return request
    shop = request.shop
    client = admin_client_for_shop(shop)
    returned = shopify.return_sync_fetch(client, return_gid=_return_gid(request)) or {}
    if not returned:
        return request
    status = str(returned.get("status") or "").upper()
    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        _reverse_store(request, returned)
        _quantities_adopt(request=request, returned=returned, at=now)
        _replacements_record(request, returned)
        previous = request.status
        if status not in _RANK or status in {Status.SUBMITTED, previous}:
            return request
        reopen = status == Status.OPEN and previous == Status.CLOSED
        _status_set(request, status, at=now, decline=returned.get("decline") or {}, reopen=reopen)
        request.save()
        step = "reopened" if reopen else _STATUS_STEP[status]
        _step(
            request=request,
            step=step,
            source=OrderEvent.Source.APP,
            occurred_at=now,
            detail={"from": previous},
            dedupe_suffix=f":{now.isoformat()}" if step == "reopened" else "",
        )
    logger.info(
        "returns.status.refreshed",
        extra={
            "shop": shop.myshopify_domain,
            "return_id": request.pk,
            "from": previous,
            "to": status,
        },
    )
    return request

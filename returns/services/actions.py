"""The merchant's actions in the admin: approve (with a label), decline, cancel, close."""

from __future__ import annotations

import logging
import mimetypes
import os
from decimal import Decimal
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from returns import shopify
from returns.models import (
    ReturnRequest,
)
from returns.policy import (
    DECLINE_REASONS,
    return_policy_get,
)
from returns.services.common import (
    _DONE,
    _RANK,
    DECLINE_NOTE_MAX,
    ReturnActionError,
    ReturnShopifyUnavailable,
    Status,
    _fresh,
    _is_held,
    _locked,
    _mutate,
    _one_at_a_time,
    _order_gid,
    _require,
    _return_gid,
    _status_label,
    _step,
)
from returns.services.requests import (
    _adopt_sent,
    _line_gids_store,
    _request_lines_input,
    _send_started_mark,
    _shopify_id_assign,
)
from shopapp.admin_api.client import (
    AdminApiClient,
    admin_client_for_shop,
)
from shopapp.models import OrderEvent, Shop

logger = logging.getLogger(__name__)


def _reverse_store(request: ReturnRequest, returned: dict[str, Any]) -> None:
    """Keep the ids later steps need: return line items (returnProcess), exchange line items
    (returnProcess exchangeLineItems), the reverse fulfillment order and its lines
    (reverse deliveries, and the reverse_fulfillment_orders/dispose webhook names them)."""
    _line_gids_store(request=request, nodes=(returned.get("returnLineItems") or {}).get("nodes"))
    lines = list(request.line_items.order_by("pk"))
    rfos = (returned.get("reverseFulfillmentOrders") or {}).get("nodes") or []
    if rfos and not request.reverse_fulfillment_order_gid:
        request.reverse_fulfillment_order_gid = rfos[0]["id"]
        request.save(update_fields=["reverse_fulfillment_order_gid", "updated_at"])
    by_fli: dict[str, list[str]] = {}
    for rfo in rfos:
        for node in (rfo.get("lineItems") or {}).get("nodes") or []:
            fli = (node.get("fulfillmentLineItem") or {}).get("id")
            if fli:
                by_fli.setdefault(fli, []).append(node["id"])
    for line in lines:
        gids = by_fli.get(line.fulfillment_line_item_gid) or []
        if gids and not line.reverse_fulfillment_order_line_item_gid:
            line.reverse_fulfillment_order_line_item_gid = gids.pop(0)
            line.save(update_fields=["reverse_fulfillment_order_line_item_gid"])
    # returnCreate makes one ExchangeLineItem per input row, in order; ours are one per line.
    exchanges = list((returned.get("exchangeLineItems") or {}).get("nodes") or [])
    for line in lines:
        if not line.exchange_variant_id or line.shopify_exchange_line_item_gid:
            continue
        variant_gid = shopify.gid("ProductVariant", line.exchange_variant_id)
        for index, node in enumerate(exchanges):
            if node.get("variantId") == variant_gid and int(node["quantity"]) == line.quantity:
                line.shopify_exchange_line_item_gid = exchanges.pop(index)["id"]
                line.save(update_fields=["shopify_exchange_line_item_gid"])
                break


def _exchange_create(client: AdminApiClient, request: ReturnRequest) -> dict[str, Any]:
    """returnCreate for a held exchange request: its lines and, per line, the chosen variant
    as an exchange line. A retry after a timeout adopts the return the first call made."""
    if request.send_started_at is not None:
        adopted = _adopt_sent(client, request, statuses={Status.OPEN})
        if adopted is not None:
            return adopted
    policy = return_policy_get(shop=request.shop)
    lines = _request_lines_input(client=client, request=request, policy=policy, for_create=True)
    exchange_lines = [
        {
            "variantId": shopify.gid("ProductVariant", line.exchange_variant_id),
            "quantity": line.quantity,
        }
        for line in request.line_items.order_by("pk")
        if line.exchange_variant_id
    ]
    if not exchange_lines:
        raise ReturnActionError(gettext("Choose the variant to send instead."), code="variant")
    fee = policy.return_shipping_fee if policy.return_shipping_fee > 0 else Decimal("0")
    _send_started_mark(request)
    return shopify.return_create_send(
        client,
        order_gid=_order_gid(request),
        lines=lines,
        exchange_lines=exchange_lines,
        shipping_fee=fee,
        currency=request.currency or request.order.currency,
        requested_at=request.requested_at.isoformat() if request.requested_at else None,
    )


@_one_at_a_time
def return_request_approve(
    *,
    shop: Shop,
    request: ReturnRequest,
    instructions: str,
    label_file: UploadedFile | None = None,
    tracking_number: str = "",
    tracking_url: str = "",
    notify_customer: bool = False,
    source: str = OrderEvent.Source.STAFF,
) -> ReturnRequest:
    """Approve → OPEN: returnApproveRequest for a request Shopify holds, returnCreate (with
    the exchange lines) for a held exchange. The instructions and a local copy of the label
    are kept for the shopper's status page; the label and tracking also go to Shopify as a
    reverse delivery (``return_label_attach``). ``notify_customer`` defaults off: the app's
    own return_approved message already tells the shopper, with the instructions; Shopify's
    email on top would say it twice."""
    request = _fresh(request, shop)
    held = _is_held(request)
    if request.status != Status.REQUESTED:
        raise ReturnActionError(
            gettext("This return is %(status)s; it can't be approved.")
            % {"status": _status_label(request)},
            code="state",
        )
    if not held and request.shopify_return_id is None:
        raise ReturnActionError(
            gettext("This return is not in Shopify yet; it can't be approved."), code="not_synced"
        )
    client = admin_client_for_shop(shop)
    returned: dict[str, Any] | None
    try:
        if held:
            returned = _mutate(_exchange_create, client, request)
        else:
            returned = _mutate(
                shopify.return_approve_send,
                client,
                return_gid=_return_gid(request),
                notify_customer=notify_customer,
            )
    except ReturnShopifyUnavailable:
        raise
    except ReturnActionError:
        if _fresh(request, shop).status != Status.OPEN:
            raise
        returned = None  # approved meanwhile (another click, or in Shopify's admin)
    content = _label_read(label_file)
    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        if returned is not None:
            if not _shopify_id_assign(request, returned):
                raise ReturnActionError(
                    gettext("This request is linked to another return."), code="state"
                )
            request.name = request.name or (returned.get("name") or "")[:64]
            request.sync_state = ReturnRequest.SyncState.SYNCED
        moved = request.status not in _DONE and _RANK.get(request.status, 0) < _RANK[Status.OPEN]
        if moved:
            request.status = Status.OPEN
        request.approved_at = request.approved_at or now
        request.approval_instructions = instructions or request.approval_instructions
        if label_file is not None:
            request.label_file.save(
                os.path.basename(label_file.name or "label"), label_file, save=False
            )
        request.save()
        if returned is not None:
            _reverse_store(request, returned)
        _step(request=request, step="approved", source=source, occurred_at=now)
    logger.info(
        "returns.request.approved",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk, "return_created": held},
    )
    if content is not None or tracking_number or tracking_url:
        request = _label_send(
            shop=shop,
            request=request,
            label=content,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            notify_customer=notify_customer,
        )
    return request


def _label_read(label_file: UploadedFile | None) -> tuple[str, str, bytes] | None:
    if label_file is None:
        return None
    name = os.path.basename(label_file.name or "label.pdf")
    mime = getattr(label_file, "content_type", "") or mimetypes.guess_type(name)[0] or ""
    label_file.seek(0)
    content = label_file.read()
    label_file.seek(0)
    return name, mime or "application/pdf", content


@_one_at_a_time
def return_label_attach(
    *,
    shop: Shop,
    request: ReturnRequest,
    label_file: UploadedFile | None = None,
    tracking_number: str = "",
    tracking_url: str = "",
    notify_customer: bool = False,
) -> ReturnRequest:
    """Attach a label (kept here too) and/or tracking to an approved return in Shopify."""
    request = _fresh(request, shop)
    _require(request, {Status.OPEN}, "given a label")
    content = _label_read(label_file)
    if label_file is not None:
        with transaction.atomic():
            locked = _locked(request, shop)
            locked.label_file.save(
                os.path.basename(label_file.name or "label"), label_file, save=False
            )
            locked.save(update_fields=["label_file", "updated_at"])
    return _label_send(
        shop=shop,
        request=request,
        label=content,
        tracking_number=tracking_number,
        tracking_url=tracking_url,
        notify_customer=notify_customer,
    )


def _label_send(
    *,
    shop: Shop,
    request: ReturnRequest,
    label: tuple[str, str, bytes] | None,
    tracking_number: str,
    tracking_url: str,
    notify_customer: bool,
) -> ReturnRequest:
    """stagedUploadsCreate (RETURN_LABEL) → upload to the staged target →
    reverseDeliveryCreateWithShipping(labelInput.fileUrl = the target's resourceUrl), no lock
    held. The approval stands if this fails: the merchant sees why and can attach again."""
    client = admin_client_for_shop(shop)
    if not request.reverse_fulfillment_order_gid:
        returned = _mutate(shopify.return_fetch, client, return_gid=_return_gid(request)) or {}
        with transaction.atomic():
            request = _locked(request, shop)
            _reverse_store(request, returned)
        if not request.reverse_fulfillment_order_gid:
            raise ReturnActionError(
                gettext("Shopify has no reverse fulfillment order for this return yet."),
                code="label",
            )
    label_url = ""
    try:
        if label is not None:
            name, mime, content = label
            target = _mutate(
                shopify.return_label_stage, client, filename=name, mime_type=mime, size=len(content)
            )
            _mutate(
                shopify.return_label_upload, target, filename=name, mime_type=mime, content=content
            )
            label_url = target["resourceUrl"]
        delivery = _mutate(
            shopify.reverse_delivery_create_send,
            client,
            rfo_gid=request.reverse_fulfillment_order_gid,
            label_url=label_url or None,
            tracking_number=(tracking_number or "").strip(),
            tracking_url=(tracking_url or "").strip(),
            notify_customer=notify_customer,
        )
    except ReturnActionError as exc:
        _step(
            request=request,
            step="label_failed",
            source=OrderEvent.Source.APP,
            detail={"code": exc.code},
            dedupe_suffix=f":{timezone.now().isoformat()}",
        )
        raise ReturnActionError(
            gettext(
                "The return is approved, but the label could not be attached in Shopify: %(error)s"
            )
            % {"error": exc.message},
            code="label",
        ) from exc
    deliverable = delivery.get("deliverable") or {}
    with transaction.atomic():
        request = _locked(request, shop)
        request.reverse_delivery_gid = delivery.get("id") or request.reverse_delivery_gid
        request.label_url = (
            (deliverable.get("label") or {}).get("publicFileUrl") or label_url or request.label_url
        )[:1000]
        tracking = deliverable.get("tracking") or {}
        request.return_tracking_number = (tracking.get("number") or tracking_number or "")[:255]
        request.return_tracking_url = (tracking.get("url") or tracking_url or "")[:1000]
        request.save()
    logger.info(
        "returns.label.attached",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk, "label": bool(label)},
    )
    return request


@_one_at_a_time
def return_request_decline(
    *,
    shop: Shop,
    request: ReturnRequest,
    reason: str,
    note: str,
    notify_customer: bool = False,
) -> ReturnRequest:
    """returnDeclineRequest with Shopify's ReturnDeclineReason → DECLINED. A held exchange
    Shopify never saw is declined here only."""
    if reason not in DECLINE_REASONS:
        raise ReturnActionError(gettext("Choose a reason for declining."), code="decline_reason")
    note = (note or "").strip()
    if len(note) > DECLINE_NOTE_MAX:
        raise ReturnActionError(
            gettext("The note is too long (at most %(count)s characters).")
            % {"count": DECLINE_NOTE_MAX},
            code="note",
        )
    request = _fresh(request, shop)
    if not _is_held(request):
        _require(request, {Status.REQUESTED}, "declined")
        try:
            _mutate(
                shopify.return_decline_send,
                admin_client_for_shop(shop),
                return_gid=_return_gid(request),
                reason=reason,
                note=note,
                notify_customer=notify_customer,
            )
        except ReturnShopifyUnavailable:
            raise
        except ReturnActionError:
            if _fresh(request, shop).status != Status.DECLINED:
                raise
    elif request.status != Status.REQUESTED:
        _require(request, {Status.REQUESTED}, "declined")
    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        if request.status in _DONE - {Status.DECLINED}:
            raise ReturnActionError(
                gettext("This return was closed or canceled meanwhile."), code="state"
            )
        request.status = Status.DECLINED
        request.declined_at = request.declined_at or now
        request.decline_reason = reason
        request.decline_note = note
        request.save()
        _step(
            request=request,
            step="declined",
            source=OrderEvent.Source.STAFF,
            occurred_at=now,
            detail={"reason": reason},
        )
    return request


@_one_at_a_time
def return_request_cancel(*, shop: Shop, request: ReturnRequest) -> ReturnRequest:
    """returnCancel (only before anything was processed, Shopify's rule); a request Shopify
    never accepted (or a held exchange) is canceled here only."""
    request = _fresh(request, shop)
    if request.status not in {Status.SUBMITTED, Status.REQUESTED, Status.OPEN}:
        raise ReturnActionError(gettext("This return can't be canceled."), code="state")
    if request.shopify_return_id is not None:
        try:
            _mutate(
                shopify.return_cancel_send,
                admin_client_for_shop(shop),
                return_gid=_return_gid(request),
            )
        except ReturnShopifyUnavailable:
            raise
        except ReturnActionError:
            if _fresh(request, shop).status != Status.CANCELED:
                raise
    elif request.sync_state == ReturnRequest.SyncState.PENDING or (
        _is_held(request) and request.send_started_at is not None
    ):
        # Being sent, or an approval's returnCreate may have reached Shopify: cancelling here
        # could leave a return in Shopify the app no longer follows.
        raise ReturnActionError(
            gettext("This request is being sent to Shopify; try again in a minute."),
            code="pending",
        )
    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        if request.status in _DONE - {Status.CANCELED}:
            raise ReturnActionError(
                gettext("This return was closed or declined meanwhile."), code="state"
            )
        request.status = Status.CANCELED
        request.canceled_at = request.canceled_at or now
        request.save()
        _step(request=request, step="canceled", source=OrderEvent.Source.STAFF, occurred_at=now)
    return request


@_one_at_a_time
def return_request_close(*, shop: Shop, request: ReturnRequest) -> ReturnRequest:
    """returnClose → CLOSED (an approved return nothing more will happen to)."""
    request = _fresh(request, shop)
    _require(request, {Status.OPEN}, "closed")
    try:
        _mutate(
            shopify.return_close_send,
            admin_client_for_shop(shop),
            return_gid=_return_gid(request),
        )
    except ReturnShopifyUnavailable:
        raise
    except ReturnActionError:
        if _fresh(request, shop).status != Status.CLOSED:
            raise
    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        if request.status != Status.CLOSED:
            request.status = Status.CLOSED
            request.closed_at = now
            request.save()
        _step(request=request, step="closed", source=OrderEvent.Source.STAFF, occurred_at=now)
    return request

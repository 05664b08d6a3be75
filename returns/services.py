"""Every change to a return: the shopper's request, the merchant's actions, Shopify's webhooks.

    portal ── return_request_submit ──> ReturnRequest SUBMITTED (sync pending), one transaction
                └─(on commit) return_request_send_job ─> returnRequest ─> REQUESTED
                                                  └─> auto-approve when the policy's rules hold
    admin  ── approve / decline / receive / process / cancel / close ─> Shopify, then local
    Shopify ─ returns/* webhooks ──> return_webhook_apply ─> local status (Shopify wins)

Each step writes one OrderEvent (``return.<step>``, deduplicated per return and step, so the
app's own call and the webhook that echoes it are recorded once) and, when the event is new,
calls ``notification_trigger`` with the matching trigger and ``{"return_id": …}``.

Webhook order rule (Shopify delivers at least once, in no particular order,
shopify.dev "Ignore duplicates"): a webhook whose X-Shopify-Triggered-At is older than the one
that last set the status changes nothing; otherwise the status only moves forward
(SUBMITTED < REQUESTED < OPEN < DECLINED/CANCELED/CLOSED), except that returns/reopen takes a
CLOSED return back to OPEN. So a returns/approve delivered after returns/close never reopens it.
Only Shopify's clock orders webhooks: the app's own calls move the status forward but never
stamp ``shopify_status_at`` with the app's time, since a change made in Shopify's admin in the
same second (Shopify's timestamps have whole seconds, and the clocks differ) would then look
older than our call and be dropped; their echoes bring Shopify's time.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import mimetypes
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.services import notification_news_record, notification_trigger
from returns import shopify
from returns.eligibility import (
    OPEN_STATUSES,
    Estimate,
    ItemEligibility,
    ReasonCode,
    line_item_unit_value,
    order_eligibility,
    return_estimate,
)
from returns.models import (
    Resolution,
    ReturnBlocklistEntry,
    ReturnLineItem,
    ReturnPhoto,
    ReturnPolicy,
    ReturnRequest,
)
from returns.news import return_news
from returns.policy import (
    DECLINE_REASONS,
    REASON_DEFINITIONS_SINCE,
    policy_reasons,
    policy_resolutions,
    reason_enum,
    reason_handle,
    reason_label,
    reason_matches,
    reason_requires_note,
    reason_requires_photo,
    return_policy_get,
)
from shopapp.admin_api.client import (
    AdminApiClient,
    AdminApiError,
    UserErrors,
    admin_client_for_shop,
)
from shopapp.background.services import task_defer
from shopapp.models import LineItem, Order, OrderEvent, Shop
from shopapp.orders.reconcile import legacy_id
from shopapp.orders.services import line_item_replacement_record, order_event_record

logger = logging.getLogger(__name__)

Status = ReturnRequest.Status
CUSTOMER_NOTE_MAX = 300  # ReturnRequestLineItemInput.customerNote: "Maximum length: 300".
DECLINE_NOTE_MAX = 500  # ReturnDeclineRequestInput.declineNote: "Maximum length: 500".
# Clock difference allowed between Shopify's X-Shopify-Triggered-At and ours when telling our
# own returnProcess's echo from a processing made in Shopify's admin.
ECHO_SLACK = timedelta(seconds=5)
RETURN_REASON_NOTE_MAX = 255  # ReturnLineItemInput.returnReasonNote (returnCreate).

# Forward order of statuses; terminal ones share a rank (one never turns into another).
_RANK = {
    Status.SUBMITTED: 0,
    Status.REQUESTED: 1,
    Status.OPEN: 2,
    Status.DECLINED: 3,
    Status.CANCELED: 3,
    Status.CLOSED: 3,
}
_TRIGGERS = {
    "requested": "return_requested",
    "approved": "return_approved",
    "declined": "return_declined",
    "processed": "return_processed",
    "closed": "return_closed",
}
_SUMMARIES = {
    "submitted": "Return submitted by the customer",
    "requested": "Return requested",
    "approved": "Return approved",
    "declined": "Return declined",
    "received": "Returned items received",
    "processed": "Return processed",
    "closed": "Return closed",
    "canceled": "Return canceled",
    "reopened": "Return reopened",
    "sync_failed": "Shopify refused the return request",
    "updated": "Return updated in Shopify",
    "label_attached": "Return label or tracking attached",
    "label_failed": "The return label could not be attached in Shopify",
}


class ReturnRefused(ValueError):
    """A request or action the rules refuse; ``message`` is safe to show as it is."""

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ReturnActionError(ReturnRefused):
    """A merchant action that could not be done (wrong state, Shopify's userErrors)."""


class ReturnShopifyUnavailable(ReturnActionError):
    """Shopify could not be reached (network, 5xx, throttled past the client's retries):
    nothing changed here; the action can be tried again and adopts what Shopify made."""


class ReturnOrderMissing(Exception):
    """A returns webhook for an order the mirror does not hold yet: retried by the job."""


class ReturnNotYetSynced(Exception):
    """A webhook for a return our send job has created but not stored yet: retried."""


class ReturnItemInput(NamedTuple):
    """One item of a submission; ``line_item_id`` is the local ``LineItem.pk``."""

    line_item_id: int
    quantity: int
    reason: str
    note: str = ""
    exchange_variant_id: int | None = None
    # The variant's title as the shopper chose it ("S / Black"), for the merchant's queue.
    exchange_variant_title: str = ""


def user_errors_text(exc: UserErrors) -> str:
    """Shopify's userErrors as one sentence a shopper or merchant can read."""
    messages = [str(e.get("message") or "").strip() for e in exc.user_errors]
    text = " ".join(m if m.endswith(".") else m + "." for m in messages if m)
    return text or "Shopify refused the change."


# -- timeline -------------------------------------------------------------------------------


def _cycle(request: ReturnRequest) -> int:
    """How many times the return was reopened: steps after a reopen are new facts."""
    return OrderEvent.objects.filter(
        shop_id=request.shop_id, dedupe_key__startswith=f"return:{request.pk}:reopened:"
    ).count()


def _step(
    *,
    request: ReturnRequest,
    step: str,
    source: str,
    occurred_at: datetime | None = None,
    detail: dict[str, Any] | None = None,
    dedupe_suffix: str = "",
) -> bool:
    """Record ``return.<step>`` once per return (and reopen cycle); trigger when new."""
    cycle = _cycle(request)
    key = f"return:{request.pk}:{step}" + (f":{cycle}" if cycle else "") + dedupe_suffix
    label = request.name or f"return {request.pk}"
    event = order_event_record(
        shop=request.shop,
        order=request.order,
        kind=f"return.{step}",
        occurred_at=occurred_at or timezone.now(),
        source=source,
        summary=f"{_SUMMARIES.get(step, step)} ({label})",
        detail={"return_id": request.pk, "shopify_return_id": request.shopify_return_id}
        | (detail or {}),
        dedupe_key=key,
    )
    if event is None:
        return False
    news = return_news(request, happened_at=event.occurred_at, detail=detail)
    trigger = _TRIGGERS.get(step)
    if trigger:
        notification_trigger(shop=request.shop, order=request.order, trigger=trigger, news=news)
    else:
        # Received, canceled, reopened…: no message, but notifications keeps the return's
        # state (a canceled return no longer stops a review request).
        notification_news_record(shop=request.shop, order=request.order, news=news)
    return True


# -- the shopper's request ------------------------------------------------------------------


def _normalize_items(items: Iterable[Any]) -> list[ReturnItemInput]:
    """Tuples, ReturnItemInput or dicts (``note`` or ``customer_note``) alike."""
    normalized = []
    for item in items:
        if isinstance(item, ReturnItemInput):
            normalized.append(item)
        elif isinstance(item, Mapping):
            variant = item.get("exchange_variant_id")
            normalized.append(
                ReturnItemInput(
                    line_item_id=int(item["line_item_id"]),
                    quantity=int(item["quantity"]),
                    reason=str(item.get("reason") or ""),
                    note=str(item.get("note") or item.get("customer_note") or ""),
                    exchange_variant_id=int(variant) if variant else None,
                    exchange_variant_title=str(item.get("exchange_variant_title") or ""),
                )
            )
        else:
            normalized.append(ReturnItemInput(*item))
    return normalized


def blocklist_contains(*, shop: Shop, email: str) -> bool:
    email = (email or "").strip().lower()
    return bool(email) and ReturnBlocklistEntry.objects.filter(shop=shop, email=email).exists()


def _customer_owns(order: Order, *, customer_id: int | None, customer_email: str) -> bool:
    if customer_id is not None:
        return order.customer_id is not None and order.customer_id == customer_id
    email = (customer_email or "").strip().lower()
    return bool(email) and email == (order.email or "").strip().lower()


def _validate_items(
    *,
    policy: ReturnPolicy,
    items: list[ReturnItemInput],
    eligibility: dict[int, ItemEligibility],
    resolution: str,
    photos: Mapping[int, Sequence[UploadedFile]],
) -> None:
    if not items:
        raise ReturnRefused(_("Choose at least one item to return."), code="no_items")
    wanted: dict[int, int] = {}
    offered = policy_reasons(policy)
    for item in items:
        elig = eligibility.get(item.line_item_id)
        if elig is None:
            raise ReturnRefused(_("That item is not part of this order."), code="unknown_item")
        title = elig.line_item.title
        if not elig.is_eligible:
            raise ReturnRefused(f"{title}: {elig.reason_text}", code=elig.reason_code)
        if item.quantity <= 0:
            raise ReturnRefused(
                _("%(item)s: choose how many to return.") % {"item": title}, code="quantity"
            )
        wanted[item.line_item_id] = wanted.get(item.line_item_id, 0) + item.quantity
        if wanted[item.line_item_id] > elig.returnable_quantity:
            raise ReturnRefused(
                _("%(item)s: only %(count)d can be returned.")
                % {"item": title, "count": elig.returnable_quantity},
                code="quantity",
            )
        if not reason_matches(item.reason, offered):
            raise ReturnRefused(
                _("%(item)s: choose a reason from the list.") % {"item": title}, code="reason"
            )
        note = (item.note or "").strip()
        if reason_requires_note(policy, item.reason) and not note:
            raise ReturnRefused(
                _("%(item)s: please tell us more about “%(reason)s”.")
                % {"item": title, "reason": reason_label(item.reason)},
                code="note_required",
            )
        if len(note) > CUSTOMER_NOTE_MAX:
            raise ReturnRefused(
                _("%(item)s: the note is too long (at most %(max)d characters).")
                % {"item": title, "max": CUSTOMER_NOTE_MAX},
                code="note_too_long",
            )
        if reason_requires_photo(policy, item.reason) and not photos.get(item.line_item_id):
            raise ReturnRefused(
                _("%(item)s: please add a photo.") % {"item": title}, code="photo_required"
            )
        if resolution == Resolution.EXCHANGE and not item.exchange_variant_id:
            raise ReturnRefused(
                _("%(item)s: choose the variant you want instead.") % {"item": title},
                code="variant",
            )


def return_request_submit(
    *,
    shop: Shop,
    order: Order,
    items: Iterable[ReturnItemInput | tuple | Mapping[str, Any]],
    resolution: str,
    customer_email: str,
    customer_id: int | None,
    photos: Mapping[int, Sequence[UploadedFile]] | None = None,
    now: datetime | None = None,
) -> ReturnRequest:
    """Store a shopper's return request at once (SUBMITTED, sync pending) and send it to
    Shopify from a job after commit. ``items``: (line_item_id = LineItem.pk, quantity, reason,
    note, exchange_variant_id); ``photos``: {LineItem.pk: [files]} (type and size checked by
    the portal). Raises ReturnRefused with a shopper-readable message; nothing is stored then.
    Calls Shopify (returnableFulfillments) before storing: AdminApiError propagates."""
    photos = photos or {}
    normalized = _normalize_items(items)
    if order.shop_id != shop.pk:
        raise ReturnRefused(_("We couldn't find that order."), code="not_found")
    if not _customer_owns(order, customer_id=customer_id, customer_email=customer_email):
        raise ReturnRefused(_("We couldn't find that order."), code="not_found")
    email = (customer_email or order.email or "").strip().lower()
    if blocklist_contains(shop=shop, email=email) or blocklist_contains(
        shop=shop, email=order.email
    ):
        raise ReturnRefused(
            _("We can't accept a return for this order online. Please contact the store."),
            code="blocklisted",
        )
    policy = return_policy_get(shop=shop)
    if resolution not in policy_resolutions(policy):
        raise ReturnRefused(_("Choose how you would like to be paid back."), code="resolution")
    results = order_eligibility(shop=shop, order=order, now=now)
    eligibility = {e.line_item.pk: e for e in results}
    _validate_items(
        policy=policy,
        items=normalized,
        eligibility=eligibility,
        resolution=resolution,
        photos=photos,
    )
    estimate = return_estimate(
        shop=shop,
        order=order,
        items=[(i.line_item_id, i.quantity) for i in normalized],
        resolution=resolution,
    )

    with transaction.atomic():
        # One submission per order at a time: the second waits here, then sees the first's
        # units as held and is refused ("already open").
        Order.objects.select_for_update().filter(pk=order.pk).first()
        held = _held_quantities(shop=shop, order=order)
        for item in normalized:
            elig = eligibility[item.line_item_id]
            shopify_quantity = sum(q for _gid, q in elig.fulfillment_lines)
            if held.get(item.line_item_id, 0) + item.quantity > shopify_quantity:
                raise ReturnRefused(
                    _("%(item)s: a return for this item is already open.")
                    % {"item": elig.line_item.title},
                    code=ReasonCode.OPEN_REQUEST,
                )
        request = ReturnRequest.objects.create(
            shop=shop,
            order=order,
            status=Status.SUBMITTED,
            sync_state=ReturnRequest.SyncState.PENDING,
            resolution=resolution,
            customer_id=customer_id if customer_id is not None else order.customer_id,
            customer_email=email,
            refund_estimate=estimate.total,
            currency=estimate.currency,
        )
        for item in normalized:
            _lines_create(
                request=request,
                item=item,
                elig=eligibility[item.line_item_id],
                files=photos.get(item.line_item_id) or [],
            )
        _step(request=request, step="submitted", source=OrderEvent.Source.SHOPPER)
        _send_enqueue(request)
    logger.info(
        "returns.request.submitted",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk, "items": len(normalized)},
    )
    return request


def _held_quantities(*, shop: Shop, order: Order) -> dict[int, int]:
    """Units in local requests Shopify does not hold yet (pending or being sent)."""
    held: dict[int, int] = {}
    rows = ReturnLineItem.objects.filter(
        shop=shop,
        return_request__order=order,
        return_request__status__in=OPEN_STATUSES,
        return_request__shopify_return_id__isnull=True,
    ).exclude(return_request__sync_state=ReturnRequest.SyncState.FAILED)
    for line in rows:
        held[line.line_item_id] = held.get(line.line_item_id, 0) + line.quantity
    return held


def _lines_create(
    *, request: ReturnRequest, item: ReturnItemInput, elig: ItemEligibility, files: Sequence
) -> None:
    """One ReturnLineItem per fulfillment line the units come from (a line item shipped in two
    parcels is two fulfillment line items in Shopify's returnRequest)."""
    remaining = item.quantity
    first: ReturnLineItem | None = None
    for fli_gid, available in elig.fulfillment_lines:
        if remaining <= 0:
            break
        take = min(available, remaining)
        remaining -= take
        line = ReturnLineItem.objects.create(
            shop=request.shop,
            return_request=request,
            line_item=elig.line_item,
            fulfillment_line_item_gid=fli_gid,
            quantity=take,
            reason=item.reason,
            customer_note=(item.note or "").strip()[:CUSTOMER_NOTE_MAX],
            exchange_variant_id=item.exchange_variant_id,
            exchange_variant_title=(item.exchange_variant_title or "")[:255]
            if item.exchange_variant_id
            else "",
        )
        first = first or line
    for upload in files:
        name = os.path.basename(upload.name or "photo")
        content_type = getattr(upload, "content_type", "") or mimetypes.guess_type(name)[0] or ""
        photo = ReturnPhoto(
            shop=request.shop,
            return_line_item=first,
            content_type=content_type[:32],
            size_bytes=getattr(upload, "size", 0) or 0,
        )
        photo.image.save(name, upload, save=False)
        photo.save()


def _send_enqueue(request: ReturnRequest) -> None:
    """Promise the request goes to Shopify once this transaction commits: a task row that the
    sweep hands to RQ again when Redis is down or lost it (the shopper is answered either way).
    """
    from returns.jobs import (
        SEND_RETRY_INTERVALS_S,
        return_request_send_gave_up,
        return_request_send_job,
    )

    task_defer(
        return_request_send_job,
        shop=request.shop,
        kwargs={"request_id": request.pk},
        key=f"returns.send:{request.pk}",
        retry_intervals_s=SEND_RETRY_INTERVALS_S,
        on_give_up=return_request_send_gave_up,
    )


# -- sending to Shopify ---------------------------------------------------------------------


def _api_version_at_least(version: str, since: str) -> bool:
    # "2026-10" vs "2026-01": ISO year-month strings compare correctly as text; "unstable"
    # sorts after every dated version, as it should.
    return version >= since


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
        if policy.restocking_fee_percent > 0 and request.resolution != Resolution.EXCHANGE:
            entry["restockingFee"] = {"percentage": float(policy.restocking_fee_percent)}
        payload.append(entry)
    return payload


def _order_gid(request: ReturnRequest) -> str:
    return request.order.admin_graphql_api_id or shopify.gid("Order", request.order.shopify_id)


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


def return_request_send(*, request_id: int) -> ReturnRequest | None:
    """Send a stored request to Shopify (returnRequest). Idempotent: a request Shopify already
    holds, or one no longer waiting, is left alone; after a timeout the retry adopts the return
    Shopify made instead of making a second. Shopify's userErrors mark it failed with a
    readable message; transport errors and throttling propagate so the job is retried.

    An exchange is not sent here: returnRequest has no exchange lines, so the request is held
    (REQUESTED locally) and created with returnCreate at approval, automatic or the merchant's."""
    request = ReturnRequest.objects.select_related("shop", "order").filter(pk=request_id).first()
    if request is None or request.shopify_return_id is not None:
        return request
    if (
        request.sync_state == ReturnRequest.SyncState.HELD
        and request.status == Status.REQUESTED
        and request.send_started_at is not None
    ):
        # An automatic approval whose returnCreate failed in transit: finish it (it adopts).
        return _auto_approve(request)
    if request.status != Status.SUBMITTED or request.sync_state != ReturnRequest.SyncState.PENDING:
        return request
    if request.resolution == Resolution.EXCHANGE:
        return _exchange_hold(request)
    shop = request.shop
    policy = return_policy_get(shop=shop)
    client = admin_client_for_shop(shop)
    created = None
    if request.send_started_at is not None:
        created = _adopt_sent(client, request, statuses={Status.REQUESTED, Status.OPEN})
    if created is None:
        lines = _request_lines_input(client=client, request=request, policy=policy)
        fee = policy.return_shipping_fee if policy.return_shipping_fee > 0 else Decimal("0")
        _send_started_mark(request)
        try:
            created = shopify.return_request_send(
                client,
                order_gid=_order_gid(request),
                lines=lines,
                shipping_fee=fee,
                currency=request.currency or request.order.currency,
            )
        except UserErrors as exc:
            return_request_sync_fail(
                request=request, message=user_errors_text(exc), codes=exc.codes
            )
            return request

    now = timezone.now()
    with transaction.atomic():
        request = ReturnRequest.objects.select_for_update().get(pk=request.pk)
        if not _shopify_id_assign(request, created):
            return request
        request.name = (created.get("name") or request.name or "")[:64]
        request.sync_state = ReturnRequest.SyncState.SYNCED
        request.sync_error = ""
        if _RANK.get(request.status, 0) < _RANK[Status.REQUESTED]:
            request.status = Status.REQUESTED
        request.requested_at = request.requested_at or now
        request.save()
        _line_gids_store(request=request, nodes=(created.get("returnLineItems") or {}).get("nodes"))
        _step(request=request, step="requested", source=OrderEvent.Source.APP, occurred_at=now)
    logger.info(
        "returns.request.synced",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk},
    )
    return _auto_approve(request)


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


def _exchange_hold(request: ReturnRequest) -> ReturnRequest:
    """An exchange request waits here for approval (REQUESTED, held), then may auto-approve."""
    now = timezone.now()
    with transaction.atomic():
        request = (
            ReturnRequest.objects.select_for_update()
            .select_related("shop", "order")
            .get(pk=request.pk)
        )
        if request.status != Status.SUBMITTED or request.sync_state != (
            ReturnRequest.SyncState.PENDING
        ):
            return request
        request.status = Status.REQUESTED
        request.sync_state = ReturnRequest.SyncState.HELD
        request.requested_at = request.requested_at or now
        request.save()
        _step(request=request, step="requested", source=OrderEvent.Source.APP, occurred_at=now)
    logger.info("returns.request.held", extra={"shop_id": request.shop_id, "return_id": request.pk})
    return _auto_approve(request)


def _auto_approve(request: ReturnRequest) -> ReturnRequest:
    shop = request.shop
    approve, why = return_auto_approve_decision(shop=shop, request=request)
    if approve:
        try:
            return_request_approve(
                shop=shop, request=request, instructions="", source=OrderEvent.Source.SYSTEM
            )
        except ReturnShopifyUnavailable:
            # Raised again so RQ retries the job; the retry adopts what Shopify may have made.
            raise
        except ReturnActionError:
            # Left REQUESTED: the merchant sees it in the queue.
            logger.warning(
                "returns.auto_approve.refused",
                extra={"shop": shop.myshopify_domain, "return_id": request.pk},
            )
    else:
        logger.info(
            "returns.auto_approve.skipped",
            extra={"shop": shop.myshopify_domain, "return_id": request.pk, "why": why},
        )
    request.refresh_from_db()
    return request


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


def return_request_sync_fail(
    *, request: ReturnRequest, message: str, codes: Sequence[str] = ()
) -> None:
    """Mark a request Shopify refused (or could not be reached for): its units are free again."""
    with transaction.atomic():
        request = ReturnRequest.objects.select_for_update().get(pk=request.pk)
        if request.sync_state != ReturnRequest.SyncState.PENDING:
            return
        request.sync_state = ReturnRequest.SyncState.FAILED
        request.sync_error = message[:1000]
        request.save(update_fields=["sync_state", "sync_error", "updated_at"])
        _step(
            request=request,
            step="sync_failed",
            source=OrderEvent.Source.APP,
            detail={"codes": list(codes)},
        )
    logger.warning(
        "returns.request.sync_failed",
        extra={"shop": request.shop.myshopify_domain, "return_id": request.pk, "codes": codes},
    )


# -- customer history and auto-approve ------------------------------------------------------


@dataclass(frozen=True)
class CustomerHistory:
    returns: int
    orders: int
    ratio: Decimal
    is_flagged: bool


def customer_history(
    *, shop: Shop, customer_id: int | None, email: str, exclude_request_id: int | None = None
) -> CustomerHistory:
    """The customer's earlier returns against their orders (the request looked at excluded,
    or every first return would flag its customer), flagged at the policy's ratio."""
    policy = return_policy_get(shop=shop)
    email = (email or "").strip().lower()
    match = Q(pk__in=[])
    if customer_id is not None:
        match |= Q(customer_id=customer_id)
    if email:
        match |= Q(email__iexact=email)
    orders = Order.objects.filter(shop=shop, deleted_at__isnull=True).filter(match).count()
    returns_match = Q(pk__in=[])
    if customer_id is not None:
        returns_match |= Q(customer_id=customer_id)
    if email:
        returns_match |= Q(customer_email__iexact=email)
    returns = (
        ReturnRequest.objects.filter(shop=shop)
        .filter(returns_match)
        .exclude(sync_state=ReturnRequest.SyncState.FAILED)
        .exclude(pk=exclude_request_id)
        .count()
    )
    ratio = (Decimal(returns) / Decimal(orders)).quantize(Decimal("0.01")) if orders else Decimal(0)
    return CustomerHistory(
        returns=returns,
        orders=orders,
        ratio=ratio,
        is_flagged=returns > 0 and ratio >= policy.high_return_ratio,
    )


def return_request_value(request: ReturnRequest) -> Decimal:
    return sum(
        (line_item_unit_value(line.line_item) * line.quantity for line in request.line_items.all()),
        Decimal("0"),
    )


def return_auto_approve_decision(*, shop: Shop, request: ReturnRequest) -> tuple[bool, str]:
    """(approve?, why not). Every rule must hold: auto-approve on, no reason the merchant
    reviews, value at most the limit, customer neither blocklisted nor flagged."""
    policy = return_policy_get(shop=shop)
    if not policy.is_auto_approve:
        return False, "disabled"
    in_shopify = request.shopify_return_id is not None
    held = request.sync_state == ReturnRequest.SyncState.HELD
    if request.status != Status.REQUESTED or not (in_shopify or held):
        return False, "state"
    reasons = [line.reason for line in request.line_items.all()]
    if any(reason_matches(r, policy.auto_approve_excluded_reasons) for r in reasons):
        return False, "reason"
    if return_request_value(request) > policy.auto_approve_max_value:
        return False, "value"
    if blocklist_contains(shop=shop, email=request.customer_email):
        return False, "blocklisted"
    history = customer_history(
        shop=shop,
        customer_id=request.customer_id,
        email=request.customer_email,
        exclude_request_id=request.pk,
    )
    if history.is_flagged:
        return False, "flagged"
    return True, ""


# -- the merchant's actions -----------------------------------------------------------------
#
# Every action runs in three steps, so that no row lock (PostgreSQL) and no write lock
# (SQLite) is ever held while waiting on Shopify:
#   1. read the request and check it may be done (no lock);
#   2. call Shopify, outside any transaction;
#   3. lock the row, re-check, write the result. Step 3 is idempotent: a webhook that echoed
#      the change meanwhile has already moved the status, and the write only fills the rest.
# Actions on one return run one at a time (``_one_at_a_time``, a Redis lock): a double click
# or a second tab waits for the first, then reads what it did. Without it both would read the
# same state before either wrote, and a partial receipt or processing (received 1 of 2, say)
# would be sent twice, which Shopify accepts: two dispositions, two refunds. A merchant in
# Shopify's admin is not behind our lock: Shopify's userErrors answer that race, and when the
# return is already where the action wanted it, nothing is reported as failed.

# A merchant action may not move a request backwards from these.
_DONE = {Status.DECLINED, Status.CANCELED, Status.CLOSED}
# How long a merchant action may hold its return (an Admin API call with its retries ends well
# within it; a crashed process frees the return when it passes), and how long another action
# on the same return waits for it before asking the merchant to try again.
ACTION_LOCK_SECONDS = 120
ACTION_WAIT_SECONDS = 20


def _one_at_a_time(action):
    """Run a merchant action (keyword ``request``) holding its return's lock."""

    @functools.wraps(action)
    def run(*args: Any, request: ReturnRequest, **kwargs: Any):
        import django_rq
        from redis.exceptions import LockError

        lock = django_rq.get_connection("default").lock(
            f"returns:action:{request.pk}",
            timeout=ACTION_LOCK_SECONDS,
            blocking_timeout=ACTION_WAIT_SECONDS,
        )
        if not lock.acquire():
            raise ReturnActionError(
                "Another change to this return is still in progress; try again in a moment.",
                code="busy",
            )
        try:
            return action(*args, request=request, **kwargs)
        finally:
            with contextlib.suppress(LockError):
                lock.release()

    return run


def _fresh(request: ReturnRequest, shop: Shop) -> ReturnRequest:
    """The request re-read without a lock, scoped by shop."""
    if request.shop_id != shop.pk:
        raise ReturnActionError("No such return.", code="not_found")
    found = (
        ReturnRequest.objects.select_related("order", "shop")
        .filter(shop=shop, pk=request.pk)
        .first()
    )
    if found is None:
        raise ReturnActionError("No such return.", code="not_found")
    return found


def _locked(request: ReturnRequest, shop: Shop) -> ReturnRequest:
    """The request, re-read under a row lock, scoped by shop (step 3 only)."""
    if request.shop_id != shop.pk:
        raise ReturnActionError("No such return.", code="not_found")
    return (
        ReturnRequest.objects.select_for_update().select_related("order", "shop").get(pk=request.pk)
    )


def _status_label(request: ReturnRequest) -> str:
    return request.status_label.lower()


def _require(request: ReturnRequest, allowed: set[str], action: str) -> None:
    if request.status not in allowed:
        raise ReturnActionError(
            f"This return is {_status_label(request)}; it can't be {action}.",
            code="state",
        )
    if request.shopify_return_id is None:
        raise ReturnActionError(
            f"This return is not in Shopify yet; it can't be {action}.", code="not_synced"
        )


def _is_held(request: ReturnRequest) -> bool:
    return request.shopify_return_id is None and request.sync_state == ReturnRequest.SyncState.HELD


def _return_gid(request: ReturnRequest) -> str:
    return shopify.gid("Return", request.shopify_return_id)


UNAVAILABLE_MESSAGE = (
    "Shopify could not be reached just now; nothing was changed. Try again in a minute."
)


def _mutate(call, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return call(*args, **kwargs)
    except UserErrors as exc:
        raise ReturnActionError(user_errors_text(exc), code="user_errors") from exc
    except AdminApiError as exc:
        raise ReturnShopifyUnavailable(UNAVAILABLE_MESSAGE, code="unavailable") from exc


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
        raise ReturnActionError("Choose the variant to send instead.", code="variant")
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
            f"This return is {_status_label(request)}; it can't be approved.",
            code="state",
        )
    if not held and request.shopify_return_id is None:
        raise ReturnActionError(
            "This return is not in Shopify yet; it can't be approved.", code="not_synced"
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
                raise ReturnActionError("This request is linked to another return.", code="state")
            request.name = request.name or (returned.get("name") or "")[:64]
            request.sync_state = ReturnRequest.SyncState.SYNCED
        moved = request.status not in _DONE and _RANK.get(request.status, 0) < _RANK[Status.OPEN]
        if moved:
            request.status = Status.OPEN
        request.approved_at = request.approved_at or now
        request.approval_instructions = instructions or request.approval_instructions
        if label_file is not None:
            request.label_file.save(os.path.basename(label_file.name), label_file, save=False)
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
            locked.label_file.save(os.path.basename(label_file.name), label_file, save=False)
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
                "Shopify has no reverse fulfillment order for this return yet.", code="label"
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
            f"The return is approved, but the label could not be attached in Shopify: "
            f"{exc.message}",
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
        raise ReturnActionError("Choose a reason for declining.", code="decline_reason")
    note = (note or "").strip()
    if len(note) > DECLINE_NOTE_MAX:
        raise ReturnActionError(
            f"The note is too long (at most {DECLINE_NOTE_MAX} characters).", code="note"
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
            raise ReturnActionError("This return was closed or canceled meanwhile.", code="state")
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
    lines = {line.pk: line for line in request.line_items.select_related("line_item")}
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

    client = admin_client_for_shop(shop)
    unmapped = not request.reverse_fulfillment_order_gid or any(
        not lines[pk].reverse_fulfillment_order_line_item_gid for pk, q in wanted.items() if q
    )
    if unmapped:
        # Approved in Shopify's admin, or our approval's answer was lost: read the ids.
        returned = _mutate(shopify.return_fetch, client, return_gid=_return_gid(request)) or {}
        with transaction.atomic():
            _reverse_store(_locked(request, shop), returned)
        request = _fresh(request, shop)
        lines = {line.pk: line for line in request.line_items.select_related("line_item")}
        if not request.reverse_fulfillment_order_gid or any(
            not lines[pk].reverse_fulfillment_order_line_item_gid for pk, q in wanted.items() if q
        ):
            raise ReturnActionError(
                "Shopify has no reverse fulfillment order for these items yet; try again in "
                "a minute.",
                code="not_synced",
            )

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
            location = state["locations"].get(line.fulfillment_line_item_gid)
            if not location:
                raise ReturnActionError(
                    f"{line.line_item.title}: Shopify doesn't say which location shipped it; "
                    "choose not to restock, or restock it in Shopify's admin.",
                    code="location",
                )
            entry["locationId"] = location
        inputs.append(entry)
        sent.append(line)
    if inputs:
        try:
            answered = shopify.reverse_fulfillment_order_dispose_send(client, dispositions=inputs)
        except UserErrors as exc:
            raise ReturnActionError(_dispose_errors_text(exc, sent), code="user_errors") from exc
        except AdminApiError as exc:
            raise ReturnShopifyUnavailable(UNAVAILABLE_MESSAGE, code="unavailable") from exc
        for line in sent:
            gid = line.reverse_fulfillment_order_line_item_gid
            totals[line.pk] = max(totals[line.pk], answered.get(gid, 0))

    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        changed = _received_apply(
            request=request,
            totals=totals,
            source=OrderEvent.Source.STAFF,
            at=now,
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


def _process_input(
    *,
    client: AdminApiClient,
    request: ReturnRequest,
    resolution: str,
    quantities: Mapping[int, int] | None,
) -> tuple[
    dict[str, Any], Decimal, list[tuple[ReturnLineItem, int]], list[tuple[ReturnLineItem, int]]
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
        if resolution == Resolution.EXCHANGE and line.shopify_exchange_line_item_gid
    ]
    exchanged = [(line, q) for line, q in exchanged if q > 0]
    estimate = return_estimate(
        shop=request.shop,
        order=request.order,
        items=[(line.line_item, q) for line, q in chosen],
        resolution=resolution,
    )
    first = not any(line.processed_quantity for line in lines)
    if resolution == Resolution.EXCHANGE:
        total = _exchange_difference(
            client=client,
            request=request,
            chosen=chosen,
            exchanged=exchanged,
            estimate=estimate,
            first=first,
        )
    elif first:
        total = estimate.total
    else:
        # The return shipping fee was kept back at the first processing; not a second time.
        total = max(Decimal("0.00"), estimate.subtotal - estimate.restocking_fee)
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
    amount = {"amount": str(total), "currencyCode": estimate.currency}
    if total > 0 and resolution in {Resolution.REFUND, Resolution.EXCHANGE}:
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
        process["financialTransfer"] = {
            "issueRefund": {
                "orderTransactions": [{"transactionAmount": amount, "parentId": parent}]
            }
        }
    elif total > 0 and resolution == Resolution.STORE_CREDIT:
        process["financialTransfer"] = {
            "issueRefund": {
                "orderTransactions": [],
                "refundMethods": [{"storeCreditRefund": {"amount": amount}}],
            }
        }
    return process, total, chosen, exchanged


def _exchange_difference(
    *,
    client: AdminApiClient,
    request: ReturnRequest,
    chosen: list[tuple[ReturnLineItem, int]],
    exchanged: list[tuple[ReturnLineItem, int]],
    estimate: Estimate,
    first: bool,
) -> Decimal:
    """What an exchange leaves the shopper, to refund to the original payment: the value of
    the units coming back, less the price of the units sent in their place, less the policy's
    fees as the estimate computes them (the restocking fee only on units returned without an
    exchange, the return shipping fee once, at the first processing). Zero when the shopper
    owes money instead: Shopify then holds the exchange until paid (``amount_outstanding``)."""
    prices = (
        shopify.exchange_unit_prices(client, return_gid=_return_gid(request)) if exchanged else {}
    )
    sent_value = Decimal("0")
    for line, quantity in exchanged:
        price = prices.get(line.shopify_exchange_line_item_gid)
        if price is None:
            raise ReturnActionError(
                f"{line.line_item.title}: Shopify no longer has the variant sent in exchange; "
                "settle this return in Shopify's admin.",
                code="variant",
            )
        sent_value += price * quantity
    swapped = {line.pk: quantity for line, quantity in exchanged}
    kept = [
        (line.line_item, quantity - swapped.get(line.pk, 0))
        for line, quantity in chosen
        if quantity > swapped.get(line.pk, 0)
    ]
    restocking = Decimal("0")
    if kept:
        restocking = return_estimate(
            shop=request.shop, order=request.order, items=kept, resolution=Resolution.REFUND
        ).restocking_fee
    shipping = estimate.shipping_fee if first else Decimal("0")
    difference = estimate.subtotal - sent_value - restocking - shipping
    return max(Decimal("0.00"), difference.quantize(Decimal("0.01")))


@_one_at_a_time
def return_request_process(
    *,
    shop: Shop,
    request: ReturnRequest,
    resolution: str | None = None,
    quantities: Mapping[int, int] | None = None,
) -> ReturnRequest:
    """returnProcess: confirm units and settle them as ``resolution`` (default: the shopper's
    choice). Units: ``quantities`` ({ReturnLineItem.pk: units now}), else those received and
    not yet processed, else every unprocessed unit; a later call processes the rest.
    Refund to the original payment (financialTransfer.issueRefund with the order's payment as
    parent), store credit (refundMethods.storeCreditRefund), or exchange: the exchange lines
    made by returnCreate are confirmed with the same units (exchangeLineItems), which books
    them on the order; an exchange worth less than what came back (or lines returned without
    an exchange) refunds the difference less the policy's fees to the original payment in the
    same call (``_exchange_difference``); one worth more leaves the buyer owing the
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
    if resolution == Resolution.EXCHANGE and unmapped:
        # Approved while our call's answer was lost (the webhook linked it): read the ids.
        returned = _mutate(shopify.return_fetch, client, return_gid=_return_gid(request)) or {}
        with transaction.atomic():
            _reverse_store(_locked(request, shop), returned)
    try:
        process, amount, chosen, exchanged = _process_input(
            client=client, request=request, resolution=resolution, quantities=quantities
        )
    except AdminApiError as exc:
        raise ReturnShopifyUnavailable(UNAVAILABLE_MESSAGE, code="unavailable") from exc
    paid_back = amount if "financialTransfer" in process else Decimal("0")
    started = timezone.now()
    result = _mutate(shopify.return_process_send, client, process_input=process)
    outstanding = (
        ((result.get("order") or {}).get("totalOutstandingSet") or {}).get("shopMoney") or {}
    ).get("amount")
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
        request.refunded_amount += paid_back
        _replacements_record(request, result)
        if outstanding is not None and exchanged:
            # What the order still owes once the exchange is booked: Shopify holds the
            # replacement until it is paid. Not for a refund or store credit: an order whose
            # payment is only authorized owes its whole total, which no return changed.
            request.amount_outstanding = Decimal(str(outstanding))
        detail: dict[str, Any] = {
            "resolution": resolution,
            "amount": str(amount),
            "units": sum(q for _line, q in chosen),
        }
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
    logger.info(
        "returns.request.processed",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk, "resolution": resolution},
    )
    return request


@_one_at_a_time
def return_request_cancel(*, shop: Shop, request: ReturnRequest) -> ReturnRequest:
    """returnCancel (only before anything was processed, Shopify's rule); a request Shopify
    never accepted (or a held exchange) is canceled here only."""
    request = _fresh(request, shop)
    if request.status not in {Status.SUBMITTED, Status.REQUESTED, Status.OPEN}:
        raise ReturnActionError("This return can't be canceled.", code="state")
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
            "This request is being sent to Shopify; try again in a minute.", code="pending"
        )
    now = timezone.now()
    with transaction.atomic():
        request = _locked(request, shop)
        if request.status in _DONE - {Status.CANCELED}:
            raise ReturnActionError("This return was closed or declined meanwhile.", code="state")
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


# -- policy and blocklist -------------------------------------------------------------------


def return_policy_update(*, shop: Shop, **fields: Any) -> ReturnPolicy:
    policy = return_policy_get(shop=shop)
    allowed = {f.name for f in ReturnPolicy._meta.get_fields()} - {"id", "shop", "updated_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown policy fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    logger.info("returns.policy.updated", extra={"shop": shop.myshopify_domain})
    return policy


def blocklist_entry_add(*, shop: Shop, email: str, note: str = "") -> ReturnBlocklistEntry:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 255:
        raise ReturnActionError("Enter an email address.", code="email")
    entry, _created = ReturnBlocklistEntry.objects.get_or_create(
        shop=shop, email=email, defaults={"note": (note or "")[:255]}
    )
    return entry


def blocklist_entry_remove(*, shop: Shop, entry_id: int) -> bool:
    deleted, _ = ReturnBlocklistEntry.objects.filter(shop=shop, pk=entry_id).delete()
    return bool(deleted)


# -- Shopify's webhooks ---------------------------------------------------------------------

_TOPIC_STATUS = {
    "returns/request": Status.REQUESTED,
    "returns/approve": Status.OPEN,
    "returns/decline": Status.DECLINED,
    "returns/cancel": Status.CANCELED,
    "returns/close": Status.CLOSED,
    "returns/reopen": Status.OPEN,
}
_STATUS_STEP = {
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
        request.decline_note = (decline.get("note") or "")[:500]
    elif status == Status.CANCELED:
        request.canceled_at = at
    elif status == Status.CLOSED:
        request.closed_at = at


def return_webhook_apply(
    *, shop: Shop, topic: str, payload: dict, triggered_at: datetime | None = None
) -> ReturnRequest | None:
    """Apply one returns/* or reverse logistics webhook to the local return. Idempotent."""
    at = triggered_at or timezone.now()
    if topic == "reverse_fulfillment_orders/dispose":
        return _dispose_apply(shop=shop, payload=payload, at=at)
    if topic == "reverse_deliveries/attach_deliverable":
        return_id = _int((payload.get("return") or {}).get("id")) or shopify.gid_numeric(
            (payload.get("return") or {}).get("admin_graphql_api_id")
        )
    else:
        return_id = _return_id(payload)
    if return_id is None:
        logger.warning(
            "returns.webhook.no_id", extra={"shop": shop.myshopify_domain, "topic": topic}
        )
        return None

    with transaction.atomic():
        request = (
            ReturnRequest.objects.select_for_update()
            .select_related("order", "shop")
            .filter(shop=shop, shopify_return_id=return_id)
            .first()
        )
        refresh = False
        status = _TOPIC_STATUS.get(topic)
        if topic == "returns/process":
            status = Status.CLOSED if str(payload.get("status")).lower() == "closed" else None
        if request is None:
            if _order_id(payload) is None:
                # returns/update and reverse deliveries carry no order: nothing to attach to
                # until returns/request (always sent) has created the return here.
                logger.info(
                    "returns.webhook.unknown_return",
                    extra={"shop": shop.myshopify_domain, "topic": topic},
                )
                return None
            request, attached = _request_from_payload(
                shop=shop,
                return_id=return_id,
                payload=payload,
                status=status or Status.REQUESTED,
            )
            if attached:
                moved = bool(status) and _status_apply(
                    request=request, status=status, topic=topic, at=at, payload=payload
                )
            else:
                request.shopify_status_at = at
                request.requested_at = at
                request.save()
                moved = True
        else:
            moved = bool(status) and _status_apply(
                request=request, status=status, topic=topic, at=at, payload=payload
            )
            # Dropped by the order rule while it disagrees with ours, or a reopen with nothing
            # to reopen (its close not here yet, or in the same second): ask Shopify.
            refresh = (
                bool(status)
                and not moved
                and (status != request.status or topic == "returns/reopen")
            )
        if not request.name and payload.get("name"):
            request.name = str(payload["name"])[:64]
            request.save(update_fields=["name", "updated_at"])
        _lines_from_payload(request=request, payload=payload)
        _line_gids_store_from_payload(request=request, payload=payload)

        source = OrderEvent.Source.WEBHOOK
        if topic == "returns/update":
            _update_apply(request=request, payload=payload)
        elif topic == "reverse_deliveries/attach_deliverable":
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
                source=source,
                occurred_at=at,
                detail={
                    "carrier": tracking.get("carrier_name"),
                    "tracking_number": tracking.get("tracking_number"),
                },
                dedupe_suffix=f":{_int(payload.get('id'))}",
            )
        elif topic == "returns/process":
            # Our own returnProcess is echoed here: its processed_at was written after Shopify
            # answered, so it is not older than the echo. Only a processing made elsewhere (in
            # Shopify's admin) is a new step.
            echo = request.processed_at is not None and request.processed_at >= at - ECHO_SLACK
            if not echo:
                refresh = True  # processed in Shopify's admin: read the units it processed
                request.processed_at = at
                request.save(update_fields=["processed_at", "updated_at"])
                _step(
                    request=request,
                    step="processed",
                    source=source,
                    occurred_at=at,
                    dedupe_suffix=f":{at.isoformat()}",
                )
        if topic == "returns/reopen" and moved:
            _step(
                request=request,
                step="reopened",
                source=source,
                occurred_at=at,
                dedupe_suffix=f":{at.isoformat()}",
            )
        elif moved and request.status in _STATUS_STEP:
            _step(request=request, step=_STATUS_STEP[request.status], source=source, occurred_at=at)
        if request.status == Status.OPEN and not request.reverse_fulfillment_order_gid:
            # Open in Shopify (approved or made in its admin) and the app does not know the
            # reverse fulfillment order its dispose webhooks will name: read it.
            refresh = True
        if refresh:
            # A task row in this transaction: handed to RQ when it commits.
            _refresh_enqueue(request.pk)
    logger.info(
        "returns.webhook.applied",
        extra={
            "shop": shop.myshopify_domain,
            "topic": topic,
            "return_id": request.pk,
            "moved": moved,
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


def _refresh_enqueue(request_id: int) -> None:
    from returns.jobs import return_refresh_job

    task_defer(
        return_refresh_job,
        shop=None,
        kwargs={"request_id": request_id},
        # One pending read per return, however many webhooks left doubt.
        key=f"returns.refresh:{request_id}",
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


# -- privacy --------------------------------------------------------------------------------

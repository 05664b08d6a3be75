"""The shopper's request: validated against eligibility and the policy, stored with its lines
and photos in one transaction, and promised to Shopify through a task; the customer's
history and the auto-approve decision.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from returns import images
from returns.eligibility import (
    OPEN_STATUSES,
    ItemEligibility,
    ReasonCode,
    line_item_unit_value,
    order_eligibility,
    return_quote_for_policy,
)
from returns.models import (
    Resolution,
    ReturnBlocklistEntry,
    ReturnLineItem,
    ReturnPhoto,
    ReturnPolicy,
    ReturnRequest,
)
from returns.policy import (
    policy_resolutions,
    reason_label,
    reason_matches,
    reason_requires_note,
    reason_requires_photo,
    reasons_for_product_type,
    return_policy_get,
)
from returns.services.common import CUSTOMER_NOTE_MAX, ReturnItemInput, ReturnRefused, Status, _step
from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import Order, OrderEvent, Shop

logger = logging.getLogger(__name__)


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
                    resolution=str(item.get("resolution") or ""),
                    exchange_unit_price=Decimal(str(item["exchange_unit_price"]))
                    if item.get("exchange_unit_price") not in (None, "")
                    else None,
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


def _resolutions_resolve(
    *, policy: ReturnPolicy, items: list[ReturnItemInput], resolution: str
) -> tuple[list[ReturnItemInput], str]:
    """Every item with its own resolution (the submission's where it names none), each one
    the policy offers; and the request's: the items' one resolution, else MIXED."""
    allowed = policy_resolutions(policy)
    resolved = [item._replace(resolution=item.resolution or resolution) for item in items]
    if any(item.resolution not in allowed for item in resolved) or (
        not resolved and resolution not in allowed
    ):
        raise ReturnRefused(_("Choose how you would like to be paid back."), code="resolution")
    kinds = {item.resolution for item in resolved} or {resolution}
    return resolved, (kinds.pop() if len(kinds) == 1 else Resolution.MIXED.value)


def _validate_items(
    *,
    policy: ReturnPolicy,
    items: list[ReturnItemInput],
    eligibility: dict[int, ItemEligibility],
    photos: Mapping[int, Sequence[UploadedFile]],
) -> None:
    if not items:
        raise ReturnRefused(_("Choose at least one item to return."), code="no_items")
    wanted: dict[int, int] = {}
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
        # The reasons that suit the item's product type, as the portal offers them
        # (returns.policy.reasons_for_product_type): a post forged past the portal's form, or
        # any other caller, cannot give a serum "too small".
        if not reason_matches(item.reason, reasons_for_product_type(policy, elig.product_type)):
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
        if item.resolution == Resolution.EXCHANGE and not item.exchange_variant_id:
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
    eligibility: list[ItemEligibility] | None = None,
) -> ReturnRequest:
    """Store a shopper's return request at once (SUBMITTED, sync pending) and send it to
    Shopify from a job after commit. ``items``: (line_item_id = LineItem.pk, quantity, reason,
    note, exchange_variant_id, exchange_variant_title, resolution); an item without its own
    resolution takes ``resolution`` (pass "" when every item names one); ``photos``:
    {LineItem.pk: [files]} (type and size checked by the portal). Raises ReturnRefused with
    a shopper-readable message; nothing is stored then.
    Calls Shopify (returnableFulfillments) before storing, unless the caller passes what
    ``order_eligibility`` (Shopify's reading, never the local one) just returned as
    ``eligibility``: AdminApiError propagates."""
    photos = photos or {}
    normalized = _normalize_items(items)
    email = _submitter_check(
        shop=shop, order=order, customer_id=customer_id, customer_email=customer_email
    )
    policy = return_policy_get(shop=shop)
    normalized, resolution = _resolutions_resolve(
        policy=policy, items=normalized, resolution=resolution
    )
    results = (
        eligibility
        if eligibility is not None
        else order_eligibility(shop=shop, order=order, now=now)
    )
    by_line = {e.line_item.pk: e for e in results}
    _validate_items(
        policy=policy,
        items=normalized,
        eligibility=by_line,
        photos=photos,
    )
    quote, returnless = return_quote_for_policy(
        shop=shop,
        order=order,
        items=[
            (
                by_line[i.line_item_id].line_item,
                i.quantity,
                i.resolution,
                i.exchange_unit_price if i.resolution == Resolution.EXCHANGE else None,
            )
            for i in normalized
        ],
        policy=policy,
    )

    with transaction.atomic():
        # One submission per order at a time: the second waits here, then sees the first's
        # units as held and is refused ("already open").
        Order.objects.select_for_update().filter(pk=order.pk).first()
        _none_held(shop=shop, order=order, items=normalized, eligibility=by_line)
        request = ReturnRequest.objects.create(
            shop=shop,
            order=order,
            status=Status.SUBMITTED,
            sync_state=ReturnRequest.SyncState.PENDING,
            resolution=resolution,
            customer_id=customer_id if customer_id is not None else order.customer_id,
            customer_email=email,
            refund_estimate=quote.total,
            store_credit_estimate=quote.store_credit_total,
            is_returnless=returnless,
            store_credit_bonus_percent=Decimal(str(policy.store_credit_bonus_percent)),
            currency=quote.currency,
        )
        for item, item_quote in zip(normalized, quote.items, strict=True):
            _lines_create(
                request=request,
                item=item,
                elig=by_line[item.line_item_id],
                files=photos.get(item.line_item_id) or [],
                estimate=item_quote.total,
            )
        _step(request=request, step="submitted", source=OrderEvent.Source.SHOPPER)
        _send_enqueue(request)
    logger.info(
        "returns.request.submitted",
        extra={"shop": shop.myshopify_domain, "return_id": request.pk, "items": len(normalized)},
    )
    return request


def _submitter_check(
    *, shop: Shop, order: Order, customer_id: int | None, customer_email: str
) -> str:
    """The submitter owns the order and is not blocklisted; returns their email, normalised."""
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
    return email


def _none_held(
    *,
    shop: Shop,
    order: Order,
    items: list[ReturnItemInput],
    eligibility: dict[int, ItemEligibility],
) -> None:
    """Under the order's lock: refuse units another open return of the order holds."""
    held = _held_quantities(shop=shop, order=order)
    for item in items:
        elig = eligibility[item.line_item_id]
        shopify_quantity = sum(q for _gid, q in elig.fulfillment_lines)
        if held.get(item.line_item_id, 0) + item.quantity > shopify_quantity:
            raise ReturnRefused(
                _("%(item)s: a return for this item is already open.")
                % {"item": elig.line_item.title},
                code=ReasonCode.OPEN_REQUEST,
            )


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
    *,
    request: ReturnRequest,
    item: ReturnItemInput,
    elig: ItemEligibility,
    files: Sequence,
    estimate: Decimal,
) -> None:
    """One ReturnLineItem per fulfillment line the units come from (a line item shipped in two
    parcels is two fulfillment line items in Shopify's returnRequest); the item's estimate is
    shared between them by units, the last taking the cents rounding leaves."""
    remaining = item.quantity
    estimate_left = estimate
    first: ReturnLineItem | None = None
    for fli_gid, available in elig.fulfillment_lines:
        if remaining <= 0:
            break
        take = min(available, remaining)
        remaining -= take
        share = (
            estimate_left
            if remaining <= 0
            else (estimate * take / item.quantity).quantize(Decimal("0.01"))
        )
        estimate_left -= share
        line = ReturnLineItem.objects.create(
            shop=request.shop,
            return_request=request,
            line_item=elig.line_item,
            fulfillment_line_item_gid=fli_gid,
            quantity=take,
            reason=item.reason,
            resolution=item.resolution,
            estimate=share,
            customer_note=(item.note or "").strip()[:CUSTOMER_NOTE_MAX],
            exchange_variant_id=(
                item.exchange_variant_id if item.resolution == Resolution.EXCHANGE else None
            ),
            exchange_variant_title=(item.exchange_variant_title or "")[:255]
            if item.exchange_variant_id and item.resolution == Resolution.EXCHANGE
            else "",
        )
        first = first or line
    if first is None:
        # Eligibility counted units that no fulfillment line holds: refuse rather than keep
        # the shopper's photos attached to nothing.
        raise ReturnRefused(_("This item can't be returned."), code="quantity")
    for upload in files:
        _photo_keep(request, first, upload)


def _photo_keep(request: ReturnRequest, line: ReturnLineItem, upload: UploadedFile) -> None:
    """One photo of the request, decoded and encoded afresh (the portal's already were when
    stashed; any other caller's upload is checked here too), with the admin's thumbnail."""
    upload.seek(0)
    try:
        clean = images.photo_clean(upload)
        thumbnail = images.photo_thumbnail(clean.content)
    except images.ImageRefused as refused:
        raise ReturnRefused(_("Photos must be JPEG, PNG or WebP images."), code="photos") from (
            refused
        )
    stem = uuid.uuid4().hex
    photo = ReturnPhoto(
        shop=request.shop,
        return_line_item=line,
        content_type=clean.content_type,
        size_bytes=len(clean.content),
    )
    photo.image.save(f"{stem}.{clean.ext}", ContentFile(clean.content), save=False)
    photo.thumbnail.save(f"{stem}.{thumbnail.ext}", ContentFile(thumbnail.content), save=False)
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
        queue=Queues.SYNCS,
        retry_intervals_s=SEND_RETRY_INTERVALS_S,
        on_give_up=return_request_send_gave_up,
    )


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
        .exclude(pk=exclude_request_id or 0)
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
    if blocklist_contains(shop=shop, email=request.customer_email) or blocklist_contains(
        shop=shop, email=request.order.email
    ):
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

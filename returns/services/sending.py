"""Sending a submitted request to Shopify (returnRequest, or returnCreate for exchanges),
adopting what a timed-out call created, and auto-approving when the policy's rules hold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from returns import shopify
from returns.models import (
    Resolution,
    ReturnRequest,
)
from returns.policy import (
    return_policy_get,
)
from returns.services.actions import return_request_approve
from returns.services.common import (
    _RANK,
    ReturnActionError,
    ReturnShopifyUnavailable,
    Status,
    _order_gid,
    _step,
    user_errors_text,
)
from returns.services.requests import (
    _adopt_sent,
    _line_gids_store,
    _request_lines_input,
    _send_started_mark,
    _shopify_id_assign,
)
from returns.services.submission import return_auto_approve_decision
from shopapp.admin_api.client import (
    UserErrors,
    admin_client_for_shop,
)
from shopapp.models import OrderEvent

logger = logging.getLogger(__name__)


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
    if (
        request.resolution == Resolution.EXCHANGE
        or request.line_items.filter(exchange_variant_id__isnull=False).exists()
    ):
        # Any item exchanged (a MIXED request too): returnRequest cannot carry it.
        return _exchange_hold(request)
    shop = request.shop
    policy = return_policy_get(shop=shop)
    client = admin_client_for_shop(shop)
    created = None
    if request.send_started_at is not None:
        created = _adopt_sent(client, request, statuses={Status.REQUESTED, Status.OPEN})
    if created is None:
        lines = _request_lines_input(client=client, request=request, policy=policy)
        # Nothing is shipped back when the shopper keeps the items: no return shipping fee.
        fee = (
            policy.return_shipping_fee
            if policy.return_shipping_fee > 0 and not request.is_returnless
            else Decimal("0")
        )
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

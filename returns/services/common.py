"""What every stage of a return shares: statuses and their order, refusals, the timeline step that
announces news to notifications, and the merchant actions' one-at-a-time lock.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.services import notification_news_record, notification_trigger
from returns import shopify
from returns.models import (
    ReturnRequest,
)
from returns.news import return_news
from shopapp.admin_api.client import (
    AdminApiError,
    UserErrors,
)
from shopapp.models import OrderEvent, Shop
from shopapp.orders.services import order_event_record

logger = logging.getLogger(__name__)


Status = ReturnRequest.Status


CUSTOMER_NOTE_MAX = 300  # ReturnRequestLineItemInput.customerNote: "Maximum length: 300".


DECLINE_NOTE_MAX = 500  # ReturnDeclineRequestInput.declineNote: "Maximum length: 500".


# Clock difference allowed between Shopify's X-Shopify-Triggered-At and ours when telling our
# own returnProcess's echo from a processing made in Shopify's admin.
ECHO_SLACK = timedelta(seconds=5)


RETURN_REASON_NOTE_MAX = 255  # ReturnLineItemInput.returnReasonNote (returnCreate).


# Forward order of statuses; terminal ones share a rank (one never turns into another).
_RANK: dict[str, int] = {
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
    # Refund, store credit or exchange for this item; "" takes the submission's resolution.
    resolution: str = ""
    # An exchange for a different product: the new item's unit price as Shopify gave it when
    # the portal checked the variant at submit (returns.catalogue.exchange_variants_live), for
    # the estimate of the price difference; None for another size or colour of the same one.
    exchange_unit_price: Decimal | None = None


def user_errors_text(exc: UserErrors) -> str:
    """Shopify's userErrors as one sentence a shopper or merchant can read."""
    messages = [str(e.get("message") or "").strip() for e in exc.user_errors]
    text = " ".join(m if m.endswith(".") else m + "." for m in messages if m)
    return text or "Shopify refused the change."


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
    if step == "closed" and request.processed_at is not None:
        # Shopify closes a return once everything is processed: the "processed" message
        # already told the shopper it is done; a "closed" one in the same minute is noise.
        trigger = None
    if trigger:
        notification_trigger(shop=request.shop, order=request.order, trigger=trigger, news=news)
    else:
        # Received, canceled, reopened…: no message, but notifications keeps the return's
        # state (a canceled return no longer stops a review request).
        notification_news_record(shop=request.shop, order=request.order, news=news)
    return True


def _api_version_at_least(version: str, since: str) -> bool:
    # "2026-10" vs "2026-01": ISO year-month strings compare correctly as text; "unstable"
    # sorts after every dated version, as it should.
    return version >= since


def _order_gid(request: ReturnRequest) -> str:
    return request.order.admin_graphql_api_id or shopify.gid("Order", request.order.shopify_id)


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


# What staff read when an action meets a return in the wrong state, one sentence per action
# (whole sentences translate; a verb slotted into one does not).
_REFUSALS: dict[str, tuple[Any, Any]] = {
    "given a label": (
        _("This return is %(status)s; it can't be given a label."),
        _("This return is not in Shopify yet; it can't be given a label."),
    ),
    "declined": (
        _("This return is %(status)s; it can't be declined."),
        _("This return is not in Shopify yet; it can't be declined."),
    ),
    "closed": (
        _("This return is %(status)s; it can't be closed."),
        _("This return is not in Shopify yet; it can't be closed."),
    ),
    "processed": (
        _("This return is %(status)s; it can't be processed."),
        _("This return is not in Shopify yet; it can't be processed."),
    ),
    "received": (
        _("This return is %(status)s; it can't be received."),
        _("This return is not in Shopify yet; it can't be received."),
    ),
}


def _require(request: ReturnRequest, allowed: set[str], action: str) -> None:
    wrong_state, not_synced = _REFUSALS[action]
    if request.status not in allowed:
        raise ReturnActionError(
            str(wrong_state) % {"status": _status_label(request)},
            code="state",
        )
    if request.shopify_return_id is None:
        raise ReturnActionError(str(not_synced), code="not_synced")


def _is_held(request: ReturnRequest) -> bool:
    return request.shopify_return_id is None and request.sync_state == ReturnRequest.SyncState.HELD


def _return_gid(request: ReturnRequest) -> str:
    # Before Shopify assigned an id, no return of Shopify's has this one (its calls answer
    # NOT_FOUND, as for any unknown id).
    return shopify.gid("Return", request.shopify_return_id or 0)


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

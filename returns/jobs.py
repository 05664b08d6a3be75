"""RQ entry points for returns: thin, they take ids and call services.

``return_request_send_job`` runs a submission's task (shopapp.background: a row written with
the submission, handed to RQ on commit, handed again by the sweep if Redis was down). Shopify
outages and throttling are retried by the Admin API client first (seconds), then by RQ
(minutes); when no retry is left the request is marked failed with a message the shopper can
read (``return_request_send_gave_up``).

``return_refresh_job`` reads a return from Shopify and adopts it when webhooks leave doubt
or name what the app cannot place (returns.services.return_refresh).

``product_facts_refresh_job`` reads the facts of a new order's products (tags, type,
variants) that the app does not hold fresh, so the portal's pages find them stored
(returns.subscribers, returns.eligibility.order_product_facts_refresh).

``photo_stash_expire_job`` runs hourly from cron (shopapp.cron): photos stashed by portals
the shopper left before submitting are deleted once older than RETURNS_PHOTO_STASH_TTL_HOURS.
"""

import logging
from datetime import timedelta

from django.conf import settings

from returns import portal, services
from returns.eligibility import order_product_facts_refresh
from returns.models import ReturnRequest
from shopapp.models import Order

logger = logging.getLogger(__name__)

# Four more tries over ~20 minutes: a Shopify incident or a drained bucket passes in that
# time, and the shopper's status page says "sending" meanwhile.
SEND_RETRY_INTERVALS_S = (30, 120, 300, 900)
SEND_FAILED_MESSAGE = (
    "We couldn't send your request to the store just now. The store has been told and will "
    "follow up."
)


def return_request_send_job(request_id: int) -> str | None:
    request = services.return_request_send(request_id=request_id)
    return request.status if request is not None else None


def return_refresh_job(request_id: int) -> str | None:
    request = services.return_refresh(request_id=request_id)
    return request.status if request is not None else None


def product_facts_refresh_job(order_id: int) -> int:
    order = Order.objects.select_related("shop").filter(pk=order_id).first()
    if order is None or not order.shop.is_active:
        return 0
    return order_product_facts_refresh(shop=order.shop, order=order)


def return_request_send_gave_up(request_id: int) -> None:
    """The send task has no retry left: the request is marked failed, the shopper told."""
    request = ReturnRequest.objects.filter(pk=request_id).first()
    if request is None:
        return
    logger.warning("returns.send.gave_up", extra={"return_id": request_id})
    services.return_request_sync_fail(request=request, message=SEND_FAILED_MESSAGE)


def photo_stash_expire_job() -> int:
    return portal.photo_stash_expire(
        max_age=timedelta(hours=settings.RETURNS_PHOTO_STASH_TTL_HOURS)
    )

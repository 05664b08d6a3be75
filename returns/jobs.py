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

``exchange_catalogue_refresh_all_job`` runs hourly from cron: each shop whose policy offers
exchanges for a different product gets one ``exchange_catalogue_refresh_job`` (syncs queue),
which reads its products into Redis for the portal (returns.catalogue).

``photo_stash_expire_job`` runs hourly from cron (shopapp.cron): photos stashed by portals
the shopper left before submitting are deleted once older than RETURNS_PHOTO_STASH_TTL_HOURS.
"""

import logging
from datetime import timedelta

from django.conf import settings

from returns import portal, services
from returns.catalogue import exchange_catalogue_refresh
from returns.eligibility import order_product_facts_refresh
from returns.models import ReturnPolicy, ReturnRequest
from shopapp.admin_api.client import AdminApiError
from shopapp.models import Order, Shop

logger = logging.getLogger(__name__)

# Four more tries over ~20 minutes: a Shopify incident or a drained bucket passes in that
# time, and the shopper's status page says "sending" meanwhile.
SEND_RETRY_INTERVALS_S = (30, 120, 300, 900)
# A catalogue read that fails is tried again within the hour; the next round follows anyway.
CATALOGUE_RETRY_INTERVALS_S = (60, 600)
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


def exchange_catalogue_refresh_job(shop_id: int) -> int:
    """Read one shop's exchangeable products into Redis. A shop gone or awaiting a new token
    is skipped; Shopify errors are raised for RQ to retry."""
    shop = Shop.objects.filter(pk=shop_id, is_active=True, needs_reauth=False).first()
    if shop is None:
        logger.info("returns.catalogue.skipped", extra={"shop_id": shop_id})
        return 0
    try:
        return exchange_catalogue_refresh(shop=shop)
    except AdminApiError as exc:
        logger.warning(
            "returns.catalogue.shopify_error",
            extra={"shop": shop.myshopify_domain, "error": type(exc).__name__},
        )
        raise


def exchange_catalogue_refresh_all_job() -> int:
    """Each active shop whose policy offers exchanges for a different product: one refresh
    task on the syncs queue (one pending per shop)."""
    from returns.services.policy import exchange_catalogue_refresh_defer

    offering = ReturnPolicy.objects.filter(allow_product_exchange=True, allow_exchange=True).values(
        "shop_id"
    )
    count = 0
    for shop in Shop.objects.filter(is_active=True, needs_reauth=False, pk__in=offering):
        exchange_catalogue_refresh_defer(shop=shop)
        count += 1
    logger.info("returns.catalogue.enqueued", extra={"shops": count})
    return count

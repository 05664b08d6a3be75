"""RQ entry points for tracking: thin, they re-fetch by id and call a service.

shipment_refresh_job(shipment_id)      queued by the webhook services when a fulfillment
                                       webhook lacks details (events, estimate)
shipments_reconcile_all_job → shipments_reconcile_job(shop_id)   cron, every 10 min
delays_detect_all_job → delays_detect_job(shop_id)               cron, every 15 min
delivery_stats_refresh_all_job → delivery_stats_refresh_job(shop_id)   cron, daily
product_suggestions_refresh_all_job → product_suggestions_refresh_job(shop_id)   cron, hourly
"""

import logging

from shopapp.admin_api.client import AdminApiUnauthorized
from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import Shop
from tracking.models import Shipment

logger = logging.getLogger(__name__)

# Shopify outages and throttling pass within minutes; the next cron round starts over anyway.
SHOP_JOB_RETRY_INTERVALS_S = (30, 120, 300)
SHOP_JOB_TIMEOUT_S = 600


def _active_shop(shop_id: int) -> Shop | None:
    shop = Shop.objects.filter(pk=shop_id).first()
    if shop is None or not shop.is_active:
        return None
    return shop


def _call_shopify(fn, *, shop: Shop, log_key: str, **kwargs) -> int:
    """Run a service that calls the Admin API; give up quietly when no token can work."""
    from shopapp.auth.services import ShopTokenUnavailable

    if shop.needs_reauth:
        logger.info(f"{log_key}.skipped", extra={"shop": shop.myshopify_domain})
        return 0
    try:
        return fn(shop=shop, **kwargs)
    except ShopTokenUnavailable as exc:
        logger.warning(
            f"{log_key}.no_token", extra={"shop": shop.myshopify_domain, "reason": exc.reason}
        )
        return 0
    except AdminApiUnauthorized:
        # Revoked: app/uninstalled follows. Retrying would only fail again.
        logger.warning(f"{log_key}.unauthorized", extra={"shop": shop.myshopify_domain})
        return 0


def shipment_refresh_job(shipment_id: int) -> int:
    """Read one shipment's fulfillment (with its order's others) through GraphQL."""
    from tracking.refresh import order_shipments_refresh

    shipment = Shipment.objects.select_related("shop", "order").filter(pk=shipment_id).first()
    if shipment is None or not shipment.shop.is_active:
        logger.info("tracking.refresh.skipped", extra={"shipment_id": shipment_id})
        return 0
    return _call_shopify(
        order_shipments_refresh,
        shop=shipment.shop,
        log_key="tracking.refresh",
        order=shipment.order,
    )


def shipments_reconcile_job(shop_id: int) -> int:
    from tracking.refresh import shipments_reconcile

    shop = _active_shop(shop_id)
    if shop is None:
        logger.info("tracking.reconcile.skipped", extra={"shop_id": shop_id})
        return 0
    return _call_shopify(shipments_reconcile, shop=shop, log_key="tracking.reconcile")


def delays_detect_job(shop_id: int) -> dict[str, int]:
    from tracking.delays import delays_detect

    shop = _active_shop(shop_id)
    if shop is None:
        logger.info("tracking.delays.skipped", extra={"shop_id": shop_id})
        return {}
    return delays_detect(shop=shop)


def _fan_out(job, *, key: str, needs_token: bool) -> int:
    shops = Shop.objects.filter(is_active=True)
    if needs_token:
        shops = shops.filter(needs_reauth=False)
    count = 0
    for shop in shops:
        task_defer(
            job,
            shop=shop,
            kwargs={"shop_id": shop.pk},
            # One pending per shop: a round still waiting is not queued twice.
            key=f"{key}:{shop.pk}",
            # A round that reads Shopify is a sync; one on local rows is housekeeping.
            queue=Queues.SYNCS if needs_token else Queues.MAINTENANCE,
            timeout_s=SHOP_JOB_TIMEOUT_S,
            retry_intervals_s=SHOP_JOB_RETRY_INTERVALS_S,
        )
        count += 1
    return count


def shipments_reconcile_all_job() -> int:
    count = _fan_out(shipments_reconcile_job, key="tracking.reconcile", needs_token=True)
    logger.info("tracking.reconcile.enqueued", extra={"shops": count})
    return count


def delays_detect_all_job() -> int:
    # Detection reads only our own rows: no token needed, shops awaiting reauth included.
    count = _fan_out(delays_detect_job, key="tracking.delays", needs_token=False)
    logger.info("tracking.delays.enqueued", extra={"shops": count})
    return count


def delivery_stats_refresh_job(shop_id: int) -> int:
    from tracking.estimates import delivery_stats_rebuild

    shop = _active_shop(shop_id)
    if shop is None:
        logger.info("tracking.estimates.skipped", extra={"shop_id": shop_id})
        return 0
    return delivery_stats_rebuild(shop=shop)


def delivery_stats_refresh_all_job() -> int:
    # Our own rows only: no token needed.
    count = _fan_out(delivery_stats_refresh_job, key="tracking.estimates", needs_token=False)
    logger.info("tracking.estimates.enqueued", extra={"shops": count})
    return count


def product_suggestions_refresh_job(shop_id: int) -> int:
    """Read one shop's "you may also like" products through the Admin API."""
    from tracking.suggestions import product_suggestions_refresh

    shop = _active_shop(shop_id)
    if shop is None:
        logger.info("tracking.suggestions.skipped", extra={"shop_id": shop_id})
        return 0
    return _call_shopify(product_suggestions_refresh, shop=shop, log_key="tracking.suggestions")


def product_suggestions_refresh_all_job() -> int:
    """Each shop that shows "you may also like" (the default) and has a working token: one
    refresh task on the syncs queue (one pending per shop)."""
    from tracking.models import TrackingSettings

    hidden = TrackingSettings.objects.filter(show_product_suggestions=False).values("shop_id")
    count = 0
    for shop in Shop.objects.filter(is_active=True, needs_reauth=False).exclude(pk__in=hidden):
        task_defer(
            product_suggestions_refresh_job,
            shop=shop,
            kwargs={"shop_id": shop.pk},
            key=f"tracking.suggestions:{shop.pk}",
            queue=Queues.SYNCS,
            timeout_s=SHOP_JOB_TIMEOUT_S,
            retry_intervals_s=SHOP_JOB_RETRY_INTERVALS_S,
        )
        count += 1
    logger.info("tracking.suggestions.enqueued", extra={"shops": count})
    return count

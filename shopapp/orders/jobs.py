"""RQ entry points for the orders mirror: thin, they re-fetch by id and call a service.

``orders_reconcile_all_job`` runs from cron every 5 minutes (shopapp.cron) and fans out one
``orders_reconcile_job`` task per shop that can be called.

``order_line_images_refresh_job`` reads a new order's line pictures (shopapp.orders.images).
"""

import logging

from shopapp.admin_api.client import AdminApiUnauthorized
from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import Order, Shop
from shopapp.orders.images import order_line_images_refresh
from shopapp.orders.reconcile import orders_reconcile

logger = logging.getLogger(__name__)

# Shopify outages and throttling pass within minutes; three tries spread over ~8 minutes,
# and the next cron round starts over anyway (the cursor only moves on success).
RECONCILE_RETRY_INTERVALS_S = (30, 120, 300)
RECONCILE_JOB_TIMEOUT_SECONDS = 600


def orders_reconcile_job(shop_id: int) -> int:
    """Reconcile one shop; network/5xx/throttle errors propagate so RQ retries the job."""
    from shopapp.auth.services import ShopTokenUnavailable

    shop = Shop.objects.filter(pk=shop_id).first()
    if shop is None or not shop.is_active or shop.needs_reauth:
        logger.info("orders.reconcile.skipped", extra={"shop_id": shop_id})
        return 0
    try:
        return orders_reconcile(shop=shop)
    except ShopTokenUnavailable as exc:
        # No token to call with until the merchant opens the app (or reinstalls).
        logger.warning(
            "orders.reconcile.no_token",
            extra={"shop": shop.myshopify_domain, "reason": exc.reason},
        )
        return 0
    except AdminApiUnauthorized:
        # A token fresh from the auth service refused: revoked, the uninstall webhook will
        # follow. Retrying would only fail again.
        logger.warning("orders.reconcile.unauthorized", extra={"shop": shop.myshopify_domain})
        return 0


def orders_reconcile_all_job() -> int:
    """One reconciliation task per active shop that has a usable token (one pending per shop:
    a shop whose last round is still waiting is not queued twice)."""
    shops = list(Shop.objects.filter(is_active=True, needs_reauth=False))
    for shop in shops:
        task_defer(
            orders_reconcile_job,
            shop=shop,
            kwargs={"shop_id": shop.pk},
            key=f"orders.reconcile:{shop.pk}",
            queue=Queues.SYNCS,
            timeout_s=RECONCILE_JOB_TIMEOUT_SECONDS,
            retry_intervals_s=RECONCILE_RETRY_INTERVALS_S,
        )
    logger.info("orders.reconcile.enqueued", extra={"shops": len(shops)})
    return len(shops)


def order_line_images_refresh_job(order_id: int) -> int:
    """Store the order's line pictures; network/5xx/throttle errors propagate so RQ retries."""
    from shopapp.auth.services import ShopTokenUnavailable

    order = Order.objects.select_related("shop").filter(pk=order_id).first()
    if order is None or not order.shop.is_active or order.shop.needs_reauth:
        return 0
    try:
        return order_line_images_refresh(shop=order.shop, order=order)
    except ShopTokenUnavailable as exc:
        logger.warning(
            "orders.line_images.no_token",
            extra={"shop": order.shop.myshopify_domain, "reason": exc.reason},
        )
        return 0
    except AdminApiUnauthorized:
        logger.warning(
            "orders.line_images.unauthorized", extra={"shop": order.shop.myshopify_domain}
        )
        return 0

"""RQ entry points for the orders mirror: thin, they re-fetch by id and call a service.

``orders_reconcile_all_job`` runs from cron every 5 minutes (shopapp.cron) and fans out one
``orders_reconcile_job`` per shop that can be called.
"""

import logging

import django_rq
from rq import Retry

from shopapp.admin_api.client import AdminApiUnauthorized
from shopapp.models import Shop
from shopapp.orders.reconcile import orders_reconcile

logger = logging.getLogger(__name__)

# Shopify outages and throttling pass within minutes; three tries spread over ~8 minutes,
# and the next cron round starts over anyway (the cursor only moves on success).
RECONCILE_RETRY = Retry(max=3, interval=[30, 120, 300])
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
    """Enqueue one reconciliation per active shop that has a usable token."""
    queue = django_rq.get_queue("default")
    shop_ids = list(
        Shop.objects.filter(is_active=True, needs_reauth=False).values_list("id", flat=True)
    )
    for shop_id in shop_ids:
        queue.enqueue(
            orders_reconcile_job,
            shop_id,
            retry=RECONCILE_RETRY,
            job_timeout=RECONCILE_JOB_TIMEOUT_SECONDS,
        )
    logger.info("orders.reconcile.enqueued", extra={"shops": len(shop_ids)})
    return len(shop_ids)

"""RQ entry points for insights: thin, they re-fetch by id and call a service.

insights_rollup_all_job(days) → insights_rollup_job(shop_id, days)   cron (shopapp.cron)
insights_rollup_first_defer(shop)   the home page of a shop without a rollup yet
"""

from __future__ import annotations

import logging
from datetime import timedelta

from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import Shop

logger = logging.getLogger(__name__)

# A big shop's first count (its whole history) takes a while; the next cron round redoes it.
ROLLUP_TIMEOUT_S = 1800
ROLLUP_RETRY_INTERVALS_S = (60, 300)
# The frequent round: today and yesterday (yesterday's evening in the shop's zone).
RECENT_DAYS = 2
# After a shop's first count, the window is counted again this much later.
FIRST_RECOUNT_AFTER = timedelta(minutes=5)


def insights_rollup_job(shop_id: int, days: int = RECENT_DAYS) -> int:
    from insights.models import ShopDay
    from insights.services import ROLLUP_WINDOW_DAYS, shop_days_refresh

    shop = Shop.objects.filter(pk=shop_id, is_active=True).first()
    if shop is None:
        logger.info("insights.rollup.skipped", extra={"shop_id": shop_id})
        return 0
    is_first = not ShopDay.objects.filter(shop=shop).exists()
    written = shop_days_refresh(shop=shop, days=days)
    if is_first:
        # A shop's mirror keeps filling for minutes after install (the first reconciliation,
        # a burst of webhooks): its history is counted once more, soon, not at the next hour.
        task_defer(
            insights_rollup_job,
            shop=shop,
            kwargs={"shop_id": shop.pk, "days": ROLLUP_WINDOW_DAYS},
            key=f"insights.rollup:{ROLLUP_WINDOW_DAYS}:{shop.pk}",
            delay=FIRST_RECOUNT_AFTER,
            timeout_s=ROLLUP_TIMEOUT_S,
            retry_intervals_s=ROLLUP_RETRY_INTERVALS_S,
            queue=Queues.MAINTENANCE,
        )
    return written


def insights_rollup_all_job(days: int = RECENT_DAYS) -> int:
    count = 0
    for shop in Shop.objects.filter(is_active=True):
        task_defer(
            insights_rollup_job,
            shop=shop,
            kwargs={"shop_id": shop.pk, "days": days},
            # One pending per shop and length: a round still waiting is not queued twice.
            key=f"insights.rollup:{days}:{shop.pk}",
            timeout_s=ROLLUP_TIMEOUT_S,
            retry_intervals_s=ROLLUP_RETRY_INTERVALS_S,
            queue=Queues.MAINTENANCE,
        )
        count += 1
    logger.info("insights.rollup.enqueued", extra={"shops": count, "days": days})
    return count


def insights_rollup_window_job() -> int:
    from insights.services import ROLLUP_WINDOW_DAYS

    return insights_rollup_all_job(days=ROLLUP_WINDOW_DAYS)


def insights_rollup_first_defer(*, shop: Shop) -> bool:
    """Count a shop's history in the background (once: a pending one is not doubled)."""
    task_defer(
        insights_rollup_job,
        shop=shop,
        kwargs={"shop_id": shop.pk, "days": RECENT_DAYS},
        key=f"insights.rollup:{RECENT_DAYS}:{shop.pk}",
        timeout_s=ROLLUP_TIMEOUT_S,
        retry_intervals_s=ROLLUP_RETRY_INTERVALS_S,
        queue=Queues.MAINTENANCE,
    )
    return True

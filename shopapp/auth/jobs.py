"""RQ jobs for the shop's lifecycle: thin, they re-fetch by id and call a service."""

import logging

from shopapp.admin_api.client import AdminApiUnauthorized
from shopapp.auth.services import ShopTokenUnavailable, shop_details_sync
from shopapp.models import Shop

logger = logging.getLogger(__name__)


def shop_details_sync_job(shop_id: int) -> None:
    shop = Shop.objects.filter(pk=shop_id, is_active=True).first()
    if shop is None:
        return
    try:
        shop_details_sync(shop=shop)
    except (ShopTokenUnavailable, AdminApiUnauthorized) as exc:
        # No usable token: retrying cannot help until the merchant opens the app again.
        logger.warning(
            "auth.shop_details.no_token",
            extra={"shop": shop.myshopify_domain, "error": type(exc).__name__},
        )

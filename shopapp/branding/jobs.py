"""RQ jobs for the shop's branding: thin, they re-fetch by id and call a service."""

from __future__ import annotations

import logging

from shopapp.admin_api.client import AdminApiUnauthorized, GraphQLErrors
from shopapp.auth.services import ShopTokenUnavailable
from shopapp.branding.theme import branding_theme_refresh
from shopapp.models import Shop

logger = logging.getLogger(__name__)


def branding_theme_read_job(shop_id: int) -> bool:
    """True when the theme gave colours."""
    shop = Shop.objects.filter(pk=shop_id, is_active=True).first()
    if shop is None:
        return False
    try:
        return branding_theme_refresh(shop=shop) is not None
    except (ShopTokenUnavailable, AdminApiUnauthorized) as exc:
        # No usable token: retrying cannot help until the merchant opens the app again.
        logger.warning(
            "shopapp.branding.theme_no_token",
            extra={"shop": shop.myshopify_domain, "error": type(exc).__name__},
        )
        return False
    except GraphQLErrors as exc:
        if not any(
            (error.get("extensions") or {}).get("code") == "ACCESS_DENIED" for error in exc.errors
        ):
            raise
        # Installed before the app asked for read_themes: the branding keeps its own colours
        # until the merchant approves the new scope (app/scopes_update reads it again).
        logger.warning(
            "shopapp.branding.theme_access_denied", extra={"shop": shop.myshopify_domain}
        )
        return False

"""Read-only questions about a shop's installation and tokens."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shopapp.models import Shop


def shop_token_is_usable(*, shop: Shop) -> bool:
    """Whether the shop has a token the app may use (refreshing it if it is about to expire).

    Not usable: never installed, uninstalled, waiting for the merchant (``needs_reauth``), or
    holding a legacy non-expiring token, which stops working on 2027-01-01 and is migrated
    (or replaced by a token exchange) on the next occasion.
    """
    return bool(
        shop.is_active
        and not shop.needs_reauth
        and shop.access_token_encrypted
        and shop.access_token_expires_at is not None
    )


def shop_zone(shop: Shop) -> ZoneInfo:
    """The shop's IANA timezone (Shopify's ``ianaTimezone``), UTC when unknown."""
    try:
        return ZoneInfo(shop.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")

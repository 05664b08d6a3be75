"""The one rule for what a shop domain may be, wherever one comes in (query, JWT, webhook)."""

import re

# Shopify's documented check for the callback's ``shop``; the value is lowercased first
# because Shopify domains are case-insensitive and stored lowercase.
SHOP_DOMAIN_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")


def shop_domain_clean(value: str | None) -> str | None:
    """The lowercased domain, or None when ``value`` is not a myshopify domain."""
    candidate = (value or "").lower()
    if len(candidate) > 255 or not SHOP_DOMAIN_RE.fullmatch(candidate):
        return None
    return candidate

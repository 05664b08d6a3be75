"""The storefront side of the platform, shared by the tracking page and the returns portal:

pages.py      language, Liquid-safe output, the proxied answer's headers, proxy URLs
links.py      signed order links (emails, the tracking page, the portal) and form tokens
ratelimit.py  lookup rate limits on Redis
lookup.py     finding a shopper's order from what they typed (number + email, phone or
              postal code), the number normalised once
"""

from shopapp.storefront.links import order_page_url  # noqa: E402  (links imports pages)
from shopapp.storefront.pages import (
    HTML_CONTENT_TYPE,
    LIQUID_CONTENT_TYPE,
    STOREFRONT_LANGUAGES,
    liquid_safe,
    storefront_client_ip,
    storefront_language,
    storefront_proxy_url,
    storefront_response,
    supported_language,
)

__all__ = [
    "HTML_CONTENT_TYPE",
    "LIQUID_CONTENT_TYPE",
    "STOREFRONT_LANGUAGES",
    "liquid_safe",
    "order_page_url",
    "storefront_client_ip",
    "storefront_language",
    "storefront_proxy_url",
    "storefront_response",
    "supported_language",
]

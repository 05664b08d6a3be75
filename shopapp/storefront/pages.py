"""What every storefront page behind the app proxy shares (tracking, returns): the language
choice, Liquid-safe output, and the response's headers.

    view ─ render_to_string(...) ─▶ liquid_safe(body) ─▶ storefront_response(...)
         Content-Type application/liquid (inside the merchant's theme) or text/html (standalone)
         Cache-Control private, no-store; Content-Language

Why ``liquid_safe``: Shopify renders a ``Content-Type: application/liquid`` answer as Liquid over
the *whole* body (shopify.dev, "App proxies"), so a ``{{ … }}`` or ``{% … %}`` in order data or
in what a shopper typed would run in the theme (Shopify's app review rates Liquid injection
high). After Django's HTML autoescaping, every brace becomes an entity, which browsers decode
back in text and attribute values alike; our own markup uses none.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation.trans_real import parse_accept_lang_header

from shopapp.models import Order, Shop
from shopapp.storefront.ratelimit import client_address

LIQUID_CONTENT_TYPE = "application/liquid; charset=utf-8"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
# The languages the storefront pages are translated into (each app's locale/ folder).
STOREFRONT_LANGUAGES = ("en", "es", "fr", "de")
# Accept-Language is shopper input: parse a bounded prefix only.
_ACCEPT_LANGUAGE_MAX_CHARS = 256


def storefront_proxy_url(shop: Shop, path: str = "") -> str:
    """An absolute storefront URL under the app proxy, for emails and SMS:
    ``https://<shop>.myshopify.com/<prefix>/<subpath>/<path>``.

    The myshopify domain always works: Shopify redirects it to the shop's primary domain,
    keeping the path. A development store elsewhere (the devshop) sets
    ``SHOPIFY_STOREFRONT_URL_TEMPLATE``.
    """
    base = settings.SHOPIFY_STOREFRONT_URL_TEMPLATE.format(shop=shop.myshopify_domain)
    prefix = settings.SHOPIFY_APP_PROXY_PREFIX.strip("/")
    subpath = settings.SHOPIFY_APP_PROXY_SUBPATH.strip("/")
    url = f"{base.rstrip('/')}/{prefix}/{subpath}"
    return f"{url}/{path.lstrip('/')}" if path else url


def liquid_safe(html: str) -> str:
    """Neutralise Liquid in already HTML-escaped output: no ``{`` or ``}`` survives."""
    return html.replace("{", "&#123;").replace("}", "&#125;")


def supported_language(code: str | None) -> str:
    """The supported language for a locale code ("fr-CA" → "fr"), or "" if none."""
    primary = (code or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in STOREFRONT_LANGUAGES else ""


def storefront_language(request: HttpRequest, shop: Shop, order: Order | None = None) -> str:
    """An explicit ``locale`` parameter (a language picker, a localised link), then the order's
    locale (the language the shopper bought in), then Accept-Language, then the shop's primary
    locale; English when none is supported.

    Shopify adds no locale to proxied requests (shopify.dev, "App proxies": shop,
    logged_in_customer_id, path_prefix, timestamp, signature), hence the fallbacks.
    """
    explicit = supported_language(request.GET.get("locale", ""))
    if explicit:
        return explicit
    if order is not None and supported_language(order.locale):
        return supported_language(order.locale)
    accept = request.headers.get("Accept-Language", "")[:_ACCEPT_LANGUAGE_MAX_CHARS]
    for code, _quality in parse_accept_lang_header(accept):
        if supported_language(code):
            return supported_language(code)
    return supported_language(shop.primary_locale) or "en"


def storefront_client_ip(request: HttpRequest) -> str:
    """The shopper's address as Shopify's app proxy reported it, past our own trusted proxies
    (``shopapp.storefront.ratelimit.client_address``)."""
    return client_address(
        request.headers.get("X-Forwarded-For", ""),
        request.META.get("REMOTE_ADDR", ""),
        via_shopify=True,
    )


def storefront_response(
    content: str | bytes, *, is_standalone: bool, language: str, status: int = 200
) -> HttpResponse:
    """The answer for a proxied page: ``content`` must already be Liquid-safe (bytes: UTF-8,
    as a cached page is kept).

    Liquid inside the theme by default; a full HTML page when the merchant chose standalone.
    Per-shopper content behind a shared URL: never in a shared cache, never stored.
    """
    response = HttpResponse(
        content,
        status=status,
        content_type=HTML_CONTENT_TYPE if is_standalone else LIQUID_CONTENT_TYPE,
    )
    response["Cache-Control"] = "private, no-store"
    response["Content-Language"] = language
    return response

"""Framing headers on every answer, error pages included.

Views set their own headers, but a 404 from the URL resolver, a 405 from a class of view, a 500
or Django's admin never reach those views. This middleware sits outermost, so it sees every
response last, and decides who may frame it by where it was asked:

    /app/, /auth/   the embedded admin: only the shop's admin (``frame-ancestors`` with the
                    shop of the ``shop`` parameter, else any shop's admin), no X-Frame-Options
                    (it would forbid Shopify's frame, and CSP is what Shopify checks)
    /proxy/         storefront pages: Shopify fetches them server-side and the theme's editor
                    previews the storefront in a frame, so no framing header (Django's
                    clickjacking middleware's DENY is taken off)
    anything else   no one: ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``

A response that already says ``frame-ancestors`` keeps what its view decided.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from shopapp.auth.domains import shop_domain_clean
from shopapp.auth.session import embedded_headers_set

EMBEDDED_PREFIXES = ("/app/", "/auth/")
STOREFRONT_PREFIX = "/proxy/"


class FramingHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        return framing_headers_set(response, request=request)


def framing_headers_set(response: HttpResponseBase, *, request: HttpRequest) -> HttpResponseBase:
    """Who may frame ``response``, by the path it answers (see the module docstring)."""
    path = request.path
    if path.startswith(STOREFRONT_PREFIX):
        if "X-Frame-Options" in response:
            del response["X-Frame-Options"]
        return response
    policy = response.get("Content-Security-Policy", "")
    if path.startswith(EMBEDDED_PREFIXES):
        if "frame-ancestors" in policy:
            # The view chose; Django's clickjacking middleware must not veto Shopify's frame.
            if "X-Frame-Options" in response:
                del response["X-Frame-Options"]
            return response
        return embedded_headers_set(
            response, shop_domain=shop_domain_clean(request.GET.get("shop"))
        )
    if "frame-ancestors" not in policy:
        response["Content-Security-Policy"] = (
            f"{policy.rstrip('; ')}; frame-ancestors 'none'" if policy else "frame-ancestors 'none'"
        )
    response["X-Frame-Options"] = "DENY"
    return response

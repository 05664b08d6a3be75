"""The review request's rating page, on the storefront through Shopify's app proxy.

    GET  /proxy/review/<token>[?rating=N]  the page: the link's star chosen (nothing stored),
                                          an optional comment, "Send"; once answered, the
                                          answer, a way to change it and the merchant's
                                          review page when they set one
    POST /proxy/review/<token>            rating, comment, form token → the answer
                                          (notifications.reviews) → 303 to the page

Every request: ``app_proxy_required`` (Shopify's signature, a fresh timestamp, an installed
shop → else 403), then the link's own signature and shop (else 404, nothing stored), then for
a POST the form token (no cookies through the proxy, so it stands in for Django's CSRF token)
and the rate limit the tracking page's problem report spends (per client and per message).
The answer is Liquid-safe (``shopapp.storefront.liquid_safe``) and never cached; the page
renders inside the merchant's theme.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from notifications.models import RATING_MAX, RATING_MIN, Message
from notifications.recipients import notification_settings_for
from notifications.reviews import (
    COMMENT_MAX_LENGTH,
    ReviewRefused,
    review_answer_get,
    review_answer_record,
    review_form_token,
    review_form_token_valid,
    review_link_read,
    review_rating_parse,
    review_request_get,
)
from shopapp.branding.selectors import brand_look_or_default
from shopapp.http import ProxyRequest
from shopapp.proxy import app_proxy_required
from shopapp.storefront import (
    liquid_safe,
    storefront_client_ip,
    storefront_language,
    storefront_response,
    supported_language,
)
from shopapp.storefront.ratelimit import lookup_rate_limit_hit

logger = logging.getLogger(__name__)

# What a shopper typed, echoed back after an error: the limit and a little more, never more.
ECHO_MAX_CHARS = COMMENT_MAX_LENGTH + 100


@app_proxy_required
@require_http_methods(["GET", "HEAD", "POST"])
def review_page(request: ProxyRequest, token: str) -> HttpResponse:
    shop = request.shop
    explicit = supported_language(request.GET.get("locale", ""))
    link = review_link_read(token, shop=shop)
    message = review_request_get(shop=shop, link=link) if link is not None else None
    if message is None:
        # Forged, edited, expired, another shop's, or an order no longer shown: one answer.
        language = storefront_language(request, shop)
        return _render(request, language=language, context={"view": "invalid"}, status=404)
    language = storefront_language(request, shop, message.order)
    locale_query = urlencode({"locale": explicit}) if explicit else ""
    if request.method == "POST":
        return _answer(request, message=message, token=token, language=language, query=locale_query)
    chosen = review_rating_parse(request.GET.get("rating"))
    return _page(request, message=message, token=token, language=language, chosen=chosen)


def _answer(
    request: ProxyRequest, *, message: Message, token: str, language: str, query: str
) -> HttpResponse:
    shop = request.shop
    rating = review_rating_parse(request.POST.get("rating"))
    comment = request.POST.get("comment", "")

    def refused(error: str) -> HttpResponse:
        # The page again with the error and what was typed (bounded); nothing stored.
        return _page(
            request,
            message=message,
            token=token,
            language=language,
            chosen=rating,
            comment=comment[:ECHO_MAX_CHARS],
            error=error,
            status=400,
        )

    with translation.override(language):
        if not review_form_token_valid(request.POST.get("form_token", ""), message=message):
            logger.info(
                "notifications.review.form_token_invalid", extra={"shop": shop.myshopify_domain}
            )
            return refused(_("This form has expired. Please choose your rating again."))
        if rating is None:
            return refused(_("Choose from one to five stars."))
        if len(comment.strip()) > COMMENT_MAX_LENGTH:
            return refused(
                _("Please keep your comment under %(limit)d characters.")
                % {"limit": COMMENT_MAX_LENGTH}
            )
    limited = lookup_rate_limit_hit(
        shop_id=shop.pk,
        client_ip=storefront_client_ip(request),
        order_key=f"review:{message.pk}",
    )
    if not limited.allowed:
        minutes = max(1, (limited.retry_after + 59) // 60)
        response = _render(
            request,
            language=language,
            context={"view": "rate_limited", "minutes": minutes},
            status=429,
        )
        response["Retry-After"] = str(limited.retry_after)
        return response
    try:
        review_answer_record(shop=shop, message=message, rating=rating, comment=comment)
    except ReviewRefused:
        with translation.override(language):
            return refused(_("This review request can't be answered any more."))
    # The page itself, relative to …/review/<token> ("./" so the token's ':' never reads as a
    # URL scheme); Shopify's proxy hands the 303 to the browser.
    response = HttpResponseRedirect(f"./{token}" + (f"?{query}" if query else ""), status=303)
    response["Cache-Control"] = "private, no-store"
    return response


def _page(
    request: ProxyRequest,
    *,
    message: Message,
    token: str,
    language: str,
    chosen: int | None = None,
    comment: str | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    shop = request.shop
    answer = review_answer_get(shop=shop, message=message)
    explicit = supported_language(request.GET.get("locale", ""))
    action = f"./{token}" + (f"?{urlencode({'locale': explicit})}" if explicit else "")
    selected = chosen or (answer.rating if answer is not None else None)
    context = {
        "view": "form",
        "order_name": message.order.name,
        "answer": answer,
        "stars": [
            {"value": n, "is_checked": n == selected, "glyphs": "★" * n}
            for n in range(RATING_MIN, RATING_MAX + 1)
        ],
        "comment": comment if comment is not None else (answer.comment if answer else ""),
        "comment_max": COMMENT_MAX_LENGTH,
        "error": error,
        "form_action": action,
        "form_token": review_form_token(message),
        "review_page_url": notification_settings_for(shop=shop).review_page_url
        if answer is not None
        else "",
    }
    return _render(request, language=language, context=context, status=status)


def _render(
    request: ProxyRequest, *, language: str, context: dict[str, Any], status: int
) -> HttpResponse:
    shop = request.shop
    look = brand_look_or_default(shop=shop)
    with translation.override(language):
        body = render_to_string(
            "notifications/review_page.html",
            {
                **context,
                "lang": language,
                "shop_name": shop.name or shop.myshopify_domain,
            },
        )
    css = render_to_string("notifications/review_page.css", {"brand": look})
    # Inside the theme, as the tracking page: our static CSS (colours validated) outside the
    # Liquid-safe body, which neutralises every brace of what was rendered.
    content = f"<style>{css}</style>\n{liquid_safe(body)}"
    return storefront_response(content, is_standalone=False, language=language, status=status)

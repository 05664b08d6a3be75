"""The one-click unsubscribe endpoint (RFC 8058).

GET  /notifications/unsubscribe/<token>  → a confirm page with one button (a GET must not
                                           unsubscribe: link scanners and previews open it)
POST /notifications/unsubscribe/<token>  → Suppression, 200, no confirmation asked
                                           (mail providers POST "List-Unsubscribe=One-Click")
tampered or unknown token                → 400 with a clear message, nothing changed
"""

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notifications.models import Channel
from notifications.services import suppression_add
from notifications.unsubscribe import unsubscribe_token_read
from shopapp.models import Shop

logger = logging.getLogger(__name__)

_NO_STORE = "private, no-store"


def _page(request: HttpRequest, *, state: str, shop: Shop | None, status: int) -> HttpResponse:
    response = render(
        request,
        "notifications/unsubscribe.html",
        {"state": state, "shop_name": (shop.name or shop.myshopify_domain) if shop else ""},
        status=status,
    )
    response["Cache-Control"] = _NO_STORE
    return response


# Mail providers POST without any cookie or CSRF token (RFC 8058 §3.1); the signed token in the
# URL is what authorises the request, so Django's CSRF check has nothing to protect here.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    target = unsubscribe_token_read(token)
    if target is None or target.channel not in Channel.values:
        logger.info("notifications.unsubscribe.bad_token")
        return _page(request, state="invalid", shop=None, status=400)
    shop = Shop.objects.filter(pk=target.shop_id).first()
    if shop is None:
        logger.info("notifications.unsubscribe.unknown_shop", extra={"shop_id": target.shop_id})
        return _page(request, state="invalid", shop=None, status=400)
    if request.method == "POST":
        suppression_add(
            shop=shop, channel=target.channel, address=target.address, reason="unsubscribed"
        )
        logger.info(
            "notifications.unsubscribe.done",
            extra={"shop": shop.myshopify_domain, "channel": target.channel},
        )
        return _page(request, state="done", shop=shop, status=200)
    return _page(request, state="confirm", shop=shop, status=200)

"""The embedded admin shell: server-rendered pages inside the Shopify admin's iframe.

    Shopify admin ── iframe GET /app/…?shop=…&host=…&id_token=<JWT> ──> session_token_required
        └─> view: parse → selector (scoped by request.shop) → render in the shop's timezone

Every document load needs a fresh session token (they live one minute). In the real admin,
App Bridge (``app-bridge.js``) supplies it; but the pages must also work where Shopify's CDN
is unreachable and in the devshop's admin frame, which passes ``id_token`` in the URL. So the
pages are fully server-rendered (nothing waits on ``window.shopify`` to show content), and
every in-app link and form carries ``shop``, ``host`` and, when the page got one, ``id_token``
as query parameters (``nav_query``). When App Bridge is loaded, ``embedded.js`` swaps in a
fresh token from ``shopify.idToken()`` at click time, so a page left open for a while still
navigates; without it, a stale token meets the session-token guard's bounce page.
"""

import json
import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from shopapp.auth.selectors import shop_zone
from shopapp.auth.session import session_token_required
from shopapp.embedded import selectors
from shopapp.http import ShopRequest
from shopapp.orders import selectors as order_selectors
from shopapp.storefront.pages import supported_language
from shopapp.support.services import NoteRefused, order_note_add

logger = logging.getLogger(__name__)


def nav_query(request: ShopRequest) -> str:
    """The query string in-app links carry so the next document load is authenticated.

    ``shop`` comes from the verified token, never from the URL; ``host`` (Shopify's base64
    admin host, used by App Bridge) and ``id_token`` are passed through as received.
    """
    params = {"shop": request.shop.myshopify_domain}
    for name in ("host", "id_token"):
        value = request.GET.get(name)
        if value:
            params[name] = value
    locale = admin_locale(request)
    if locale:
        params["locale"] = locale
    return urlencode(params)


def admin_locale(request: ShopRequest) -> str:
    """The staff member's admin language when the app speaks it, else "".

    Shopify adds ``locale`` (the language the staff member uses the admin in: "fr", "pt-BR")
    to the app's URL; the app's pages follow it in English, Spanish, French and German, and
    every in-app link and form passes it on. Anything else reads in English.
    """
    return supported_language(request.GET.get("locale"))


def embedded_render(
    request: ShopRequest, template: str, context: dict, status: int = 200
) -> HttpResponse:
    """A page of the embedded admin (every app's admin pages render through this): the
    shell's context (shop, its zone, the navigation query, missing scopes) plus ``context``."""
    shop = request.shop
    # A zone name this server's tz database lacks must not break the page: UTC.
    zone = shop_zone(shop)
    base = {
        "api_key": settings.SHOPIFY_API_KEY,
        "shop": shop,
        "shop_zone": zone,
        "nav_query": nav_query(request),
        "host": request.GET.get("host", ""),
        "id_token": request.GET.get("id_token", ""),
        "missing_scopes": [s for s in shop.missing_scopes.split(",") if s.strip()],
        "admin_locale": admin_locale(request),
    }
    # Times on every page read in the shop's own zone, as in the Shopify admin (the words are
    # in the staff member's admin language: shopapp.embedded.middleware).
    with timezone.override(zone):
        return render(request, template, {**base, **context}, status=status)


def embedded_redirect(
    request: ShopRequest, name: str, *args: Any, notice: str = "", fragment: str = ""
) -> HttpResponse:
    """Post/Redirect/Get for the admin's forms: 303 to a page of the app, which shows
    ``notice`` (a code the page knows) as its flash message; a reload re-sends nothing.
    No cookie carries the message: third-party cookies are blocked in the admin's iframe."""
    query = nav_query(request)
    if notice:
        query += "&" + urlencode({"notice": notice})
    url = f"{reverse(name, args=args)}?{query}" + (f"#{fragment}" if fragment else "")
    return HttpResponseRedirect(url, status=303)


def staff_user_id(request: ShopRequest) -> str:
    """The Shopify staff member behind the session token (its ``sub`` claim): an id, the only
    thing the token says about who they are."""
    return str(request.session_token_claims.get("sub") or "")[:64]


@require_POST
@session_token_required
def order_note_add_view(request: ShopRequest, order_id: int) -> HttpResponse:
    order = order_selectors.order_get(shop=request.shop, order_id=order_id)
    if order is None:
        raise Http404("No such order")
    try:
        order_note_add(
            shop=request.shop,
            order=order,
            user_id=staff_user_id(request),
            text=request.POST.get("text", ""),
            submission_id=request.POST.get("submission_id", ""),
        )
    except NoteRefused as refused:
        return HttpResponse(refused.message, status=400, content_type="text/plain")
    return embedded_redirect(
        request, "embedded:order_detail", order.shopify_id, notice="note_added", fragment="timeline"
    )


@session_token_required
def privacy(request: ShopRequest) -> HttpResponse:
    exports = selectors.customer_data_export_list(shop=request.shop)
    return embedded_render(
        request, "shopapp/embedded/privacy.html", {"exports": exports, "nav": "privacy"}
    )


@session_token_required
def privacy_export_download(request: ShopRequest, export_id: int) -> HttpResponse:
    export = selectors.customer_data_export_get(shop=request.shop, export_id=export_id)
    if export is None:
        raise Http404("No such export")
    body = json.dumps(
        {
            "shop": request.shop.myshopify_domain,
            "data_request_id": export.data_request_id,
            "customer_id": export.customer_id,
            "created_at": export.created_at.isoformat(),
            "data": export.data,
        },
        indent=2,
        sort_keys=True,
        default=str,
    )
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = (
        f'attachment; filename="customer-data-request-{export.pk}.json"'
    )
    # Personal data: no proxy or browser cache may keep a copy.
    response["Cache-Control"] = "no-store"
    # The export id and shop only: the customer's email stays out of the log.
    logger.info(
        "embedded.privacy.export_downloaded",
        extra={"shop": request.shop.myshopify_domain, "export_id": export.pk},
    )
    return response


@session_token_required
def settings_page(request: ShopRequest) -> HttpResponse:
    return embedded_render(request, "shopapp/embedded/settings.html", {"nav": "settings"})

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
import zoneinfo
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from shopapp.auth.session import session_token_required
from shopapp.embedded import selectors
from shopapp.orders import selectors as order_selectors
from tracking import admin_selectors as tracking_selectors

logger = logging.getLogger(__name__)

# Polaris index tables show 25 to 50 rows; 25 keeps the page light for the admin's LCP budget.
ORDERS_PER_PAGE = 25
# Longer search strings are not order names or emails; cut them before they reach SQL.
QUERY_MAX_LENGTH = 255


def _nav_query(request: HttpRequest) -> str:
    """The query string in-app links carry so the next document load is authenticated.

    ``shop`` comes from the verified token, never from the URL; ``host`` (Shopify's base64
    admin host, used by App Bridge) and ``id_token`` are passed through as received.
    """
    params = {"shop": request.shop.myshopify_domain}
    for name in ("host", "id_token"):
        value = request.GET.get(name)
        if value:
            params[name] = value
    return urlencode(params)


def _shop_zone(shop) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(shop.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # A zone name this server's tz database lacks must not break the page: show UTC.
        return zoneinfo.ZoneInfo("UTC")


def _render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    shop = request.shop
    zone = _shop_zone(shop)
    base = {
        "api_key": settings.SHOPIFY_API_KEY,
        "shop": shop,
        "shop_zone": zone,
        "nav_query": _nav_query(request),
        "host": request.GET.get("host", ""),
        "id_token": request.GET.get("id_token", ""),
        "missing_scopes": [s for s in shop.missing_scopes.split(",") if s.strip()],
    }
    # Times on every page read in the shop's own zone, as in the Shopify admin.
    with timezone.override(zone):
        return render(request, template, {**base, **context}, status=status)


def _order_filters(request: HttpRequest) -> tuple[str, str, bool]:
    """The orders list's search, stage and "delayed" filter as typed; an unknown stage is
    dropped rather than answered with an empty list."""
    query = request.GET.get("q", "")[:QUERY_MAX_LENGTH].strip()
    stage = request.GET.get("stage", "")
    if stage not in dict(tracking_selectors.stage_choices()):
        stage = ""
    return query, stage, request.GET.get("delayed") == "1"


@session_token_required
def order_list(request: HttpRequest) -> HttpResponse:
    query, stage, is_delayed = _order_filters(request)
    orders = tracking_selectors.order_list_for_admin(
        shop=request.shop, query=query, stage=stage, is_delayed=is_delayed
    )
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    # Paging links keep the search and the filters.
    kept = {"q": query, "stage": stage, "delayed": "1" if is_delayed else ""}
    page_query = urlencode({name: value for name, value in kept.items() if value})
    return _render(
        request,
        "shopapp/embedded/order_list.html",
        {
            "page": page,
            "rows": tracking_selectors.order_rows(page.object_list),
            "query": query,
            "stage": stage,
            "is_delayed": is_delayed,
            "is_filtered": bool(page_query),
            "stage_choices": tracking_selectors.stage_choices(),
            "delay_count": tracking_selectors.delay_open_count(shop=request.shop),
            "page_query": page_query,
            "nav": "orders",
            "orders_tab": "all",
        },
    )


@session_token_required
def delay_list(request: HttpRequest) -> HttpResponse:
    delays = tracking_selectors.delay_list_open(shop=request.shop)
    page = Paginator(delays, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return _render(
        request,
        "shopapp/embedded/delay_list.html",
        {
            "page": page,
            "rows": tracking_selectors.delay_rows(page.object_list),
            "delay_count": page.paginator.count,
            "nav": "orders",
            "orders_tab": "delayed",
        },
    )


@session_token_required
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    # ``order_id`` is Shopify's id, as in the Shopify admin's own order URLs.
    order = order_selectors.order_get(shop=request.shop, order_id=order_id)
    if order is None:
        # Another shop's order answers exactly like a missing one.
        raise Http404("No such order")
    events = order_selectors.order_timeline(shop=request.shop, order=order)
    timeline = [
        {"event": event, "detail_json": json.dumps(event.detail, indent=2, sort_keys=True)}
        for event in events
    ]
    line_items = list(selectors.order_line_items(shop=request.shop, order=order))
    return _render(
        request,
        "shopapp/embedded/order_detail.html",
        {
            "order": order,
            "line_items": line_items,
            "tracking": tracking_selectors.order_tracking(
                shop=request.shop, order=order, line_items=line_items
            ),
            "timeline": timeline,
            "nav": "orders",
        },
    )


@session_token_required
def privacy(request: HttpRequest) -> HttpResponse:
    exports = selectors.customer_data_export_list(shop=request.shop)
    return _render(request, "shopapp/embedded/privacy.html", {"exports": exports, "nav": "privacy"})


@session_token_required
def privacy_export_download(request: HttpRequest, export_id: int) -> HttpResponse:
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
def settings_page(request: HttpRequest) -> HttpResponse:
    return _render(request, "shopapp/embedded/settings.html", {"nav": "settings"})

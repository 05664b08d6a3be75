"""The orders pages of the embedded admin: the list with search and filters, the delays, and
one order with its shipments and timeline. Mounted by shopapp/embedded/urls.py.

    view: parse → selector (scoped by request.shop) → embedded_render in the shop's timezone
"""

import json
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse

from shopapp.auth.session import session_token_required
from shopapp.embedded import selectors as embedded_selectors
from shopapp.embedded.views import embedded_render
from shopapp.http import ShopRequest
from shopapp.orders import selectors as order_selectors
from tracking import admin_selectors as tracking_selectors

# Polaris index tables show 25 to 50 rows; 25 keeps the page light for the admin's LCP budget.
ORDERS_PER_PAGE = 25
# Longer search strings are not order names or emails; cut them before they reach SQL.
QUERY_MAX_LENGTH = 255


def _order_filters(request: ShopRequest) -> tuple[str, str, bool]:
    """The orders list's search, stage and "delayed" filter as typed; an unknown stage is
    dropped rather than answered with an empty list."""
    query = request.GET.get("q", "")[:QUERY_MAX_LENGTH].strip()
    stage = request.GET.get("stage", "")
    if stage not in dict(tracking_selectors.stage_choices()):
        stage = ""
    return query, stage, request.GET.get("delayed") == "1"


@session_token_required
def order_list(request: ShopRequest) -> HttpResponse:
    query, stage, is_delayed = _order_filters(request)
    orders = tracking_selectors.order_list_for_admin(
        shop=request.shop, query=query, stage=stage, is_delayed=is_delayed
    )
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    # Paging links keep the search and the filters.
    kept = {"q": query, "stage": stage, "delayed": "1" if is_delayed else ""}
    page_query = urlencode({name: value for name, value in kept.items() if value})
    return embedded_render(
        request,
        "tracking/admin/order_list.html",
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
def delay_list(request: ShopRequest) -> HttpResponse:
    delays = tracking_selectors.delay_list_open(shop=request.shop)
    page = Paginator(delays, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return embedded_render(
        request,
        "tracking/admin/delay_list.html",
        {
            "page": page,
            "rows": tracking_selectors.delay_rows(page.object_list),
            "delay_count": page.paginator.count,
            "nav": "orders",
            "orders_tab": "delayed",
        },
    )


@session_token_required
def order_detail(request: ShopRequest, order_id: int) -> HttpResponse:
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
    line_items = list(embedded_selectors.order_line_items(shop=request.shop, order=order))
    return embedded_render(
        request,
        "tracking/admin/order_detail.html",
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

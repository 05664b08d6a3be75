"""The orders pages of the embedded admin: the list with search and filters, the delays, and
one order with its shipments and timeline. Mounted by shopapp/embedded/urls.py.

    view: parse → selector (scoped by request.shop) → embedded_render in the shop's timezone
"""

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from notifications import selectors as notification_selectors
from shopapp.auth.session import session_token_required
from shopapp.embedded import selectors as embedded_selectors
from shopapp.embedded.views import embedded_redirect, embedded_render, staff_user_id
from shopapp.http import ShopRequest
from shopapp.orders import selectors as order_selectors
from shopapp.storefront.links import order_page_url
from shopapp.support.timeline import FILTERS, entries_shown, timeline_entries, timeline_groups
from tracking import admin_selectors as tracking_selectors
from tracking import problems
from tracking.models import ProblemCase

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


# Flash messages after a redirect (Post/Redirect/Get): the code travels in ``notice``.
ORDER_NOTICES = {
    "note_added": _("Note added."),
    "problem_opened": _("Problem recorded."),
    "problem_resolved": _("Problem marked as resolved."),
    "resent": _("The last message will be sent again within a minute."),
}


def shopify_admin_order_url(shop_domain: str, order_shopify_id: int) -> str:
    """The order in the Shopify admin (``https://<shop>/admin/orders/<id>`` redirects to
    admin.shopify.com for a real store; the devshop serves its own admin)."""
    base = settings.SHOPIFY_ADMIN_URL_TEMPLATE.format(shop=shop_domain).rstrip("/")
    return f"{base}/admin/orders/{order_shopify_id}"


@session_token_required
def order_detail(request: ShopRequest, order_id: int) -> HttpResponse:
    """The support workspace for one order: items, parcels, the timeline in plain words
    (grouped by parcel and return, or as one list; filtered), notes, the shopper's problems,
    and the actions support takes (resend, copy the tracking link, open in Shopify)."""
    # ``order_id`` is Shopify's id, as in the Shopify admin's own order URLs.
    order = order_selectors.order_get(shop=request.shop, order_id=order_id)
    if order is None:
        # Another shop's order answers exactly like a missing one.
        raise Http404("No such order")
    show = request.GET.get("show", "")
    if show not in FILTERS:
        show = ""
    as_list = request.GET.get("view") == "list"
    events = list(order_selectors.order_timeline(shop=request.shop, order=order))
    everything = timeline_entries(events)
    entries = entries_shown(everything, show=show)
    line_items = list(embedded_selectors.order_line_items(shop=request.shop, order=order))
    tracking = tracking_selectors.order_tracking(
        shop=request.shop, order=order, line_items=line_items
    )
    parcel_titles = {
        f"shipment:{row.shipment.fulfillment_id}": " · ".join(
            p
            for p in (
                _("Parcel %(name)s") % {"name": row.shipment.name or row.shipment.fulfillment_id},
                row.shipment.tracking_company,
                ", ".join(link.number for link in row.links),
            )
            if p
        )
        for row in tracking.shipments
    }
    counts = {key: len(entries_shown(everything, show=key)) for key in FILTERS}
    return embedded_render(
        request,
        "tracking/admin/order_detail.html",
        {
            "order": order,
            "line_items": line_items,
            "tracking": tracking,
            "entries": entries,
            "groups": [] if as_list else timeline_groups(entries, parcel_titles=parcel_titles),
            "entry_count": len(everything),
            "filters": [(key, label, counts[key]) for key, label in FILTERS.items()],
            "show": show,
            "as_list": as_list,
            "problems": list(problems.problem_case_list(shop=request.shop, order=order)),
            "problem_kinds": ProblemCase.Kind.choices,
            "last_message": notification_selectors.message_last_for_order(
                shop=request.shop, order_id=order.pk
            ),
            "tracking_link": order_page_url(shop=request.shop, order=order),
            "shopify_admin_url": shopify_admin_order_url(
                request.shop.myshopify_domain, order.shopify_id
            ),
            # One id per rendered form: the same submission twice changes things once.
            "submission_id": uuid.uuid4().hex,
            "notice": ORDER_NOTICES.get(request.GET.get("notice", ""), ""),
            "nav": "orders",
        },
    )


@require_POST
@session_token_required
def problem_open(request: ShopRequest, order_id: int) -> HttpResponse:
    order = order_selectors.order_get(shop=request.shop, order_id=order_id)
    if order is None:
        raise Http404("No such order")
    raw_shipment = request.POST.get("shipment_id", "").strip()
    if raw_shipment and not raw_shipment.isdigit():
        return HttpResponse(str(_("Choose a parcel from the list.")), status=400)
    try:
        problems.problem_case_open(
            shop=request.shop,
            order=order,
            kind=request.POST.get("kind", ""),
            reported_by=ProblemCase.Reporter.STAFF,
            description=request.POST.get("description", ""),
            shipment_id=int(raw_shipment) if raw_shipment else None,
            user_id=staff_user_id(request),
        )
    except problems.ProblemRefused as refused:
        return HttpResponse(refused.message, status=400, content_type="text/plain")
    return embedded_redirect(
        request, "embedded:order_detail", order.shopify_id, notice="problem_opened"
    )


@require_POST
@session_token_required
def problem_resolve(request: ShopRequest, order_id: int, case_id: int) -> HttpResponse:
    order = order_selectors.order_get(shop=request.shop, order_id=order_id)
    if order is None:
        raise Http404("No such order")
    try:
        case = problems.problem_case_resolve(
            shop=request.shop,
            case_id=case_id,
            user_id=staff_user_id(request),
            note=request.POST.get("note", ""),
        )
    except problems.ProblemRefused as refused:
        return HttpResponse(refused.message, status=400, content_type="text/plain")
    if case is None or case.order_id != order.pk:
        raise Http404("No such problem")
    return embedded_redirect(
        request, "embedded:order_detail", order.shopify_id, notice="problem_resolved"
    )


# -- the tracking page's settings ---------------------------------------------------------------

PAGE_SETTINGS_NOTICES = {"saved": _("Tracking page settings saved.")}


@session_token_required
@require_http_methods(["GET", "POST"])
def tracking_page_settings(request: ShopRequest) -> HttpResponse:
    """GET the form; POST (Authorization: Bearer, sent by fetch as every admin form) saves it
    and answers 303 back to it."""
    from tracking.forms import TrackingPageSettingsForm
    from tracking.selectors import tracking_settings_for_shop
    from tracking.suggestions import PAGE_SETTINGS_FIELDS, tracking_page_settings_update

    status = 200
    if request.method == "POST":
        form = TrackingPageSettingsForm(request.POST)
        if form.is_valid():
            tracking_page_settings_update(
                shop=request.shop,
                values={name: form.cleaned_data[name] for name in PAGE_SETTINGS_FIELDS},
            )
            return embedded_redirect(request, "embedded:tracking_page_settings", notice="saved")
        status = 400
    else:
        row = tracking_settings_for_shop(shop=request.shop)
        form = TrackingPageSettingsForm(
            initial={name: getattr(row, name) for name in PAGE_SETTINGS_FIELDS}
        )
    return embedded_render(
        request,
        "tracking/admin/page_settings.html",
        {
            "nav": "settings",
            "form": form,
            "notice": PAGE_SETTINGS_NOTICES.get(request.GET.get("notice", ""), ""),
        },
        status=status,
    )

"""The merchant's returns pages in the embedded admin: queue, one return and its actions,
photos and labels (served here, checked against the session token's shop, never from a public
media URL), the blocklist and the policy.

Reads go through ``returns.selectors``, changes through ``returns.services``. Forms POST with
the session token in ``Authorization: Bearer`` (``returns/admin.js`` sends them with fetch), as
``session_token_required`` requires for unsafe methods. A POST that changed something answers
303 to the page to show next, with a ``notice`` code its banner reads (Post/Redirect/Get: a
reload sends nothing again); one that changed nothing answers the page with the error.
"""

import logging
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from returns import selectors, services
from returns.admin_forms import (
    ApproveForm,
    BlocklistForm,
    DeclineForm,
    PolicyForm,
    ProcessForm,
    ReceiveForm,
)
from returns.policy import DECLINE_REASON_CHOICES, reason_label, return_policy_get
from returns.selectors import QUEUE_FILTERS
from shopapp.admin_api.client import AdminApiError
from shopapp.auth.session import session_token_required
from shopapp.embedded.views import embedded_redirect, embedded_render
from shopapp.http import ShopRequest

logger = logging.getLogger(__name__)

RETURNS_PER_PAGE = 25
UNAVAILABLE = _("Shopify couldn't be reached just now. Nothing was changed; try again in a minute.")


def _get_or_404(request: ShopRequest, return_id: int):
    found = selectors.return_request_get(shop=request.shop, request_id=return_id)
    if found is None:
        # Another shop's return answers exactly like a missing one.
        raise Http404("No such return")
    return found


@require_GET
@session_token_required
def return_queue(request: ShopRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    query = request.GET.get("q", "")[:255].strip()
    returns = selectors.return_request_queue(shop=request.shop, status=status, query=query)
    page = Paginator(returns, RETURNS_PER_PAGE).get_page(request.GET.get("page"))
    return embedded_render(
        request,
        "returns/admin/queue.html",
        {
            "page": page,
            "rows": selectors.queue_rows(page.object_list, shop=request.shop),
            "now": timezone.now(),
            "status": status,
            "query": query,
            "filters": [(key, selectors.FILTER_WORDS[key]) for key in QUEUE_FILTERS],
            "decline_form": DeclineForm(),
            "message": _notice(request),
            "nav": "returns",
        },
    )


NOTICES = {
    "approved": _("Return approved."),
    "declined": _("Return declined."),
    "received": _("Items marked as received in Shopify."),
    "processed": _("Return processed."),
    "canceled": _("Return canceled."),
    "closed": _("Return closed."),
    "blocked": _("Added to the blocklist."),
    "unblocked": _("Removed from the blocklist."),
    "policy_saved": _("Return policy saved."),
}


def _notice(request: ShopRequest) -> str:
    code = request.GET.get("notice", "")
    if code == "bulk":
        done, failed = request.GET.get("done", "0"), request.GET.get("failed", "0")
        verb = "approved" if request.GET.get("action") == "approve" else "declined"
        if not (done.isdigit() and failed.isdigit()):
            return ""
        if verb == "approved":
            text = ngettext(
                "%(count)s return approved.", "%(count)s returns approved.", int(done)
            ) % {"count": done}
        else:
            text = ngettext(
                "%(count)s return declined.", "%(count)s returns declined.", int(done)
            ) % {"count": done}
        if failed != "0":
            text += " " + gettext("%(count)s could not be: open each to see why.") % {
                "count": failed
            }
        return text
    return str(NOTICES.get(code, ""))


def _redirect(request: ShopRequest, name: str, *args, notice: str, **extra: str) -> HttpResponse:
    response = embedded_redirect(request, f"embedded:returns_admin:{name}", *args, notice=notice)
    if extra:
        response["Location"] += "&" + urlencode(extra)
    return response


def _detail(
    request: ShopRequest, ret, *, message: str = "", error: str = "", status: int = 200, **forms
) -> HttpResponse:
    ret = _get_or_404(request, ret.pk)
    lines_all = list(ret.line_items.all())
    is_received = selectors.return_is_received(ret, lines_all)
    history = services.customer_history(
        shop=request.shop,
        customer_id=ret.customer_id,
        email=ret.customer_email,
        exclude_request_id=ret.pk,
    )
    lines = [
        {"line": line, "reason_label": reason_label(line.reason)} for line in ret.line_items.all()
    ]
    context = {
        "ret": ret,
        "lines": lines,
        "history": history,
        "customer_returns": selectors.return_request_list_for_customer(
            shop=request.shop, customer_id=ret.customer_id, email=ret.customer_email
        ).exclude(pk=ret.pk)[:10],
        "message": message or _notice(request),
        "error": error,
        "is_received": is_received,
        "status_label": selectors.return_status_label(ret, lines_all),
        "decline_reason_label": dict(DECLINE_REASON_CHOICES).get(
            ret.decline_reason, ret.decline_reason
        ),
        "approve_form": forms.get("approve_form") or ApproveForm(),
        "decline_form": forms.get("decline_form") or DeclineForm(),
        "receive_form": forms.get("receive_form") or ReceiveForm(),
        "process_form": forms.get("process_form")
        or ProcessForm(initial={"resolution": ret.resolution}),
        "nav": "returns",
    }
    return embedded_render(request, "returns/admin/detail.html", context, status=status)


@require_GET
@session_token_required
def return_detail(request: ShopRequest, return_id: int) -> HttpResponse:
    return _detail(request, _get_or_404(request, return_id))


def _act(request: ShopRequest, ret, action, notice: str, **forms) -> HttpResponse:
    try:
        action()
    except services.ReturnRefused as exc:
        return _detail(request, ret, error=exc.message, status=409, **forms)
    except AdminApiError as exc:
        logger.warning(
            "returns.admin.shopify_error",
            extra={"shop": request.shop.myshopify_domain, "error": type(exc).__name__},
        )
        return _detail(request, ret, error=str(UNAVAILABLE), status=503, **forms)
    return _redirect(request, "detail", ret.pk, notice=notice)


@require_POST
@session_token_required
def return_approve(request: ShopRequest, return_id: int) -> HttpResponse:
    ret = _get_or_404(request, return_id)
    form = ApproveForm(request.POST, request.FILES)
    if not form.is_valid():
        return _detail(
            request, ret, error=gettext("Check the form."), status=400, approve_form=form
        )
    return _act(
        request,
        ret,
        lambda: services.return_request_approve(
            shop=request.shop,
            request=ret,
            instructions=form.cleaned_data["instructions"],
            label_file=form.cleaned_data.get("label"),
        ),
        "approved",
    )


@require_POST
@session_token_required
def return_decline(request: ShopRequest, return_id: int) -> HttpResponse:
    ret = _get_or_404(request, return_id)
    form = DeclineForm(request.POST)
    if not form.is_valid():
        return _detail(
            request, ret, error=gettext("Check the form."), status=400, decline_form=form
        )
    return _act(
        request,
        ret,
        lambda: services.return_request_decline(
            shop=request.shop,
            request=ret,
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
        ),
        "declined",
    )


@require_POST
@session_token_required
def return_receive(request: ShopRequest, return_id: int) -> HttpResponse:
    ret = _get_or_404(request, return_id)
    form = ReceiveForm(request.POST)
    if not form.is_valid():
        return _detail(
            request, ret, error=gettext("Check the form."), status=400, receive_form=form
        )
    quantities = {}
    for line in ret.line_items.all():
        raw = request.POST.get(f"received_{line.pk}", "").strip()
        if raw:
            if not raw.isdigit():
                return _detail(
                    request,
                    ret,
                    error=gettext("Enter whole numbers."),
                    status=400,
                    receive_form=form,
                )
            quantities[line.pk] = int(raw)
    return _act(
        request,
        ret,
        lambda: services.return_items_receive(
            shop=request.shop,
            request=ret,
            quantities=quantities,
            disposition=form.cleaned_data["disposition"],
        ),
        "received",
        receive_form=form,
    )


@require_POST
@session_token_required
def return_process(request: ShopRequest, return_id: int) -> HttpResponse:
    ret = _get_or_404(request, return_id)
    form = ProcessForm(request.POST)
    if not form.is_valid():
        return _detail(
            request, ret, error=gettext("Check the form."), status=400, process_form=form
        )
    return _act(
        request,
        ret,
        lambda: services.return_request_process(
            shop=request.shop, request=ret, resolution=form.cleaned_data["resolution"]
        ),
        "processed",
    )


@require_POST
@session_token_required
def return_cancel(request: ShopRequest, return_id: int) -> HttpResponse:
    ret = _get_or_404(request, return_id)
    return _act(
        request,
        ret,
        lambda: services.return_request_cancel(shop=request.shop, request=ret),
        "canceled",
    )


@require_POST
@session_token_required
def return_close(request: ShopRequest, return_id: int) -> HttpResponse:
    ret = _get_or_404(request, return_id)
    return _act(
        request,
        ret,
        lambda: services.return_request_close(shop=request.shop, request=ret),
        "closed",
    )


def _private_file(field_file, content_type: str) -> FileResponse:
    response = FileResponse(field_file.open("rb"), content_type=content_type)
    # The shopper's photos and address labels: no shared cache may keep them.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@session_token_required
def return_photo(request: ShopRequest, photo_id: int) -> HttpResponseBase:
    photo = selectors.return_photo_get(shop=request.shop, photo_id=photo_id)
    if photo is None or not photo.image:
        raise Http404("No such photo")
    if request.GET.get("size") == "thumb" and photo.thumbnail:
        kind = "image/png" if photo.thumbnail.name.endswith(".png") else "image/jpeg"
        return _private_file(photo.thumbnail, kind)
    return _private_file(photo.image, photo.content_type or "application/octet-stream")


@require_GET
@session_token_required
def return_label(request: ShopRequest, return_id: int) -> HttpResponseBase:
    ret = _get_or_404(request, return_id)
    if not ret.label_file:
        raise Http404("No label")
    name = ret.label_file.name.lower()
    content_type = (
        "application/pdf"
        if name.endswith(".pdf")
        else "image/png"
        if name.endswith(".png")
        else "image/jpeg"
    )
    return _private_file(ret.label_file, content_type)


def _blocklist_page(request, *, form=None, message="", error="", status=200) -> HttpResponse:
    return embedded_render(
        request,
        "returns/admin/blocklist.html",
        {
            "entries": selectors.return_blocklist(shop=request.shop),
            "form": form or BlocklistForm(),
            "message": message,
            "error": error,
            "nav": "returns",
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@session_token_required
def blocklist(request: ShopRequest) -> HttpResponse:
    if request.method == "GET":
        return _blocklist_page(request, message=_notice(request))
    form = BlocklistForm(request.POST)
    if not form.is_valid():
        return _blocklist_page(
            request, form=form, error=gettext("Enter an email address."), status=400
        )
    services.blocklist_entry_add(
        shop=request.shop, email=form.cleaned_data["email"], note=form.cleaned_data["note"]
    )
    return _redirect(request, "blocklist", notice="blocked")


@require_POST
@session_token_required
def blocklist_remove(request: ShopRequest, entry_id: int) -> HttpResponse:
    if not services.blocklist_entry_remove(shop=request.shop, entry_id=entry_id):
        raise Http404("No such entry")
    return _redirect(request, "blocklist", notice="unblocked")


@require_http_methods(["GET", "POST"])
@session_token_required
def policy(request: ShopRequest) -> HttpResponse:
    current = return_policy_get(shop=request.shop)
    if request.method == "GET":
        form = PolicyForm(instance=current)
        return embedded_render(
            request,
            "returns/admin/policy.html",
            {"form": form, "message": _notice(request), "nav": "returns"},
        )
    form = PolicyForm(request.POST, instance=current)
    if not form.is_valid():
        return embedded_render(
            request,
            "returns/admin/policy.html",
            {"form": form, "error": gettext("Check the highlighted fields."), "nav": "returns"},
            status=400,
        )
    fields = {name: form.cleaned_data[name] for name in PolicyForm.Meta.fields}
    services.return_policy_update(shop=request.shop, **fields)
    return _redirect(request, "policy", notice="policy_saved")


# Bulk actions make one Shopify call per return: a page of the queue at most.
BULK_MAX = RETURNS_PER_PAGE


@require_POST
@session_token_required
def return_bulk(request: ShopRequest) -> HttpResponse:
    """Approve or decline the ticked returns of the queue, each through the same service as
    its own page (one Shopify call each; a refusal of one leaves the others done). Answers
    303 to the queue with how many were done and how many could not be."""
    action = request.POST.get("action", "")
    raw_ids = request.POST.getlist("ids")
    if action not in ("approve", "decline"):
        return HttpResponse(
            gettext("Choose approve or decline."), status=400, content_type="text/plain"
        )
    if not raw_ids or not all(i.isdigit() for i in raw_ids) or len(raw_ids) > BULK_MAX:
        return HttpResponse(
            gettext("Tick between 1 and %(count)s returns.") % {"count": BULK_MAX},
            status=400,
            content_type="text/plain",
        )
    decline = DeclineForm(request.POST)
    if action == "decline" and not decline.is_valid():
        return HttpResponse(
            gettext("Choose a reason for declining."), status=400, content_type="text/plain"
        )
    chosen = selectors.return_request_list_by_ids(shop=request.shop, ids=[int(i) for i in raw_ids])
    done = failed = 0
    for ret in chosen:
        try:
            if action == "approve":
                services.return_request_approve(shop=request.shop, request=ret, instructions="")
            else:
                services.return_request_decline(
                    shop=request.shop,
                    request=ret,
                    reason=decline.cleaned_data["reason"],
                    note=decline.cleaned_data["note"],
                )
        except (services.ReturnRefused, AdminApiError) as exc:
            failed += 1
            logger.info(
                "returns.admin.bulk_refused",
                extra={
                    "shop": request.shop.myshopify_domain,
                    "return_id": ret.pk,
                    "error": type(exc).__name__,
                },
            )
        else:
            done += 1
    # Ids that are not this shop's (or no longer exist) count as not done.
    failed += len(set(raw_ids)) - len(chosen)
    return _redirect(
        request, "queue", notice="bulk", action=action, done=str(done), failed=str(failed)
    )

"""The storefront returns portal, served through Shopify's app proxy.

    shopper ─ https://<shop>/apps/<subpath>/returns[/<token>] ─▶ Shopify ─ signed ─▶ /proxy/returns…
      GET  /proxy/returns                 lookup form (?order= pre-fills it); a logged-in
                                          customer's orders; ?order_id= (that customer's order)
                                          or ?token= (the tracking page's signed link) → items
      POST /proxy/returns  step=lookup    order number + email or postal code → items
                           step=items     quantities, reasons, notes, photos, resolution → review
                                          (rate-limited per client; new photos within the
                                          order's stash budget, replaced ones deleted)
                           step=back      from the review to the items, choices kept
                           step=submit    stored at once (returns.services), sent to Shopify
                                          by a job → the return's status page
      GET  /proxy/returns/<token>         the return's status page (signed, long-lived link)
      GET  /proxy/returns/<token>/label   the return label the merchant attached

Every view: ``app_proxy_required`` (signature, fresh timestamp, installed shop → else 403),
parse, verify (form token or signed state, rate limit, ownership), a service or selector,
render. The tracking page's rules apply: no cookies (the state travels signed in a hidden
field), one generic answer for a wrong number and a wrong email, Liquid-safe output,
``Cache-Control: private, no-store`` (shopapp.storefront).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from returns import portal, selectors
from returns.eligibility import (
    ItemEligibility,
    ReasonCode,
    order_eligibility,
    return_estimate,
)
from returns.forms import ItemChoice, ReturnLookupForm, items_form_clean
from returns.models import Resolution, ReturnRequest
from returns.policy import (
    policy_reasons,
    policy_resolutions,
    reason_requires_note,
    reason_requires_photo,
    return_policy_get,
)
from returns.services import ReturnItemInput, ReturnRefused, return_request_submit
from shopapp.admin_api.client import AdminApiError
from shopapp.models import Order, Shop
from shopapp.proxy import app_proxy_required
from shopapp.storefront import (
    liquid_safe,
    storefront_client_ip,
    storefront_language,
    storefront_response,
)
from shopapp.storefront.links import form_token, form_token_valid, order_id_from_link_token
from shopapp.storefront.lookup import storefront_order_lookup
from shopapp.storefront.ratelimit import lookup_rate_limit_hit
from tracking import selectors as tracking_selectors

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Views


@app_proxy_required
@require_http_methods(["GET", "POST"])
def portal_page(request: HttpRequest) -> HttpResponse:
    shop: Shop = request.shop  # type: ignore[attr-defined]
    page = _Portal(request, proxy_base="")
    customer_id = request.logged_in_customer_id  # type: ignore[attr-defined]
    if request.method == "GET":
        return _start(request, page, customer_id)
    # Checked on the header, before Django reads a byte of the body.
    if int(request.META.get("CONTENT_LENGTH") or 0) > portal.REQUEST_MAX_BYTES:
        logger.info("returns.portal.too_large", extra={"shop": shop.myshopify_domain})
        return page.render(
            "message",
            {"message": _("That was too much to upload at once. Attach smaller photos.")},
            status=413,
        )
    step = request.POST.get("step", "lookup")
    if step == "lookup":
        return _lookup(request, page)
    state = portal.state_loads(request.POST.get("state", ""), shop=shop, customer_id=customer_id)
    order = portal.portal_order_get(shop=shop, order_id=state.order_id) if state else None
    if state is None or order is None:
        return page.render("lookup", {"error": _expired_message()})
    if step == "items":
        # Per client, like the lookup, before Shopify is read or a photo is stashed.
        limited = portal.items_rate_limit_hit(shop_id=shop.pk, client_ip=page.client_ip)
        if not limited.allowed:
            return page.rate_limited(limited.retry_after, step="items")
        return _items_submitted(request, page, state, order)
    if step == "back":
        return page.render_items(order, state)
    if step == "submit":
        return _submit(request, page, state, order)
    return page.render("lookup", {"error": _expired_message()})


@app_proxy_required
@require_GET
def return_status(request: HttpRequest, token: str) -> HttpResponse:
    shop: Shop = request.shop  # type: ignore[attr-defined]
    page = _Portal(request, proxy_base="../")
    return_id = portal.return_id_from_status_token(token, shop=shop)
    rr = (
        ReturnRequest.objects.filter(shop=shop, pk=return_id).select_related("order").first()
        if return_id
        else None
    )
    if rr is None:
        return page.render("link_invalid", {}, status=404)
    return page.render_status(rr, token=token)


@app_proxy_required
@require_GET
def return_label(request: HttpRequest, token: str) -> HttpResponse:
    shop: Shop = request.shop  # type: ignore[attr-defined]
    return_id = portal.return_id_from_status_token(token, shop=shop)
    rr = ReturnRequest.objects.filter(shop=shop, pk=return_id).first() if return_id else None
    if rr is None or not rr.label_file or rr.status != ReturnRequest.Status.OPEN:
        return HttpResponse(status=404, content_type="text/plain; charset=utf-8")
    response = FileResponse(
        default_storage.open(rr.label_file.name, "rb"),
        as_attachment=True,
        filename=f"return-label-{rr.pk}.pdf",
    )
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------------------------
# Steps


def _start(request: HttpRequest, page: _Portal, customer_id: int | None) -> HttpResponse:
    shop = page.shop
    raw_order_id = request.GET.get("order_id", "")
    if raw_order_id:
        # A logged-in customer's own order, from their list: the signed customer id is the
        # proof, and only an order of that customer answers (Shopify: a valid signature does
        # not authorise data by itself).
        order = (
            portal.portal_order_get(shop=shop, order_id=int(raw_order_id))
            if raw_order_id.isdigit() and customer_id
            else None
        )
        if order is None or order.customer_id != customer_id:
            logger.warning(
                "returns.portal.not_customers_order", extra={"shop": shop.myshopify_domain}
            )
            return page.render("lookup", {"error": _not_found_message()}, status=404)
        return page.render_items(
            order, portal.PortalState.start(shop=shop, order=order, customer_id=customer_id)
        )
    link_token = request.GET.get("token", "")
    if link_token:
        # The tracking page's "Start a return" link: its signed order link is the proof, as
        # it is for the tracking page itself.
        order_id = order_id_from_link_token(link_token, shop=shop)
        order = portal.portal_order_get(shop=shop, order_id=order_id) if order_id else None
        if order is None:
            return page.render("lookup", {"error": _expired_message()}, status=404)
        return page.render_items(
            order, portal.PortalState.start(shop=shop, order=order, customer_id=None)
        )
    orders = portal.customer_order_list(shop=shop, customer_id=customer_id) if customer_id else []
    return page.render(
        "lookup",
        {
            "order_value": request.GET.get("order", "")[:40],
            "customer_orders": [
                {
                    "name": o.name,
                    "created_at": o.shopify_created_at or o.created_at,
                    "url": f"{page.proxy_base}returns?"
                    + urlencode({"order_id": o.pk, **page.locale_param()}),
                }
                for o in orders
            ],
        },
    )


def _lookup(request: HttpRequest, page: _Portal) -> HttpResponse:
    shop = page.shop
    if not form_token_valid(request.POST.get("form_token", ""), shop=shop):
        logger.info("returns.portal.form_token_invalid", extra={"shop": shop.myshopify_domain})
        return page.render("lookup", {"error": _expired_message(), "order_value": ""})
    form = ReturnLookupForm(request.POST)
    typed_order = request.POST.get("order", "")[:40]
    if not form.is_valid():
        return page.render("lookup", {"form": form, "order_value": typed_order})
    number = form.cleaned_data["order"]
    # The same per-order budget as the tracking page, keyed by the normalised number: one
    # guessed number costs the same on either page and in any spelling.
    limited = lookup_rate_limit_hit(shop_id=shop.pk, client_ip=page.client_ip, order_key=number.key)
    if not limited.allowed:
        return page.rate_limited(limited.retry_after)
    order = storefront_order_lookup(shop=shop, number=number, proof=form.cleaned_data["contact"])
    if order is None:
        logger.info("returns.portal.lookup_no_match", extra={"shop": shop.myshopify_domain})
        # One message whether the number or the contact was wrong (no enumeration); the
        # number comes back for correction, the email or postal code does not.
        return page.render("lookup", {"error": _not_found_message(), "order_value": typed_order})
    logger.info(
        "returns.portal.lookup_found", extra={"shop": shop.myshopify_domain, "order_id": order.pk}
    )
    return page.render_items(
        order, portal.PortalState.start(shop=shop, order=order, customer_id=None)
    )


def _items_submitted(
    request: HttpRequest, page: _Portal, state: portal.PortalState, order: Order
) -> HttpResponse:
    shop = page.shop
    with translation.override(page.language(order)):
        eligibility = page.eligibility(order)
        if eligibility is None:
            return page.unavailable(order)
        policy = return_policy_get(shop=shop)
        variants = page.exchange_variants(eligibility, policy)
        if variants is None:
            return page.unavailable(order)
        result = items_form_clean(
            data=request.POST,
            files=request.FILES,
            choices=_choices(eligibility, variants),
            reasons=policy_reasons(policy),
            resolutions=policy_resolutions(policy),
            requires_note=lambda reason: reason_requires_note(policy, reason),
            requires_photo=lambda reason: reason_requires_photo(policy, reason),
            previous={item.line_item_id: item for item in state.items},
        )
        if not result.is_valid:
            return page.render_items(
                order, state, result=result, eligibility=eligibility, variants=variants
            )
        uploads = [upload for checked in result.uploads.values() for upload, *_ in checked]
        budget = portal.photo_budget_reserve(
            shop_id=shop.pk,
            order_id=order.pk,
            photos=len(uploads),
            size=sum(int(upload.size or 0) for upload in uploads),
        )
        if not budget.allowed:
            # Nothing stashed, nothing discarded: the posted state stays the shopper's.
            result.errors["__all__"] = _photo_budget_message()
            response = page.render_items(
                order, state, result=result, eligibility=eligibility, variants=variants, status=429
            )
            if budget.retry_after:
                response["Retry-After"] = str(budget.retry_after)
            return response
        for item in result.items:
            for upload, content_type, ext in result.uploads.get(item.line_item_id, []):
                item.photos.append(
                    portal.photo_stash(shop=shop, upload=upload, content_type=content_type, ext=ext)
                )
        # Photos the new choice replaced or dropped are referenced by the old state only.
        portal.photo_discard_dropped(shop=shop, before=state.items, after=result.items)
        state.items = result.items
        state.resolution = result.resolution
        return page.render_review(order, state, eligibility)


def _submit(
    request: HttpRequest, page: _Portal, state: portal.PortalState, order: Order
) -> HttpResponse:
    shop = page.shop
    earlier = portal.submission_claim(shop_id=shop.pk, nonce=state.nonce)
    if earlier is not None:
        # The same form posted twice (a double click, a reload, a replay): one request only.
        logger.info("returns.portal.duplicate_submit", extra={"shop": shop.myshopify_domain})
        rr = (
            ReturnRequest.objects.filter(shop=shop, order=order, pk=int(earlier)).first()
            if earlier.isdigit()
            else None
        )
        return page.render(
            "message",
            {
                "message": _("This return was already submitted."),
                "status_url": f"{page.proxy_base}returns/{portal.return_status_token(rr)}"
                if rr
                else "",
            },
            status=409,
            order=order,
        )
    with translation.override(page.language(order)):
        refusal = _submit_refusal(page, state, order)
        if refusal is not None:
            portal.submission_release(shop_id=shop.pk, nonce=state.nonce)
            return refusal
        rr = _request_submit(page, state, order)
        if isinstance(rr, HttpResponse):
            portal.submission_release(shop_id=shop.pk, nonce=state.nonce)
            return rr
    portal.submission_record(shop_id=shop.pk, nonce=state.nonce, return_request_id=rr.pk)
    portal.photo_discard([ref for item in state.items for ref in item.photos])
    logger.info(
        "returns.portal.submitted",
        extra={"shop": shop.myshopify_domain, "order_id": order.pk, "return_id": rr.pk},
    )
    return page.render_status(rr, token=portal.return_status_token(rr), is_new=True, status=201)


def _submit_refusal(page: _Portal, state: portal.PortalState, order: Order) -> HttpResponse | None:
    """Everything checked at the items step, checked again: the state may be an hour old."""
    shop = page.shop
    eligibility = page.eligibility(order)
    if eligibility is None:
        return page.unavailable(order)
    by_id = {e.line_item.pk: e for e in eligibility}
    policy = return_policy_get(shop=shop)
    if any(
        item.line_item_id in by_id
        and by_id[item.line_item_id].reason_code == ReasonCode.OPEN_REQUEST
        for item in state.items
    ):
        # The same items while a request for them is open (another tab, a second visit).
        logger.info("returns.portal.items_already_open", extra={"shop": shop.myshopify_domain})
        return page.render(
            "message",
            {"message": _("A return for these items is already open.")},
            status=409,
            order=order,
        )
    stale = (
        not state.items
        or state.resolution not in policy_resolutions(policy)
        or any(
            item.line_item_id not in by_id
            or not by_id[item.line_item_id].is_eligible
            or item.quantity > by_id[item.line_item_id].returnable_quantity
            or item.reason not in policy_reasons(policy)
            or not all(portal.photo_is_stashed_for(ref, shop=shop) for ref in item.photos)
            for item in state.items
        )
    )
    if stale:
        logger.info("returns.portal.submit_stale", extra={"shop": shop.myshopify_domain})
        return page.render_items(
            order,
            portal.PortalState.start(shop=shop, order=order, customer_id=state.customer_id),
            notice=_("Something changed since you chose your items. Please choose them again."),
            eligibility=eligibility,
            status=409,
        )
    return None


def _request_submit(
    page: _Portal, state: portal.PortalState, order: Order
) -> ReturnRequest | HttpResponse:
    items = [
        ReturnItemInput(
            line_item_id=item.line_item_id,
            quantity=item.quantity,
            reason=item.reason,
            note=item.note,
            exchange_variant_id=item.exchange_variant_id,
            exchange_variant_title=item.exchange_variant_title,
        )
        for item in state.items
    ]
    # The service checks that the shopper owns the order: by the signed customer when the
    # portal was started from a logged-in customer's list, else by the order's own email
    # (the guest proved it, or the postal code, at the lookup).
    customer_id = state.customer_id
    if customer_id is None and not order.email.strip():
        customer_id = order.customer_id
    photos = {
        item.line_item_id: [portal.photo_open(ref) for ref in item.photos]
        for item in state.items
        if item.photos
    }
    try:
        return return_request_submit(
            shop=page.shop,
            order=order,
            items=items,
            resolution=state.resolution,
            customer_email=order.email,
            customer_id=customer_id,
            photos=photos,
        )
    except ReturnRefused as exc:
        # The service's own refusal (blocklist, an item just requested in another tab): its
        # message is written for the shopper.
        logger.info(
            "returns.portal.submit_refused",
            extra={"shop": page.shop.myshopify_domain, "code": exc.code},
        )
        return page.render("message", {"message": exc.message}, status=409, order=order)
    except AdminApiError as exc:
        logger.warning(
            "returns.portal.submit_unavailable",
            extra={"shop": page.shop.myshopify_domain, "error": type(exc).__name__},
        )
        return page.render("message", {"message": _unavailable_message()}, status=503, order=order)
    finally:
        for files in photos.values():
            for handle in files:
                handle.close()


def _choices(
    eligibility: list[ItemEligibility], variants: dict[int, list[tuple[int, str]]]
) -> list[ItemChoice]:
    return [
        ItemChoice(
            line_item_id=e.line_item.pk,
            returnable_quantity=e.returnable_quantity,
            exchange_variants=variants.get(e.line_item.pk, []),
        )
        for e in eligibility
        if e.is_eligible and e.returnable_quantity > 0
    ]


# ---------------------------------------------------------------------------------------------
# Rendering


class _Portal:
    """One answer of the portal: language, timezone, branding, Liquid-safe body."""

    def __init__(self, request: HttpRequest, *, proxy_base: str) -> None:
        self.request = request
        self.shop: Shop = request.shop  # type: ignore[attr-defined]
        # Relative links follow the storefront URL the shopper sees (…/<subpath>/returns or
        # …/<subpath>/returns/<token>), whatever prefix and subpath the merchant chose.
        self.proxy_base = proxy_base
        # One look for the shop's storefront pages: the tracking page's branding.
        self.branding = tracking_selectors.storefront_branding(shop=self.shop)
        self.client_ip = storefront_client_ip(request)
        self.explicit_locale = request.GET.get("locale", "")

    def language(self, order: Order | None = None) -> str:
        return storefront_language(self.request, self.shop, order)

    def locale_param(self) -> dict[str, str]:
        from shopapp.storefront import supported_language

        code = supported_language(self.explicit_locale)
        return {"locale": code} if code else {}

    def eligibility(self, order: Order) -> list[ItemEligibility] | None:
        try:
            return order_eligibility(shop=self.shop, order=order)
        except AdminApiError as exc:
            # Shopify unreachable or throttled: say "try again", never guess what is returnable.
            logger.warning(
                "returns.portal.eligibility_unavailable",
                extra={"shop": self.shop.myshopify_domain, "error": type(exc).__name__},
            )
            return None

    def exchange_variants(
        self, eligibility: list[ItemEligibility], policy: Any
    ) -> dict[int, list[tuple[int, str]]] | None:
        """The exchange choices of the eligible items, in one Admin API read per page; {} when
        the policy offers no exchange; None when Shopify cannot be read."""
        if Resolution.EXCHANGE not in policy_resolutions(policy):
            return {}
        line_items = [e.line_item for e in eligibility if e.is_eligible and e.returnable_quantity]
        try:
            return selectors.exchange_variants_for_line_items(shop=self.shop, line_items=line_items)
        except AdminApiError as exc:
            logger.warning(
                "returns.portal.variants_unavailable",
                extra={"shop": self.shop.myshopify_domain, "error": type(exc).__name__},
            )
            return None

    def unavailable(self, order: Order | None = None) -> HttpResponse:
        with translation.override(self.language(order)):
            return self._respond("message", {"message": _unavailable_message()}, status=503)

    # -- answers ------------------------------------------------------------------------------

    def render(
        self, view: str, context: dict[str, Any], *, status: int = 200, order: Order | None = None
    ) -> HttpResponse:
        """A page in the shopper's language: the order's when the page is about one."""
        with translation.override(self.language(order)):
            return self._respond(view, context, status=status)

    def rate_limited(self, retry_after: int, *, step: str = "lookup") -> HttpResponse:
        minutes = max(1, (retry_after + 59) // 60)
        response = self.render("rate_limited", {"minutes": minutes, "step": step}, status=429)
        response["Retry-After"] = str(retry_after)
        return response

    def render_items(
        self,
        order: Order,
        state: portal.PortalState,
        *,
        result: Any = None,
        eligibility: list[ItemEligibility] | None = None,
        variants: dict[int, list[tuple[int, str]]] | None = None,
        notice: str = "",
        status: int = 200,
    ) -> HttpResponse:
        with translation.override(self.language(order)):
            if eligibility is None:
                eligibility = self.eligibility(order)
                if eligibility is None:
                    return self.unavailable(order)
            policy = return_policy_get(shop=self.shop)
            if variants is None:
                variants = self.exchange_variants(eligibility, policy)
                if variants is None:
                    return self.unavailable(order)
            reasons = policy_reasons(policy)
            chosen = {item.line_item_id: item for item in state.items}
            posted = self.request.POST if result is not None else None
            errors = result.errors if result is not None else {}
            rows = []
            for e in eligibility:
                li = e.line_item
                key = str(li.pk)
                earlier = chosen.get(li.pk)
                if posted is not None:
                    quantity = posted.get(f"quantity-{key}", "0")
                    reason = posted.get(f"reason-{key}", "")
                    note = posted.get(f"note-{key}", "")[: portal.NOTE_MAX_CHARS + 50]
                    variant = posted.get(f"variant-{key}", "")[:20]
                else:
                    quantity = str(earlier.quantity) if earlier else "0"
                    reason = earlier.reason if earlier else ""
                    note = earlier.note if earlier else ""
                    variant = str(earlier.exchange_variant_id or "") if earlier else ""
                rows.append(
                    {
                        "id": key,
                        "title": _item_title(li),
                        "ordered": li.quantity,
                        "eligible": e.is_eligible and e.returnable_quantity > 0,
                        "reason_text": e.reason_text,
                        "quantities": list(range(0, e.returnable_quantity + 1)),
                        "quantity": quantity,
                        "reason": reason,
                        "note": note,
                        "variant": variant,
                        "variants": [(str(vid), title) for vid, title in variants.get(li.pk, [])],
                        "photos_kept": len(earlier.photos) if earlier else 0,
                        "errors": {
                            name: errors[f"{name}-{key}"]
                            for name in ("quantity", "reason", "note", "photos", "variant")
                            if f"{name}-{key}" in errors
                        },
                    }
                )
            resolution = posted.get("resolution", "") if posted is not None else state.resolution
            context = {
                "order": _order_context(order),
                "items": rows,
                "has_eligible": any(row["eligible"] for row in rows),
                "reasons": [(code, portal.reason_label(code)) for code in reasons],
                "note_reasons": [
                    portal.reason_label(r) for r in reasons if reason_requires_note(policy, r)
                ],
                "photo_reasons": [
                    portal.reason_label(r) for r in reasons if reason_requires_photo(policy, r)
                ],
                "resolutions": [
                    (code, portal.RESOLUTION_LABELS[code]) for code in policy_resolutions(policy)
                ],
                "resolution": resolution,
                "resolution_error": errors.get("resolution", ""),
                "form_error": errors.get("__all__", ""),
                "has_errors": bool(errors),
                "notice": notice,
                "state": portal.state_dumps(state),
                "photo_max_mb": portal.PHOTO_MAX_BYTES // (1024 * 1024),
                "photo_max_count": portal.PHOTOS_MAX_PER_ITEM,
                "note_max": portal.NOTE_MAX_CHARS,
            }
            return self._respond("items", context, status=status)

    def render_review(
        self, order: Order, state: portal.PortalState, eligibility: list[ItemEligibility]
    ) -> HttpResponse:
        by_id = {e.line_item.pk: e.line_item for e in eligibility}
        estimate = return_estimate(
            shop=self.shop,
            order=order,
            items=[(item.line_item_id, item.quantity) for item in state.items],
            resolution=state.resolution,
        )
        context = {
            "order": _order_context(order),
            "items": [
                {
                    "title": _item_title(by_id[item.line_item_id]),
                    "quantity": item.quantity,
                    "reason": portal.reason_label(item.reason),
                    "note": item.note,
                    "photos": len(item.photos),
                    "variant": item.exchange_variant_title or item.exchange_variant_id,
                }
                for item in state.items
            ],
            "resolution": state.resolution,
            "resolution_label": portal.RESOLUTION_LABELS.get(state.resolution, ""),
            "estimate": estimate,
            "state": portal.state_dumps(state),
        }
        return self._respond("review", context, status=200)

    def render_status(
        self, rr: ReturnRequest, *, token: str, is_new: bool = False, status: int = 200
    ) -> HttpResponse:
        with translation.override(self.language(rr.order)):
            lines = list(rr.line_items.select_related("line_item").order_by("id"))
            base = self.proxy_base if not is_new else ""
            context = {
                "order": _order_context(rr.order),
                "return": rr,
                "is_new": is_new,
                "status_view": portal.return_status_view(rr),
                "items": [
                    {
                        "title": _item_title(line.line_item),
                        "quantity": line.quantity,
                        "reason": portal.reason_label(line.reason),
                    }
                    for line in lines
                ],
                "resolution_label": portal.RESOLUTION_LABELS.get(rr.resolution, ""),
                "status_url": f"{base}returns/{token}",
                "label_url": f"{base}returns/{token}/label",
            }
            return self._respond("status", context, status=status)

    def _respond(self, view: str, context: dict[str, Any], *, status: int) -> HttpResponse:
        language = translation.get_language()
        action = f"{self.proxy_base}returns"
        locale = self.locale_param()
        if locale:
            action += "?" + urlencode(locale)
        full_context = {
            "view": view,
            "lang": language,
            "shop_name": self.shop.name or self.shop.myshopify_domain,
            "branding": self.branding,
            "form_action": action,
            "form_token": form_token(self.shop),
            "start_url": action,
            **context,
        }
        with timezone.override(self.zone()):
            body = liquid_safe(render_to_string("returns/portal/page.html", full_context))
            css = render_to_string("returns/portal/page.css", {"branding": self.branding})
        if self.branding.is_standalone_page:
            content = render_to_string(
                "returns/portal/standalone.html",
                {
                    "lang": language,
                    "title": liquid_safe(str(_page_title(view))),
                    "css": mark_safe(css),  # noqa: S308 - our static CSS, colour validated
                    "body": mark_safe(body),  # noqa: S308 - autoescaped, then Liquid-safe
                },
            )
        else:
            content = f"<style>{css}</style>\n{body}"
        return storefront_response(
            content,
            is_standalone=self.branding.is_standalone_page,
            language=language,
            status=status,
        )

    def zone(self) -> Any:
        from shopapp.auth.selectors import shop_zone

        return shop_zone(self.shop)


# ---------------------------------------------------------------------------------------------
# Helpers


def _order_context(order: Order) -> dict[str, Any]:
    return {"name": order.name, "created_at": order.shopify_created_at or order.created_at}


def _item_title(line: Any) -> str:
    if line.variant_title and line.variant_title != "Default Title":
        return f"{line.title} – {line.variant_title}"
    return line.title


def _not_found_message() -> str:
    return _(
        "We couldn't find an order with these details. Check the order number and the email "
        "address or postal code used at checkout."
    )


def _expired_message() -> str:
    return _("This page has expired. Please look up your order again.")


def _photo_budget_message() -> str:
    return _(
        "You've added as many photos as we can take for this order. Continue with the photos "
        "already attached, or contact the store."
    )


def _unavailable_message() -> str:
    return _("We can't check your order right now. Please try again in a few minutes.")


def _page_title(view: str) -> str:
    if view == "status":
        return _("Your return")
    return _("Return items")

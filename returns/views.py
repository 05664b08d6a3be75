"""The storefront returns portal, served through Shopify's app proxy.

    shopper ─ https://<shop>/apps/<subpath>/returns[/<token>] ─▶ Shopify ─ signed ─▶ /proxy/returns…
      GET  /proxy/returns                 lookup form (?order= pre-fills it); a logged-in
                                          customer's orders; ?order_id= (that customer's order)
                                          or ?token= (the tracking page's signed link) → items
      POST /proxy/returns  step=lookup    order number + email or postal code → items
                           step=items     quantities, reasons, notes, photos, a resolution
                                          per item (an exchange: another size or colour, or
                                          a product of the kept catalogue, returns.catalogue)
                                          → review (each item's price, fees, bonus, the
                                          exchange's price difference and the totals:
                                          returns.eligibility.return_quote)
                                          (rate-limited per client; new photos within the
                                          order's stash budget, replaced ones deleted)
                           step=back      from the review to the items, choices kept
                           step=submit    checked again with Shopify (eligibility, the
                                          exchange variants' stock and price), stored at once
                                          (returns.services), sent to Shopify by a job → the
                                          return's status page
      GET  /proxy/returns/<token>         the return's status page (signed, long-lived link)
      GET  /proxy/returns/<token>/label   the return label the merchant attached
      GET  /proxy/returns/<token>/state   where the return is, as JSON, for the status page's
                                          own refresh (one row read)

Every view: ``app_proxy_required`` (signature, fresh timestamp, installed shop → else 403),
parse, verify (form token or signed state, rate limit, ownership), a service or selector,
render. The tracking page's rules apply: no cookies (the state travels signed in a hidden
field), one generic answer for a wrong number and a wrong email, Liquid-safe output,
``Cache-Control: private, no-store`` (shopapp.storefront).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from urllib.parse import urlencode

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from returns import portal, selectors
from returns.catalogue import CatalogueProduct, exchange_variants_live
from returns.eligibility import (
    ItemEligibility,
    ReasonCode,
)
from returns.forms import ItemChoice, ReturnLookupForm, items_form_clean
from returns.models import Resolution, ReturnPolicy, ReturnRequest
from returns.policy import (
    policy_reasons,
    policy_resolutions,
    reason_requires_note,
    reason_requires_photo,
    reasons_for_product_type,
)
from returns.portal_page import (
    FINAL_STATUS_KEYS,
    PortalPage,
    expired_message,
    item_title,
    not_found_message,
    photo_budget_message,
    unavailable_message,
)
from returns.services import ReturnItemInput, ReturnRefused, return_request_submit
from returns.status import return_status_view
from shopapp.admin_api.client import AdminApiError
from shopapp.http import ProxyRequest
from shopapp.models import Order, Shop
from shopapp.proxy import app_proxy_required
from shopapp.storefront.links import form_token_valid, order_id_from_link_token
from shopapp.storefront.lookup import storefront_order_lookup
from shopapp.storefront.ratelimit import lookup_rate_limit_hit

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Views


@app_proxy_required
@require_http_methods(["GET", "POST"])
def portal_page(request: ProxyRequest) -> HttpResponse:
    shop: Shop = request.shop
    page = PortalPage(request, proxy_base="")
    customer_id = request.logged_in_customer_id
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
        return page.render("lookup", {"error": expired_message()})
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
    return page.render("lookup", {"error": expired_message()})


@app_proxy_required
@require_GET
def return_status(request: ProxyRequest, token: str) -> HttpResponse:
    shop: Shop = request.shop
    page = PortalPage(request, proxy_base="../")
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
def return_state(request: ProxyRequest, token: str) -> HttpResponse:
    """Where a return is, for its status page's script: one row read, a few bytes of JSON.
    The same signed token as the page; anything else is a 404 saying nothing."""
    shop: Shop = request.shop
    return_id = portal.return_id_from_status_token(token, shop=shop)
    rr = ReturnRequest.objects.filter(shop=shop, pk=return_id).first() if return_id else None
    if rr is None:
        response = JsonResponse({"error": "not_found"}, status=404)
    else:
        key = return_status_view(rr).key
        response = JsonResponse({"status": key, "is_final": key in FINAL_STATUS_KEYS})
    response["Cache-Control"] = "private, no-store"
    return response


@app_proxy_required
@require_GET
def return_label(request: ProxyRequest, token: str) -> HttpResponseBase:
    shop: Shop = request.shop
    return_id = portal.return_id_from_status_token(token, shop=shop)
    rr = ReturnRequest.objects.filter(shop=shop, pk=return_id).first() if return_id else None
    if rr is None or not rr.label_file or rr.status != ReturnRequest.Status.OPEN:
        return HttpResponse(status=404, content_type="text/plain; charset=utf-8")
    handle = default_storage.open(rr.label_file.name, "rb")
    # Named and typed by its bytes (the merchant may attach a PDF, PNG or JPEG): a PNG sent as
    # .pdf would not open on the shopper's phone.
    ext, content_type = portal.label_file_type(handle.read(16))
    handle.seek(0)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"return-label-{rr.pk}.{ext}",
        content_type=content_type,
    )
    response["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------------------------
# Steps


def _start(request: ProxyRequest, page: PortalPage, customer_id: int | None) -> HttpResponse:
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
            return page.render("lookup", {"error": not_found_message()}, status=404)
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
            return page.render("lookup", {"error": expired_message()}, status=404)
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


def _lookup(request: ProxyRequest, page: PortalPage) -> HttpResponse:
    shop = page.shop
    if not form_token_valid(request.POST.get("form_token", ""), shop=shop):
        logger.info("returns.portal.form_token_invalid", extra={"shop": shop.myshopify_domain})
        return page.render("lookup", {"error": expired_message(), "order_value": ""})
    form = ReturnLookupForm(request.POST)
    typed_order = request.POST.get("order", "")[:40]
    if not form.is_valid():
        return page.render("lookup", {"form": form, "order_value": typed_order})
    number = form.cleaned_data["order"]
    # The same per-order budget as the tracking page, keyed by the normalised number: one
    # guessed number costs the same on either page and in any spelling.
    proof = form.cleaned_data["contact"]
    limited = lookup_rate_limit_hit(
        shop_id=shop.pk,
        client_ip=page.client_ip,
        order_key=number.key,
        weak_proof=proof.is_weak,
    )
    if not limited.allowed:
        return page.rate_limited(limited.retry_after)
    order = storefront_order_lookup(shop=shop, number=number, proof=proof)
    if order is None:
        logger.info("returns.portal.lookup_no_match", extra={"shop": shop.myshopify_domain})
        # One message whether the number or the contact was wrong (no enumeration); the
        # number comes back for correction, the email or postal code does not.
        return page.render("lookup", {"error": not_found_message(), "order_value": typed_order})
    logger.info(
        "returns.portal.lookup_found", extra={"shop": shop.myshopify_domain, "order_id": order.pk}
    )
    return page.render_items(
        order, portal.PortalState.start(shop=shop, order=order, customer_id=None)
    )


def _items_submitted(
    request: ProxyRequest, page: PortalPage, state: portal.PortalState, order: Order
) -> HttpResponse:
    shop = page.shop
    with translation.override(page.language(order)):
        eligibility = page.eligibility(order)
        if eligibility is None:
            return page.unavailable(order)
        policy = page.policy
        variants = page.exchange_variants(eligibility, policy)
        if variants is None:
            return page.unavailable(order)
        result = items_form_clean(
            data=request.POST,
            files=request.FILES,
            choices=_choices(
                eligibility, variants, policy, products=page.exchange_products(eligibility, order)
            ),
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
        uploads = [photo for checked in result.uploads.values() for photo in checked]
        budget = portal.photo_budget_reserve(
            shop_id=shop.pk,
            order_id=order.pk,
            photos=len(uploads),
            size=sum(len(photo.content) for photo in uploads),
        )
        if not budget.allowed:
            # Nothing stashed, nothing discarded: the posted state stays the shopper's.
            result.errors["__all__"] = photo_budget_message()
            response = page.render_items(
                order, state, result=result, eligibility=eligibility, variants=variants, status=429
            )
            if budget.retry_after:
                response["Retry-After"] = str(budget.retry_after)
            return response
        for item in result.items:
            for photo in result.uploads.get(item.line_item_id, []):
                item.photos.append(portal.photo_stash(shop=shop, photo=photo))
        # Photos the new choice replaced or dropped are referenced by the old state only.
        portal.photo_discard_dropped(shop=shop, before=state.items, after=result.items)
        state.items = result.items
        state.resolution = result.resolution
        return page.render_review(order, state, eligibility)


def _submit(
    request: ProxyRequest, page: PortalPage, state: portal.PortalState, order: Order
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
        checked = _submit_check(page, state, order)
        if isinstance(checked, HttpResponse):
            portal.submission_release(shop_id=shop.pk, nonce=state.nonce)
            return checked
        created = _request_submit(page, state, order, checked)
        if isinstance(created, HttpResponse):
            portal.submission_release(shop_id=shop.pk, nonce=state.nonce)
            return created
    portal.submission_record(shop_id=shop.pk, nonce=state.nonce, return_request_id=created.pk)
    portal.photo_discard([ref for item in state.items for ref in item.photos])
    logger.info(
        "returns.portal.submitted",
        extra={"shop": shop.myshopify_domain, "order_id": order.pk, "return_id": created.pk},
    )
    return page.render_status(
        created, token=portal.return_status_token(created), is_new=True, status=201
    )


def _submit_check(
    page: PortalPage, state: portal.PortalState, order: Order
) -> list[ItemEligibility] | HttpResponse:
    """Everything the pages offered, checked again against Shopify itself (the pages read the
    app's own copy, which a webhook still on its way can leave behind, and the state may be
    an hour old): Shopify's eligibility for the submission, or the answer that refuses it,
    saying what changed. Nothing is stored before this passes."""
    shop = page.shop
    eligibility = page.verified_eligibility(order)
    if eligibility is None:
        return page.unavailable(order)
    by_id = {e.line_item.pk: e for e in eligibility}
    policy = page.policy
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
    changes = _changes(state, by_id)
    if not changes and any(
        _item_resolution(item, state) == Resolution.EXCHANGE for item in state.items
    ):
        sold_out = _exchange_changes(page, state, by_id)
        if sold_out is None:
            return page.unavailable(order)
        changes = sold_out
    stale = (
        bool(changes)
        or not state.items
        or any(
            _item_resolution(item, state) not in policy_resolutions(policy)
            or item.reason not in policy_reasons(policy)
            or not all(portal.photo_is_stashed_for(ref, shop=shop) for ref in item.photos)
            for item in state.items
        )
    )
    if stale:
        logger.info(
            "returns.portal.submit_stale",
            extra={"shop": shop.myshopify_domain, "order_id": order.pk, "changes": len(changes)},
        )
        notice = _("Something changed since you chose your items.")
        if changes:
            notice = " ".join([notice, *changes])
        return page.render_items(
            order,
            portal.PortalState.start(shop=shop, order=order, customer_id=state.customer_id),
            notice=" ".join([notice, _("Please choose them again.")]),
            eligibility=eligibility,
            status=409,
        )
    return eligibility


def _changes(state: portal.PortalState, by_id: dict[int, ItemEligibility]) -> list[str]:
    """What Shopify says now of the items chosen, in the shopper's words: one sentence per
    item that can no longer be returned as chosen."""
    changes = []
    for item in state.items:
        elig = by_id.get(item.line_item_id)
        if elig is None:
            changes.append(_("An item you chose is no longer part of the order."))
            continue
        title = item_title(elig.line_item)
        if not elig.is_eligible:
            changes.append(_("%(item)s: %(reason)s.") % {"item": title, "reason": elig.reason_text})
        elif item.quantity > elig.returnable_quantity:
            changes.append(
                _("%(item)s: only %(count)d can be returned now.")
                % {"item": title, "count": elig.returnable_quantity}
            )
    return changes


def _exchange_changes(
    page: PortalPage, state: portal.PortalState, by_id: dict[int, ItemEligibility]
) -> list[str] | None:
    """The variants asked for in exchange that Shopify no longer sells (the pages offered
    them from a stored copy); None when Shopify cannot be read. Another size or colour is
    read with its product's variants; a different product's variant is read live (one query
    for them all, returns.catalogue): sold out, no longer active, or priced otherwise than
    the review showed, the shopper chooses again."""
    same_product = [
        item
        for item in state.items
        if _item_resolution(item, state) == Resolution.EXCHANGE and not item.exchange_product_id
    ]
    other_product = [
        item
        for item in state.items
        if _item_resolution(item, state) == Resolution.EXCHANGE and item.exchange_product_id
    ]
    try:
        choices = (
            selectors.exchange_variants_for_line_items(
                shop=page.shop,
                line_items=[by_id[item.line_item_id].line_item for item in same_product],
            )
            if same_product
            else {}
        )
        live = (
            exchange_variants_live(
                shop=page.shop,
                variant_ids=[item.exchange_variant_id or 0 for item in other_product],
            )
            if other_product
            else {}
        )
    except AdminApiError as exc:
        logger.warning(
            "returns.portal.variants_unavailable",
            extra={"shop": page.shop.myshopify_domain, "error": type(exc).__name__},
        )
        return None
    changes = []
    for item in other_product:
        now = live.get(item.exchange_variant_id or 0)
        if now is None or not now.is_available or now.product_id != item.exchange_product_id:
            logger.info(
                "returns.portal.exchange_sold_out",
                extra={"shop": page.shop.myshopify_domain, "variant": item.exchange_variant_id},
            )
            changes.append(
                _("%(item)s: %(variant)s is no longer available.")
                % {
                    "item": item_title(by_id[item.line_item_id].line_item),
                    "variant": item.exchange_variant_title or item.exchange_variant_id,
                }
            )
        elif item.exchange_unit_price and now.price != Decimal(item.exchange_unit_price):
            # The review showed another price: the shopper decides again on the new one.
            changes.append(
                _("%(item)s: %(variant)s now costs %(price)s %(currency)s.")
                % {
                    "item": item_title(by_id[item.line_item_id].line_item),
                    "variant": item.exchange_variant_title or item.exchange_variant_id,
                    "price": now.price,
                    "currency": page.shop.currency,
                }
            )
    for item in same_product:
        offered = {variant_id for variant_id, _title in choices.get(item.line_item_id, [])}
        if item.exchange_variant_id and item.exchange_variant_id not in offered:
            changes.append(
                _("%(item)s: %(variant)s is no longer available.")
                % {
                    "item": item_title(by_id[item.line_item_id].line_item),
                    "variant": item.exchange_variant_title or item.exchange_variant_id,
                }
            )
    return changes


def _request_submit(
    page: PortalPage,
    state: portal.PortalState,
    order: Order,
    eligibility: list[ItemEligibility],
) -> ReturnRequest | HttpResponse:
    items = [
        ReturnItemInput(
            line_item_id=item.line_item_id,
            quantity=item.quantity,
            reason=item.reason,
            note=item.note,
            exchange_variant_id=item.exchange_variant_id,
            exchange_variant_title=item.exchange_variant_title,
            resolution=_item_resolution(item, state),
            exchange_unit_price=Decimal(item.exchange_unit_price)
            if item.exchange_product_id and item.exchange_unit_price
            else None,
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
            eligibility=eligibility,
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
        return page.render("message", {"message": unavailable_message()}, status=503, order=order)
    finally:
        for files in photos.values():
            for handle in files:
                handle.close()


def _item_resolution(item: portal.SelectedItem, state: portal.PortalState) -> str:
    return item.resolution or state.resolution


def _choices(
    eligibility: list[ItemEligibility],
    variants: dict[int, list[tuple[int, str]]],
    policy: ReturnPolicy,
    *,
    products: dict[int, list[CatalogueProduct]],
) -> list[ItemChoice]:
    return [
        ItemChoice(
            line_item_id=e.line_item.pk,
            returnable_quantity=e.returnable_quantity,
            exchange_variants=variants.get(e.line_item.pk, []),
            reasons=reasons_for_product_type(policy, e.product_type),
            exchange_products=products.get(e.line_item.pk, []),
        )
        for e in eligibility
        if e.is_eligible and e.returnable_quantity > 0
    ]

"""Rendering the returns portal's pages: one object per request carries the shop, the
language, the branding and the answer's headers (Liquid-safe, private, no-store).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from returns import portal, selectors
from returns.catalogue import CatalogueProduct, exchange_catalogue_cached
from returns.eligibility import (
    ItemEligibility,
    line_item_unit_value,
    order_eligibility,
    order_eligibility_local,
    return_quote_for_policy,
)
from returns.models import Resolution, ReturnPolicy, ReturnRequest
from returns.policy import (
    policy_reasons,
    policy_resolutions,
    reason_requires_note,
    reason_requires_photo,
    reasons_for_product_type,
    return_policy_get,
)
from returns.status import return_status_view
from shopapp.admin_api.client import AdminApiError
from shopapp.auth.selectors import shop_zone
from shopapp.http import ProxyRequest
from shopapp.models import Order, Shop
from shopapp.storefront import (
    liquid_safe,
    storefront_client_ip,
    storefront_language,
    storefront_response,
    supported_language,
)
from shopapp.storefront.links import form_token
from tracking import selectors as tracking_selectors

logger = logging.getLogger(__name__)

# The status page asks where its return is every RETURNS_STATUS_POLL_SECONDS (30 s) while it
# is open in a tab (one row read per ask): a shopper waiting for "approved" or "received" sees
# it within half a minute, without reloading. It stops after three hours open, and once the
# return is final.
STATUS_POLL_HOURS = 3
# Products offered per item for an exchange with a different product: a page a phone scrolls
# through; the catalogue's newest first.
EXCHANGE_PRODUCTS_MAX = 24
# Status keys (returns.status) after which nothing more will change for the shopper.
FINAL_STATUS_KEYS = frozenset({"closed", "settled", "declined", "canceled", "failed"})


class PortalPage:
    """One answer of the portal: language, timezone, branding, Liquid-safe body."""

    def __init__(self, request: ProxyRequest, *, proxy_base: str) -> None:
        self.request = request
        self.shop: Shop = request.shop
        # Relative links follow the storefront URL the shopper sees (…/<subpath>/returns or
        # …/<subpath>/returns/<token>), whatever prefix and subpath the merchant chose.
        self.proxy_base = proxy_base
        # One look for the shop's storefront pages: the tracking page's branding.
        self.branding = tracking_selectors.storefront_branding(shop=self.shop)
        self.client_ip = storefront_client_ip(request)
        self.explicit_locale = request.GET.get("locale", "")
        self._policy: ReturnPolicy | None = None
        self._catalogue: list[CatalogueProduct] | None = None

    @property
    def policy(self) -> ReturnPolicy:
        """The shop's return policy, read once per request (the rules and the form both use it)."""
        if self._policy is None:
            self._policy = return_policy_get(shop=self.shop)
        return self._policy

    def language(self, order: Order | None = None) -> str:
        return storefront_language(self.request, self.shop, order)

    def locale_param(self) -> dict[str, str]:
        code = supported_language(self.explicit_locale)
        return {"locale": code} if code else {}

    def eligibility(self, order: Order) -> list[ItemEligibility] | None:
        """What the pages offer, from local state (no Admin API call in the common case)."""
        return self._eligibility(
            lambda **kwargs: order_eligibility_local(policy=self.policy, **kwargs), order
        )

    def verified_eligibility(self, order: Order) -> list[ItemEligibility] | None:
        """What Shopify says is returnable now (returnableFulfillments): the submission's."""
        return self._eligibility(order_eligibility, order)

    def _eligibility(self, reading: Any, order: Order) -> list[ItemEligibility] | None:
        try:
            return reading(shop=self.shop, order=order)
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
        """The exchange choices of the eligible items: from the variants the local reading
        carries (no query), else one Admin API read per 15 products; {} when the policy offers
        no exchange; None when Shopify cannot be read."""
        if Resolution.EXCHANGE not in policy_resolutions(policy):
            return {}
        eligible = [e for e in eligibility if e.is_eligible and e.returnable_quantity]
        if all(e.product_variants is not None for e in eligible):
            return {
                e.line_item.pk: selectors.exchange_choices(e.line_item, e.product_variants or [])
                for e in eligible
            }
        line_items = [e.line_item for e in eligible]
        try:
            return selectors.exchange_variants_for_line_items(shop=self.shop, line_items=line_items)
        except AdminApiError as exc:
            logger.warning(
                "returns.portal.variants_unavailable",
                extra={"shop": self.shop.myshopify_domain, "error": type(exc).__name__},
            )
            return None

    def exchange_products(
        self, eligibility: list[ItemEligibility], order: Order
    ) -> dict[int, list[CatalogueProduct]]:
        """{line item pk: the other products it may be exchanged for}: the shop's catalogue
        as kept in Redis (one GET per request, no Admin API call), each item's own product
        left out; {} when the policy does not offer it, or the order was paid in another
        currency than the shop's (the catalogue's prices are the shop's: the difference
        could not be told)."""
        policy = self.policy
        if (
            not policy.allow_product_exchange
            or Resolution.EXCHANGE not in policy_resolutions(policy)
            or (order.currency and self.shop.currency and order.currency != self.shop.currency)
        ):
            return {}
        if self._catalogue is None:
            self._catalogue = exchange_catalogue_cached(shop=self.shop)[:EXCHANGE_PRODUCTS_MAX]
        return {
            e.line_item.pk: [p for p in self._catalogue if p.product_id != e.line_item.product_id]
            for e in eligibility
            if e.is_eligible and e.returnable_quantity
        }

    def unavailable(self, order: Order | None = None) -> HttpResponse:
        with translation.override(self.language(order)):
            return self._respond("message", {"message": unavailable_message()}, status=503)

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
            policy = self.policy
            if variants is None:
                variants = self.exchange_variants(eligibility, policy)
                if variants is None:
                    return self.unavailable(order)
            products = self.exchange_products(eligibility, order)
            reasons = policy_reasons(policy)
            posted = self.request.POST if result is not None else None
            errors = result.errors if result is not None else {}
            chosen = {item.line_item_id: item for item in state.items}
            resolutions = policy_resolutions(policy)
            resolution_labels = resolution_choices(policy, any_product=bool(products))
            fallback = posted.get("resolution", "") if posted is not None else state.resolution
            rows = [
                _item_row(
                    e,
                    earlier=chosen.get(e.line_item.pk),
                    posted=posted,
                    errors=errors,
                    variants=variants.get(e.line_item.pk, []),
                    products=products.get(e.line_item.pk, []),
                    reasons=[
                        (code, str(portal.reason_label(code)))
                        for code in reasons_for_product_type(policy, e.product_type)
                    ],
                    resolutions=resolution_labels,
                    fallback_resolution=fallback,
                )
                for e in eligibility
            ]
            context = {
                "currency": order.currency or self.shop.currency,
                "order": _order_context(order),
                "items": rows,
                "has_eligible": any(row["eligible"] for row in rows),
                "note_reasons": [
                    portal.reason_label(r) for r in reasons if reason_requires_note(policy, r)
                ],
                "photo_reasons": [
                    portal.reason_label(r) for r in reasons if reason_requires_photo(policy, r)
                ],
                "offers_exchange": Resolution.EXCHANGE in resolutions,
                "shop_currency": self.shop.currency or order.currency,
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
        quote, returnless = return_quote_for_policy(
            shop=self.shop,
            order=order,
            items=[
                (
                    by_id[item.line_item_id],
                    item.quantity,
                    item.resolution or state.resolution,
                    # A different product's price, as the catalogue showed it; another size
                    # or colour costs the same (None).
                    item.exchange_unit_price if item.exchange_product_id else None,
                )
                for item in state.items
            ],
            policy=self.policy,
        )
        context = {
            "order": _order_context(order),
            "items": [
                {
                    "line": by_id[item.line_item_id],
                    "title": item_title(by_id[item.line_item_id]),
                    "quantity": item.quantity,
                    "reason": portal.reason_label(item.reason),
                    "note": item.note,
                    "photos": len(item.photos),
                    "variant": item.exchange_variant_title or item.exchange_variant_id,
                    "resolution": item_quote.resolution,
                    "resolution_label": portal.RESOLUTION_LABELS.get(item_quote.resolution, ""),
                    "quote": item_quote,
                }
                for item, item_quote in zip(state.items, quote.items, strict=True)
            ],
            "quote": quote,
            "returnless": returnless,
            "state": portal.state_dumps(state),
        }
        return self._respond("review", context, status=200)

    def render_status(
        self, rr: ReturnRequest, *, token: str, is_new: bool = False, status: int = 200
    ) -> HttpResponse:
        with translation.override(self.language(rr.order)):
            lines = list(rr.line_items.select_related("line_item").order_by("id"))
            base = self.proxy_base if not is_new else ""
            status_view = return_status_view(rr)
            locale = self.locale_param()
            query = ("?" + urlencode(locale)) if locale else ""
            context = {
                "order": _order_context(rr.order),
                "return": rr,
                "is_new": is_new,
                "status_view": status_view,
                "is_final": status_view.key in FINAL_STATUS_KEYS,
                "poll_seconds": settings.RETURNS_STATUS_POLL_SECONDS,
                "poll_max": STATUS_POLL_HOURS
                * 3600
                // max(5, settings.RETURNS_STATUS_POLL_SECONDS),
                "items": [
                    {
                        "line": line.line_item,
                        "title": item_title(line.line_item),
                        "quantity": line.quantity,
                        "reason": portal.reason_label(line.reason),
                        "resolution": line.resolution or rr.resolution,
                        "resolution_label": portal.RESOLUTION_LABELS.get(
                            line.resolution or rr.resolution, ""
                        ),
                        "variant": line.exchange_variant_title,
                        "estimate": line.estimate,
                    }
                    for line in lines
                ],
                "resolution_label": portal.RESOLUTION_LABELS.get(rr.resolution, ""),
                "status_url": f"{base}returns/{token}",
                "page_url": f"{base}returns/{token}{query}",
                "state_url": f"{base}returns/{token}/state",
                "label_url": f"{base}returns/{token}/label",
            }
            return self._respond(
                "status",
                context,
                status=status,
                script=not context["is_final"],
            )

    def _respond(
        self, view: str, context: dict[str, Any], *, status: int, script: bool = False
    ) -> HttpResponse:
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
            # Only the status page of a return still moving refreshes itself.
            js = render_to_string("returns/portal/page.js") if script else ""
        if self.branding.is_standalone_page:
            content: str = render_to_string(
                "returns/portal/standalone.html",
                {
                    "lang": language,
                    "title": liquid_safe(str(_page_title(view))),
                    "css": mark_safe(css),  # noqa: S308 - our static CSS, colour validated
                    "body": mark_safe(body),  # noqa: S308 - autoescaped, then Liquid-safe
                    "script": mark_safe(js),  # noqa: S308 - our static script
                },
            )
        else:
            content = f"<style>{css}</style>\n{body}"
            if js:
                content += f"\n<script>{js}</script>"
        return storefront_response(
            content,
            is_standalone=self.branding.is_standalone_page,
            language=language,
            status=status,
        )

    def zone(self) -> Any:
        return shop_zone(self.shop)


# ---------------------------------------------------------------------------------------------
# Helpers


def resolution_choices(policy: ReturnPolicy, *, any_product: bool = False) -> list[tuple[str, Any]]:
    """[(resolution, the shopper's words)] the policy offers, store credit with its bonus, the
    exchange in wider words when a different product is offered too (``any_product``)."""
    bonus = policy.store_credit_bonus_percent
    choices = []
    for code in policy_resolutions(policy):
        label = portal.RESOLUTION_LABELS[code]
        if code == Resolution.EXCHANGE and any_product:
            label = portal.EXCHANGE_ANY_LABEL
        if code == Resolution.STORE_CREDIT and bonus > 0:
            label = _("Store credit (+%(percent)s%% bonus)") % {"percent": _percent_text(bonus)}
        choices.append((code, label))
    return choices


def _percent_text(value: Any) -> str:
    """10.00 → "10", 12.50 → "12.5"."""
    return f"{value:f}".rstrip("0").rstrip(".") if "." in f"{value:f}" else f"{value:f}"


def _item_row(
    e: ItemEligibility,
    *,
    earlier: Any,
    posted: Any,
    errors: dict[str, Any],
    variants: list[tuple[int, str]],
    reasons: list[tuple[str, str]],
    resolutions: list[tuple[str, Any]],
    fallback_resolution: str,
    products: list[CatalogueProduct] | None = None,
) -> dict[str, Any]:
    """One line of the items form: what was posted (a correction), else what the state holds
    (back from the review), else nothing chosen. Its <option> lists are built here, not by
    template loops: they were most of the page's template time (bench/returns.py profile)."""
    li = e.line_item
    key = str(li.pk)
    if posted is not None:
        quantity = posted.get(f"quantity-{key}", "0")
        reason = posted.get(f"reason-{key}", "")
        note = posted.get(f"note-{key}", "")[: portal.NOTE_MAX_CHARS + 50]
        variant = posted.get(f"variant-{key}", "")[:20]
        resolution = posted.get(f"resolution-{key}", "") or fallback_resolution
        kind = posted.get(f"exchange-kind-{key}", "")
        product_variant = posted.get(f"product-variant-{key}", "")[:20]
    else:
        quantity = str(earlier.quantity) if earlier else "0"
        reason = earlier.reason if earlier else ""
        note = earlier.note if earlier else ""
        is_product = bool(earlier and earlier.exchange_product_id)
        variant = str(earlier.exchange_variant_id or "") if earlier and not is_product else ""
        resolution = (earlier.resolution if earlier else "") or fallback_resolution
        kind = "product" if is_product else ""
        product_variant = str(earlier.exchange_variant_id or "") if is_product else ""
    products = products or []
    if not variants and products:
        # Nothing of its own to swap for: a different product is the only exchange.
        kind = "product"
    return {
        "id": key,
        "line": li,
        "title": item_title(li),
        "unit_value": line_item_unit_value(li),
        "resolution_choices": [(code, label, code == resolution) for code, label in resolutions],
        "ordered": li.quantity,
        "eligible": e.is_eligible and e.returnable_quantity > 0,
        "reason_text": e.reason_text,
        "quantity_options": _options(
            [(str(n), str(n)) for n in range(0, e.returnable_quantity + 1)], quantity
        ),
        "reason_options": _options(reasons, reason),
        "note": note,
        "variants": bool(variants),
        "variant_options": _options([(str(vid), title) for vid, title in variants], variant),
        "exchange_kind": "product" if kind == "product" else "variant",
        "products": [
            {
                "id": product.product_id,
                "title": product.title,
                "image_url": product.image_url,
                "variants": [
                    {
                        "id": v.variant_id,
                        "label": v.title if v.title not in ("", "Default Title") else "",
                        "price": v.price,
                        "checked": str(v.variant_id) == product_variant,
                    }
                    for v in product.variants
                ],
            }
            for product in products
        ],
        "photos_kept": len(earlier.photos) if earlier else 0,
        "errors": {
            name: errors[f"{name}-{key}"]
            for name in ("quantity", "reason", "note", "photos", "variant", "resolution")
            if f"{name}-{key}" in errors
        },
    }


def _options(choices: list[tuple[str, str]], selected: str) -> SafeString:
    """<option>s for ``choices`` [(value, label)], ``selected`` marked; values and labels
    escaped."""
    return mark_safe(  # noqa: S308 - every value and label escaped here
        "".join(
            f'<option value="{escape(value)}"{" selected" if value == selected else ""}>'
            f"{escape(label)}</option>"
            for value, label in choices
        )
    )


def _order_context(order: Order) -> dict[str, Any]:
    return {"name": order.name, "created_at": order.shopify_created_at or order.created_at}


def item_title(line: Any) -> str:
    if line.variant_title and line.variant_title != "Default Title":
        return f"{line.title} – {line.variant_title}"
    return line.title


def not_found_message() -> str:
    return _(
        "We couldn't find an order with these details. Check the order number and the email "
        "address or postal code used at checkout."
    )


def expired_message() -> str:
    return _("This page has expired. Please look up your order again.")


def photo_budget_message() -> str:
    return _(
        "You've added as many photos as we can take for this order. Continue with the photos "
        "already attached, or contact the store."
    )


def unavailable_message() -> str:
    return _("We can't check your order right now. Please try again in a few minutes.")


def _page_title(view: str) -> str:
    if view == "status":
        return _("Your return")
    return _("Return items")

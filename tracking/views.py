"""The storefront tracking page, served through Shopify's app proxy.

    shopper ─ https://<shop>/apps/<subpath>/track[/<token>] ─▶ Shopify ─ signed ─▶ /proxy/track…
      GET  /proxy/track           lookup forms; a logged-in customer's recent orders
      POST /proxy/track           order number + email/phone, or a tracking number alone
                                  found: 303 → GET track/<token> (Post/Redirect/Get)
                                  not found: the form again, with what was typed and an error
      GET  /proxy/track/<token>   the order's page from a lookup, an email link, a bookmark
      POST /proxy/track/<token>   "report a problem" about one of its parcels (a form on the
                                  page, with a token bound to the order): 303 → the same
                                  page, which shows the open case and what happens next
      GET  /proxy/track/parcel/<token>  a parcel found by its tracking number alone

A found lookup answers with a redirect to the order's signed link (the one emails carry), so
the page a shopper sees has a URL of its own: bookmarkable, shareable, and a reload is a GET
that spends no lookup budget. The Location is relative (``track/<token>``): Shopify's proxy
hands 30x answers to the browser, which resolves it against the storefront URL it shows
(…/apps/<subpath>/track), so it works whatever prefix and subpath the merchant chose.

Every view: ``app_proxy_required`` (signature, fresh timestamp, installed shop → else 403),
parse, verify (form token, rate limit), one selector, render.

The answer is ``Content-Type: application/liquid``, so Shopify renders it inside the merchant's
theme (shopify.dev, "App proxies": Liquid responses), or a full HTML page when the merchant
chose a standalone page. Shopify's Liquid runs over the *whole* body, so any ``{{ … }}`` or
``{% … %}`` in order data or in what a shopper typed would be executed (Shopify's app security
checks rate this "Liquid injection" high). Hence ``shopapp.storefront.liquid_safe``: after
Django's HTML autoescaping, every brace in the rendered body becomes ``&#123;``/``&#125;``;
the body's own markup has none, and the only unescaped braces are the page's static CSS.

Cookies never reach us and cannot be set (the proxy strips both ways), so forms carry a signed
token (``shopapp.storefront.links.form_token``) and every answer is
``Cache-Control: private, no-store``.
"""

from __future__ import annotations

import functools
import logging
import re
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date as calendar_day
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from babel import UnknownLocaleError
from babel.numbers import format_currency
from django.conf import settings
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from shopapp.http import ProxyRequest
from shopapp.models import Order, Shop
from shopapp.proxy import app_proxy_required
from shopapp.storefront import (
    STOREFRONT_LANGUAGES,
    liquid_safe,
    storefront_client_ip,
    storefront_language,
    storefront_response,
    supported_language,
)
from shopapp.storefront.links import (
    DEFAULT_LINK_MAX_AGE_DAYS,
    form_token,
    form_token_valid,
    order_id_from_link_token,
    tracking_link_token,
)
from shopapp.storefront.lookup import storefront_order_lookup
from shopapp.storefront.ratelimit import lookup_rate_limit_hit
from tracking import selectors
from tracking.branding import Branding, safe_url
from tracking.estimates import (
    DeliveryEstimate,
    delivery_estimate_choose,
    delivery_stats_for,
    needs_prediction,
)
from tracking.forms import OrderLookupForm, ProblemReportForm, TrackingNumberForm
from tracking.models import Delay, ProblemCase, Shipment, Stage, TrackingPageView
from tracking.page_cache import (
    order_page_key,
    page_cache_enabled,
    page_cache_get,
    page_cache_set,
)
from tracking.problems import (
    ProblemRefused,
    problem_kinds_for,
    problem_report_from_shopper,
)
from tracking.stages import (
    STAGE_LABELS,
    STAGE_PROGRESS,
    UNKNOWN_STATUS_STAGE,
    event_status_label,
    stage_is_branch,
    stage_position,
)
from tracking.suggestions import (
    Suggestion,
    product_suggestions_cached,
    product_suggestions_digest,
    product_suggestions_for_order,
    product_suggestions_key,
    product_suggestions_rows,
)

logger = logging.getLogger(__name__)

# A parcel link (tracking number lookups): its own salt, so an order link never opens as a
# parcel nor the other way round; as long-lived as an order's link.
PARCEL_SALT = "tracking.parcel.v1"

# The language switch names each language in itself (a shopper who cannot read the page's
# language must still find their own).
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "de": "Deutsch"}

# What a shopper typed, echoed into the form after an error: the fields' own bounds (with room
# for spaces), never more.
MAX_TYPED_LENGTH = 254
# Product pictures loaded at once (the first parcel's first lines); the rest load lazily.
EAGER_IMAGES = 3

# The "report a problem" form's token: the shop and the order, signed and dated, so only a
# page of this order (someone holding its link) can post a report, and a page left open
# for days asks to reload rather than posting with a token harvested long ago.
PROBLEM_FORM_SALT = "tracking.problem-form.v1"
PROBLEM_FORM_MAX_AGE_SECONDS = 24 * 3600

# What a shopper may report, in their words (the choices of the form) and, once reported, how
# the page names the open case.
PROBLEM_CHOICES: dict[str, Promise] = {
    ProblemCase.Kind.NOT_RECEIVED: _("I haven't received it"),
    ProblemCase.Kind.DAMAGED: _("It arrived damaged"),
    ProblemCase.Kind.WRONG_ITEM: _("I received the wrong item"),
}
PROBLEM_REPORTED_LABELS: dict[str, Promise] = {
    ProblemCase.Kind.NOT_RECEIVED: _("Not received"),
    ProblemCase.Kind.DAMAGED: _("Arrived damaged"),
    ProblemCase.Kind.WRONG_ITEM: _("Wrong item received"),
}
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


# ---------------------------------------------------------------------------------------------
# What the templates read: plain values, computed once, so templates stay logic-free.


@dataclass
class Step:
    label: str
    state: str  # "done", "current" or "upcoming"


@dataclass
class EventRow:
    happened_at: datetime
    # Shopify's event status in the shopper's language (tracking.stages.event_status_label).
    label: str | Promise
    # The carrier's own words, as they came (often English); empty when they only repeat the
    # status.
    message: str
    place: str
    is_stale: bool


@dataclass(frozen=True)
class Estimate:
    """When a shipment should arrive, and how we know. Today: Shopify's own estimate
    (``Shipment.estimated_delivery_at``, from the carrier). A predicted estimate (from the
    shop's delivered history) comes in through ``_shipment_estimate`` with ``basis`` saying
    how it was made ("based on 240 deliveries to Ontario by Canada Post"); the templates
    show ``basis`` under the date whenever it is set."""

    date: datetime | calendar_day
    basis: str | Promise = ""
    is_predicted: bool = False
    # A predicted estimate is a range of days: its first day (``date`` is the last).
    earliest: calendar_day | None = None

    @property
    def day(self) -> calendar_day:
        return self.date.date() if isinstance(self.date, datetime) else self.date


@dataclass
class TrackingLink:
    number: str
    url: str


@dataclass
class ShipmentView:
    index: int
    stage: str
    stage_label: str
    is_branch: bool
    position: int
    steps: list[Step]
    carrier: str
    links: list[TrackingLink]
    estimate: Estimate | None
    delivered_at: datetime | None
    is_delivered: bool
    events: list[EventRow]
    items: list[dict[str, Any]] = field(default_factory=list)
    delay_notices: list[str | Promise] = field(default_factory=list)
    # Ours, from the shop's delivered history, when Shopify gives no estimate
    # (tracking.estimates), and the sentence saying how it was made.
    predicted_estimate: DeliveryEstimate | None = None
    predicted_basis: str = ""
    # "Report a problem": the shipment's own id (the form names it), what may be reported
    # now ({value, label}), and the open cases the shopper reported ({kind, label, date}).
    pk: int = 0
    problem_choices: list[dict[str, Any]] = field(default_factory=list)
    open_problems: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Views


@app_proxy_required
@require_http_methods(["GET", "POST"])
def track(request: ProxyRequest) -> HttpResponse:
    """The lookup page (GET) and a lookup (POST)."""
    shop: Shop = request.shop
    page = _Page(request, proxy_base="")
    if request.method == "GET":
        customer_id = request.logged_in_customer_id
        orders = (
            selectors.customer_order_list(shop=shop, customer_id=customer_id) if customer_id else []
        )
        return page.render("lookup", {"customer_orders": [page.order_summary(o) for o in orders]})
    if request.POST.get("lookup") == "tracking_number":
        return _lookup_by_tracking_number(request, page)
    return _lookup_by_order(request, page)


@app_proxy_required
@require_http_methods(["GET", "POST"])
def track_link(request: ProxyRequest, token: str) -> HttpResponse:
    """An order's page from its signed link (emails, SMS, the customer's order list); a POST
    is a problem reported from that page."""
    shop: Shop = request.shop
    order_id = order_id_from_link_token(token, shop=shop)
    # The order's row with the page's settings and branding (and a GET counted as a view):
    # one round trip, all a cached page needs from the database after the shop.
    if request.method == "GET" and order_id is not None:
        head = _order_page_head_counted(shop=shop, order_id=order_id)
    else:
        head = selectors.storefront_head(shop=shop, order_id=order_id)
    page = _Page(request, proxy_base="../", head=head)
    order = head.order
    if order is None:
        # Tampered, expired, another shop's, deleted: one page, one status, nothing named.
        return page.render("link_invalid", {}, status=404)
    if request.method == "POST":
        return _report_problem(request, page, order=order, token=token)
    return page.render_order(order)


def problem_form_token(order: Order) -> str:
    return signing.dumps([order.shop_id, order.pk], salt=PROBLEM_FORM_SALT, compress=False)


def _problem_form_token_valid(token: str, *, order: Order) -> bool:
    if not token or len(token) > 512:
        return False
    try:
        value = signing.loads(
            token,
            salt=PROBLEM_FORM_SALT,
            max_age=int(
                getattr(
                    settings, "TRACKING_PROBLEM_FORM_MAX_AGE_SECONDS", PROBLEM_FORM_MAX_AGE_SECONDS
                )
            ),
        )
    except signing.BadSignature:
        return False
    return value == [order.shop_id, order.pk]


def _report_problem(
    request: ProxyRequest, page: _Page, *, order: Order, token: str
) -> HttpResponse:
    """A shopper's report: form token, rate limit, the service, then 303 to the page, which
    shows the open case. Bad input: the page again with the error and what was typed, and
    nothing stored."""
    shop: Shop = request.shop
    form = ProblemReportForm(request.POST)
    typed = {
        "shipment": request.POST.get("shipment", "")[:32],
        "kind": request.POST.get("kind", "")[:32],
        "description": request.POST.get("description", "")[:4000],
    }
    if not _problem_form_token_valid(request.POST.get("form_token", ""), order=order):
        logger.info("tracking.problem.form_token_invalid", extra={"shop": shop.myshopify_domain})
        return page.render_order(
            order, problem={"error": _form_expired_message(), **typed}, status=400
        )
    # Field errors are worded when the form is validated: in the page's language.
    with translation.override(page.language(order)):
        is_valid = form.is_valid()
        error = "" if is_valid else str(next(iter(form.errors.values()))[0])
    if not is_valid:
        return page.render_order(order, problem={"error": error, **typed}, status=400)
    limited = lookup_rate_limit_hit(
        shop_id=shop.pk, client_ip=page.client_ip, order_key=f"problem:{order.pk}"
    )
    if not limited.allowed:
        return page.rate_limited(limited.retry_after)
    try:
        reported = problem_report_from_shopper(
            shop=shop,
            order=order,
            shipment_id=form.cleaned_data["shipment"],
            kind=form.cleaned_data["kind"],
            description=form.cleaned_data["description"],
        )
    except ProblemRefused:
        logger.info("tracking.problem.refused", extra={"shop": shop.myshopify_domain})
        return page.render_order(
            order,
            problem={
                "error": _("This problem can't be reported for this shipment."),
                **typed,
            },
            status=400,
        )
    logger.info(
        "tracking.problem.reported",
        extra={
            "shop": shop.myshopify_domain,
            "order_id": order.pk,
            "case_id": reported.case.pk,
            "is_new": reported.is_new,
        },
    )
    # The page itself (relative to …/track/<token>; "./" so the token's "…:" never reads as a
    # URL scheme), at the shipment's case.
    return page.redirect(f"./{token}", fragment=f"pp-problem-{reported.case.shipment_id}")


@app_proxy_required
@require_GET
def track_parcel(request: ProxyRequest, token: str) -> HttpResponse:
    """A parcel's progress from the link a tracking-number lookup redirected to."""
    shop: Shop = request.shop
    page = _Page(request, proxy_base="../../")
    shipment_id = _shipment_id_from_parcel_token(token, shop=shop)
    shipment = (
        selectors.shipment_for_parcel_page(shop=shop, shipment_id=shipment_id)
        if shipment_id
        else None
    )
    if shipment is None:
        return page.render("link_invalid", {}, status=404)
    _page_view_record(shop=shop, order_id=shipment.order_id)
    # Anyone holding a tracking number sees the parcel's progress, as on the carrier's site,
    # but nothing of the order: no name, items, address, email (AfterShip does the same "due
    # to privacy considerations"). Scan places are left out too: the last one is the
    # shopper's town.
    view = page.shipment_view(shipment, index=1, items_by_id={}, delays=[], with_places=False)
    return page.render("shipment", {"shipment": view})


def parcel_link_token(shipment: Shipment) -> str:
    return signing.dumps([shipment.shop_id, shipment.pk], salt=PARCEL_SALT, compress=False)


def _shipment_id_from_parcel_token(token: str, *, shop: Shop) -> int | None:
    days = int(getattr(settings, "TRACKING_LINK_MAX_AGE_DAYS", DEFAULT_LINK_MAX_AGE_DAYS))
    try:
        value = signing.loads(token, salt=PARCEL_SALT, max_age=days * 86400)
    except signing.BadSignature:
        logger.info("tracking.parcel_link.invalid", extra={"shop": shop.myshopify_domain})
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, int) for part in value)
        or value[0] != shop.pk
    ):
        logger.warning("tracking.parcel_link.other", extra={"shop": shop.myshopify_domain})
        return None
    return int(value[1])


def _lookup_by_order(request: ProxyRequest, page: _Page) -> HttpResponse:
    shop: Shop = request.shop
    form = OrderLookupForm(request.POST)
    # What the shopper typed comes back in the form on every error (bounded, and escaped
    # like any text): retyping an email on a phone because of one wrong digit is the
    # frustration the page is meant to spare.
    typed = {
        "order_value": request.POST.get("order", "")[:MAX_TYPED_LENGTH],
        "contact_value": request.POST.get("contact", "")[:MAX_TYPED_LENGTH],
    }
    if not form_token_valid(request.POST.get("form_token", ""), shop=shop):
        logger.info("tracking.lookup.form_token_invalid", extra={"shop": shop.myshopify_domain})
        return page.render("lookup", {"error": _form_expired_message(), **typed})
    if not form.is_valid():
        return page.render("lookup", {"order_form": form, **typed})
    number = form.cleaned_data["order"]
    # The same key for every spelling of the number, and for the returns portal: one guessed
    # number costs the same wherever and however it is typed.
    proof = form.cleaned_data["contact"]
    limited = lookup_rate_limit_hit(
        shop_id=shop.pk,
        client_ip=page.client_ip,
        order_key=number.key,
        weak_proof=proof.is_weak,
    )
    if not limited.allowed:
        return page.rate_limited(limited.retry_after)
    found = storefront_order_lookup(shop=shop, number=number, proof=proof)
    order = selectors.order_page_head(shop=shop, order_id=found.pk) if found else None
    if order is None:
        logger.info("tracking.lookup.no_match", extra={"shop": shop.myshopify_domain})
        # The same page whether the number or the contact was wrong (only what the shopper
        # typed differs, which they know already): nothing tells the two apart.
        return page.render("lookup", {"error": _no_match_message(), "no_match": True, **typed})
    logger.info(
        "tracking.lookup.found", extra={"shop": shop.myshopify_domain, "order_id": order.pk}
    )
    return page.redirect(f"track/{tracking_link_token(order)}")


def _lookup_by_tracking_number(request: ProxyRequest, page: _Page) -> HttpResponse:
    shop: Shop = request.shop
    form = TrackingNumberForm(request.POST)
    if not form_token_valid(request.POST.get("form_token", ""), shop=shop):
        return page.render("lookup", {"error": _form_expired_message()})
    if not form.is_valid():
        return page.render(
            "lookup",
            {
                "tracking_form": form,
                "tracking_value": request.POST.get("tracking_number", ""),
            },
        )
    number = form.cleaned_data["tracking_number"]
    limited = lookup_rate_limit_hit(
        shop_id=shop.pk, client_ip=page.client_ip, order_key="tracking:" + number
    )
    if not limited.allowed:
        return page.rate_limited(limited.retry_after)
    shipment = selectors.shipment_by_tracking_number(shop=shop, tracking_number=number)
    if shipment is None:
        return page.render(
            "lookup",
            {
                "tracking_error": _("We couldn't find a shipment with this tracking number."),
                "tracking_value": request.POST.get("tracking_number", ""),
            },
        )
    # Found: the parcel's own page, on a link of its own (reloads spend nothing).
    return page.redirect(f"track/parcel/{parcel_link_token(shipment)}")


# ---------------------------------------------------------------------------------------------
# Rendering


class _Page:
    """One answer of the tracking page: language, timezone, branding, Liquid-safe body."""

    def __init__(
        self,
        request: ProxyRequest,
        *,
        proxy_base: str,
        head: selectors.StorefrontHead | None = None,
    ) -> None:
        self.request = request
        self.shop: Shop = request.shop
        # Links are relative to the storefront URL the shopper sees (…/<subpath>/track or
        # …/<subpath>/track/<token>), so they follow a merchant who renames the prefix or
        # subpath, and work under the devshop's /store/<shop>/ base too.
        self.proxy_base = proxy_base
        head = head or selectors.storefront_head(shop=self.shop)
        self.settings = head.tracking_settings
        self.branding = head.branding
        self.client_ip = storefront_client_ip(request)
        self.explicit_locale = supported_language(request.GET.get("locale", ""))
        # "You may also like" as kept in Redis, read once per order page (render_order).
        self.suggestion_rows: list[dict[str, Any]] = []
        try:
            self.zone = zoneinfo.ZoneInfo(self.shop.timezone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.zone = zoneinfo.ZoneInfo("UTC")

    # -- language -----------------------------------------------------------------------------

    def language(self, order: Order | None = None) -> str:
        """The page's language: see ``shopapp.storefront.storefront_language``."""
        return storefront_language(self.request, self.shop, order)

    # -- pieces -------------------------------------------------------------------------------

    def order_link(self, order: Order) -> str:
        return f"{self.proxy_base}track/{tracking_link_token(order)}" + self._locale_query()

    def _locale_query(self, prefix: str = "?") -> str:
        return (
            f"{prefix}{urlencode({'locale': self.explicit_locale})}" if self.explicit_locale else ""
        )

    def order_summary(self, order: Order) -> dict[str, Any]:
        shipments = list(order.shipments.all())
        if shipments:
            furthest = max(shipments, key=lambda s: stage_position(s.stage))
            status = _stage_label(furthest.stage)
        else:
            status = _stage_label(Stage.ORDERED)
        return {
            "name": order.name,
            "created_at": order.shopify_created_at or order.created_at,
            "status": status,
            "url": self.order_link(order),
        }

    def shipment_view(
        self,
        shipment: Shipment,
        *,
        index: int,
        items_by_id: dict[int, Any],
        delays: list[Delay],
        with_places: bool = True,
        estimate: DeliveryEstimate | None = None,
    ) -> ShipmentView:
        position = stage_position(shipment.stage)
        steps = [
            Step(
                label=_stage_label(stage),
                state="done" if i < position else "current" if i == position else "upcoming",
            )
            for i, stage in enumerate(STAGE_PROGRESS)
        ]
        numbers = [str(n) for n in (shipment.tracking_numbers or [])]
        urls = [str(u) for u in (shipment.tracking_urls or [])]
        links = [
            TrackingLink(number=n, url=safe_url(urls[i]) if i < len(urls) else "")
            for i, n in enumerate(numbers)
        ]
        events = []
        for event in shipment.events.all():
            label = event_status_label(event.status)
            message = (event.message or "").strip()
            if message.casefold() in {str(label).casefold(), event.status.casefold()}:
                message = ""
            events.append(
                EventRow(
                    happened_at=event.happened_at,
                    label=label,
                    message=message,
                    place=_place(event) if with_places else "",
                    is_stale=event.is_stale,
                )
            )
        items: list[dict[str, Any]] = []
        for row in shipment.line_items.all() if items_by_id else []:
            line = items_by_id.get(row.line_item_shopify_id)
            if line is not None:
                # The first parcel's first pictures are in view on a desktop: loaded at once;
                # the rest lazily (below the fold on a phone).
                eager = index == 1 and len(items) < EAGER_IMAGES
                items.append(_item(line, row.quantity, eager=eager))
        notices: list[str | Promise] = []
        for delay in delays:
            if delay.kind == Delay.Kind.PAST_ESTIMATE:
                notices.append(_("This shipment is past its estimated delivery date."))
            else:
                notices.append(_("This shipment is taking longer than expected."))
        return ShipmentView(
            index=index,
            stage=str(shipment.stage),
            stage_label=_stage_label(shipment.stage),
            is_branch=stage_is_branch(shipment.stage),
            position=position,
            steps=steps,
            carrier=shipment.tracking_company,
            links=links,
            estimate=_shipment_estimate(shipment, predicted=estimate),
            delivered_at=shipment.delivered_at if shipment.stage == Stage.DELIVERED else None,
            is_delivered=shipment.stage == Stage.DELIVERED,
            events=events,
            items=items,
            delay_notices=list(dict.fromkeys(notices)),
            predicted_estimate=estimate,
            predicted_basis=estimate.basis() if estimate else "",
            pk=shipment.pk,
        )

    # -- answers ------------------------------------------------------------------------------

    def render_order(
        self, order: Order, *, problem: dict[str, Any] | None = None, status: int = 200
    ) -> HttpResponse:
        """The order's page: from the cache when this version of it was rendered before
        (tracking.page_cache), else loaded (a fixed set of queries), rendered and cached.
        ``problem``: a refused report's error and what was typed (never cached). The view
        was counted with the order's row (``_order_page_head_counted``)."""
        language = self.language(order)
        # "You may also like": the shop's kept list (Redis, no Admin API call), read with the
        # cached page in one round trip when there is a cache.
        suggestions_key = (
            product_suggestions_key(shop=self.shop)
            if self.settings.show_product_suggestions
            else None
        )
        key, digest = None, ""
        if page_cache_enabled() and problem is None:
            key = order_page_key(
                shop=self.shop,
                order=order,
                tracking_settings=self.settings,
                branding=self.branding,
                language=language,
                explicit_locale=self.explicit_locale,
                proxy_base=self.proxy_base,
            )
            cached = page_cache_get(key, along=suggestions_key)
            digest = product_suggestions_digest(cached.along)
            if cached.content is not None and cached.stamp == digest:
                return self._response(cached.content, language=language, status=200)
            self.suggestion_rows = product_suggestions_rows(cached.along)
        elif suggestions_key is not None:
            self.suggestion_rows, digest = product_suggestions_cached(shop=self.shop)
        selectors.order_page_load(shop=self.shop, order=order)
        with translation.override(language):
            context = self._order_context(order)
            if problem is not None:
                context["problem"] = problem
            content = self._content("order", context)
        if key is not None:
            page_cache_set(key, content, stamp=digest)
        return self._response(content, language=language, status=status)

    def _order_context(self, order: Order) -> dict[str, Any]:
        line_items = list(order.line_items.all())
        items_by_id = {line.shopify_id: line for line in line_items}
        delays_by_shipment: dict[int | None, list[Delay]] = defaultdict(list)
        for delay in order.delays.all():
            delays_by_shipment[delay.shipment_id].append(delay)
        # One query for every parcel's candidate groups, and only when one needs a prediction.
        stats = delivery_stats_for(
            shop=self.shop, shipments=[s for s in order.shipments.all() if needs_prediction(s)]
        )
        shipments = [
            self.shipment_view(
                shipment,
                index=i,
                items_by_id=items_by_id,
                delays=delays_by_shipment.get(shipment.pk, []),
                estimate=delivery_estimate_choose(shop=self.shop, shipment=shipment, stats=stats),
            )
            for i, shipment in enumerate(order.shipments.all(), start=1)
        ]
        self._problems_attach(order, shipments, delays_by_shipment)
        # Each item is listed once: under the shipment carrying it, or (what has not left
        # yet) under "not shipped yet" with the units still to come.
        shipped: dict[int, int] = defaultdict(int)
        for shipment in order.shipments.all():
            for row in shipment.line_items.all():
                shipped[row.line_item_shopify_id] += row.quantity
        unshipped_items = [
            _item(line, line.quantity - shipped[line.shopify_id])
            for line in line_items
            if line.requires_shipping and shipped[line.shopify_id] < line.quantity
        ]
        has_unshipped = bool(unshipped_items)
        all_items = [
            _item(line, line.quantity, eager=i < EAGER_IMAGES) for i, line in enumerate(line_items)
        ]
        order_notice: str | Promise = ""
        if delays_by_shipment.get(None):
            order_notice = _("Your order is taking longer than expected to ship. We're on it.")
        context = {
            "order": {
                "name": order.name,
                "created_at": order.shopify_created_at or order.created_at,
                "is_cancelled": order.cancelled_at is not None,
            },
            "headline": _headline(
                shipments, has_unshipped=has_unshipped, is_cancelled=order.cancelled_at is not None
            ),
            "shipments": shipments,
            "has_unshipped": bool(shipments) and has_unshipped,
            # Before anything ships, every item is "in your order"; after, only the rest.
            "unshipped_items": unshipped_items if shipments else [],
            "order_items": [] if shipments else all_items,
            "contact": self._contact(order),
            "order_notice": order_notice,
            "return_url": self._return_url(order, shipments),
            "suggestions": self._suggestions(order, line_items),
            "problem_form_token": problem_form_token(order),
            "problem_action": self.order_link(order),
            "problem": {},
        }
        return context

    def _suggestions(self, order: Order, line_items: list[Any]) -> list[dict[str, Any]]:
        """Up to four of the shop's products the order does not hold, priced in the page's
        language; none for a cancelled order."""
        if order.cancelled_at is not None:
            return []
        held = {int(line.product_id) for line in line_items if line.product_id}
        chosen = product_suggestions_for_order(self.suggestion_rows, held_product_ids=held)
        return [_suggestion_card(s, translation.get_language()) for s in chosen]

    def _problems_attach(
        self,
        order: Order,
        shipments: list[ShipmentView],
        delays_by_shipment: dict[int | None, list[Delay]],
    ) -> None:
        """Each parcel's "report a problem" choices and its open cases (tracking.problems)."""
        if order.cancelled_at is not None:
            return
        cases: dict[int | None, list[ProblemCase]] = defaultdict(list)
        for case in order.problem_cases.all():
            cases[case.shipment_id].append(case)
        today = timezone.localdate()
        by_pk = {s.pk: s for s in order.shipments.all()}
        for view in shipments:
            shipment = by_pk[view.pk]
            open_kinds = {case.kind for case in cases.get(view.pk, [])}
            view.open_problems = [
                {
                    "kind": case.kind,
                    "label": PROBLEM_REPORTED_LABELS.get(case.kind, case.kind),
                    "date": case.created_at,
                    # Staff may open a case on the shopper's behalf: no confirmation went out.
                    "by_shopper": case.reported_by == ProblemCase.Reporter.SHOPPER,
                }
                for case in cases.get(view.pk, [])
            ]
            allowed = problem_kinds_for(
                shipment,
                has_open_delay=bool(delays_by_shipment.get(view.pk)),
                today=today,
            )
            view.problem_choices = [
                {"value": kind, "label": PROBLEM_CHOICES[kind]}
                for kind in allowed
                if kind not in open_kinds
            ]

    def _contact(self, order: Order) -> dict[str, str]:
        """The shop's support contact (shopapp.branding), the email prefilled with the order."""
        email, phone = self.branding.support_email, self.branding.support_phone
        if not (email or phone):
            return {}
        subject = str(_("Question about order %(name)s") % {"name": order.name})
        return {
            "email": email,
            "mailto": f"mailto:{email}?subject={quote(subject)}" if email else "",
            "phone": phone,
            "tel": "tel:" + re.sub(r"[^0-9+]", "", phone) if phone else "",
        }

    def render(self, view: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
        with translation.override(self.language()):
            return self._respond(view, context, status=status)

    def redirect(self, location: str, *, fragment: str = "") -> HttpResponse:
        """303 See Other to a page under the proxy, relative to the lookup's URL (…/track),
        keeping an explicit language choice."""
        target = location + self._locale_query() + (f"#{fragment}" if fragment else "")
        response = HttpResponseRedirect(target, status=303)
        response["Cache-Control"] = "private, no-store"
        return response

    def rate_limited(self, retry_after: int) -> HttpResponse:
        minutes = max(1, (retry_after + 59) // 60)
        with translation.override(self.language()):
            response = self._respond("rate_limited", {"minutes": minutes}, status=429)
        response["Retry-After"] = str(retry_after)
        return response

    def _return_url(self, order: Order, shipments: list[ShipmentView]) -> str:
        # Returns start once something arrived: a delivered shipment, or Shopify says the order
        # is fulfilled and no carrier data says otherwise. The portal re-checks its own policy.
        if not self.branding.show_return_link or order.cancelled_at is not None:
            return ""
        delivered = any(s.stage == Stage.DELIVERED for s in shipments)
        fulfilled = order.fulfillment_status == "fulfilled" and not any(
            s.stage == Stage.PROBLEM for s in shipments
        )
        if not (delivered or fulfilled):
            return ""
        query = {"order": order.name.lstrip("#"), "token": tracking_link_token(order)}
        if self.explicit_locale:
            query["locale"] = self.explicit_locale
        return f"{self.proxy_base}returns?{urlencode(query)}"

    def _respond(self, view: str, context: dict[str, Any], *, status: int) -> HttpResponse:
        return self._response(
            self._content(view, context), language=translation.get_language(), status=status
        )

    def _response(self, content: str | bytes, *, language: str, status: int) -> HttpResponse:
        return storefront_response(
            content,
            is_standalone=self.branding.is_standalone_page,
            language=language,
            status=status,
        )

    def _content(self, view: str, context: dict[str, Any]) -> str:
        """The page's body (Liquid-safe), or the whole document for a standalone page."""
        language = translation.get_language()
        action = f"{self.proxy_base}track" + self._locale_query()
        full_context = {
            "view": view,
            "lang": language,
            "shop_name": self.shop.name or self.shop.myshopify_domain,
            "branding": self.branding,
            "form_action": action,
            "form_token": form_token(self.shop),
            "lookup_url": action,
            # Same page, another language: a query alone keeps the path (…/track or
            # …/track/<token>), and the choice then rides on every link of the page.
            "languages": [
                {
                    "code": code,
                    "name": LANGUAGE_NAMES[code],
                    "url": "?" + urlencode({"locale": code}),
                    "is_current": code == language,
                }
                for code in STOREFRONT_LANGUAGES
            ],
            **context,
        }
        with timezone.override(self.zone):
            body = render_to_string("tracking/page.html", full_context)
        css, script = _page_css(self.branding), _page_script()
        # Blank lines from template tags are bytes through the proxy for nothing.
        safe_body = liquid_safe(_BLANK_LINES.sub("\n", body))
        if self.branding.is_standalone_page:
            content: str = render_to_string(
                "tracking/standalone.html",
                {
                    "lang": language,
                    # Not Liquid (Shopify returns a non-Liquid answer as is): HTML escaping only.
                    "title": _page_title(view, full_context),
                    "css": mark_safe(css),  # noqa: S308 - our static CSS, colour validated
                    "body": mark_safe(safe_body),  # noqa: S308 - rendered with autoescape above
                    "script": mark_safe(script),  # noqa: S308 - our static script
                },
            )
        else:
            # Inside the theme, which has its own <main>: our root is a region, not a page.
            content = f"<style>{css}</style>\n{safe_body}\n<script>{script}</script>"
        return content


# ---------------------------------------------------------------------------------------------
# Helpers


# A page view counted (when the order is there to be shown) in the statement that reads it.
_COUNT_VIEW_SQL = (
    "UPDATE tracking_trackingpageview SET views = views + 1, last_viewed_at = %s "
    "WHERE shop_id = %s AND order_id = %s AND EXISTS (SELECT 1 FROM shopapp_order o "
    "WHERE o.id = %s AND o.shop_id = %s AND o.deleted_at IS NULL AND o.redacted_at IS NULL)"
)


def _order_page_head_counted(*, shop: Shop, order_id: int) -> selectors.StorefrontHead:
    """``selectors.storefront_head`` for an order's page, with the view counted as
    ``_page_view_record`` counts it: on PostgreSQL, the UPDATE (asynchronous commit) and the
    SELECT go as one simple query, one round trip instead of two on every page view."""
    if not _asynchronous_commit_available():
        head = selectors.storefront_head(shop=shop, order_id=order_id)
        if head.order is not None:
            _page_view_record(shop=shop, order_id=order_id)
        return head
    now = timezone.now()
    select, select_params = selectors.storefront_head_query(shop=shop, order_id=order_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SET LOCAL synchronous_commit TO OFF; {_COUNT_VIEW_SQL}; {select}",
            [now, shop.pk, order_id, order_id, shop.pk, *select_params],
        )
        cursor.nextset()
        counted = cursor.rowcount
        cursor.nextset()
        row = cursor.fetchone()
    head = selectors.storefront_head_from_row(shop=shop, row=row, with_order=True)
    if head.order is not None and not counted:
        _page_view_first(shop=shop, order_id=order_id, now=now)
    return head


def _asynchronous_commit_available() -> bool:
    # (Two statements in one execute need psycopg's client-side binding, Django's default.)
    return connection.vendor == "postgresql" and not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("server_side_binding")


def _page_view_record(*, shop: Shop, order_id: int) -> None:
    """Count one view of an order's tracking page: one UPDATE ... SET views = views + 1,
    the row created on the first view (the merchant's "where is my order" signal)."""
    now = timezone.now()
    # On every page view, so plain SQL (no queryset to compile) and, on PostgreSQL, an
    # asynchronous commit: the page does not wait for the WAL to reach the disk, and a crash
    # may lose the last fraction of a second of view counts (the webhook intake's and every
    # other commit stay synchronous). Both statements go as one simple query, which
    # PostgreSQL runs as one implicit transaction: SET LOCAL holds for the UPDATE alone.
    update = (
        "UPDATE tracking_trackingpageview SET views = views + 1, last_viewed_at = %s "
        "WHERE shop_id = %s AND order_id = %s"
    )
    with connection.cursor() as cursor:
        if _asynchronous_commit_available():
            cursor.execute(
                f"SET LOCAL synchronous_commit TO OFF; {update}", [now, shop.pk, order_id]
            )
            cursor.nextset()
        else:
            cursor.execute(update, [now, shop.pk, order_id])
        counted = cursor.rowcount
    if not counted:
        _page_view_first(shop=shop, order_id=order_id, now=now)


def _page_view_first(*, shop: Shop, order_id: int, now: datetime) -> None:
    """The first view of an order's page: its counter's row, created."""
    try:
        with transaction.atomic():
            TrackingPageView.objects.create(
                shop=shop, order_id=order_id, views=1, last_viewed_at=now
            )
    except IntegrityError:
        # Two first views at once: the other request created the row; count on it.
        TrackingPageView.objects.filter(shop=shop, order_id=order_id).update(
            views=F("views") + 1, last_viewed_at=now
        )


# The page's CSS is a function of its branding alone (colours, font: no text, no date), and
# its script of nothing: rendered once per look and process, not on every page. Keyed by the
# whole frozen Branding, so a changed look is a new entry, never a stale one.
PAGE_CSS_CACHED_LOOKS = 256


@functools.lru_cache(maxsize=PAGE_CSS_CACHED_LOOKS)
def _page_css(branding: Branding) -> str:
    return render_to_string("tracking/page.css", {"branding": branding})


@functools.cache
def _page_script() -> str:
    return render_to_string("tracking/page.js")


def _suggestion_card(suggestion: Suggestion, language: str) -> dict[str, Any]:
    try:
        price = format_currency(suggestion.price, suggestion.currency, locale=language)
    except (ValueError, UnknownLocaleError):
        price = f"{suggestion.price} {suggestion.currency}"
    return {
        "title": suggestion.title,
        "url": suggestion.url,
        "image_url": suggestion.image_url,
        "price": price,
    }


def _shipment_estimate(
    shipment: Shipment, *, predicted: DeliveryEstimate | None = None
) -> Estimate | None:
    """The one place a shipment's estimate is chosen. Shopify's (the carrier's) when it gives
    one; else the one predicted from the shop's delivered history (tracking.estimates), a
    range of days with the sentence saying how it was made."""
    if shipment.estimated_delivery_at is not None:
        return Estimate(date=shipment.estimated_delivery_at)
    if predicted is not None:
        return Estimate(
            date=predicted.latest,
            earliest=None if predicted.is_single_day else predicted.earliest,
            basis=predicted.basis(),
            is_predicted=True,
        )
    return None


def _headline(
    shipments: list[ShipmentView], *, has_unshipped: bool, is_cancelled: bool
) -> dict[str, Any]:
    """The order's headline: when it all arrived, or when it should, else where it stands.

    "Delivered" only when every shipment is and nothing is left to ship. An estimate only when
    every shipment still on its way has one (the latest is when the order is complete);
    otherwise the least advanced shipment's stage, and no date is promised."""
    if is_cancelled or not shipments:
        return {}
    moving = [s for s in shipments if not s.is_delivered]
    if not moving and not has_unshipped:
        dates = [s.delivered_at for s in shipments if s.delivered_at]
        return {"kind": "delivered", "date": max(dates) if dates else None}
    estimates = [s.estimate for s in moving if s.estimate is not None]
    if moving and len(estimates) == len(moving):
        latest = max(estimates, key=lambda e: e.day)
        return {"kind": "estimate", "estimate": latest}
    if not moving:
        return {"kind": "partial"}
    behind = min(moving, key=lambda s: s.position)
    return {"kind": "stage", "label": behind.stage_label}


def _stage_label(stage: str) -> Any:
    """The stage's translatable label, resolved when the page renders in its language."""
    try:
        return STAGE_LABELS[Stage(stage)]
    except (ValueError, KeyError):
        return STAGE_LABELS[UNKNOWN_STATUS_STAGE]


def _place(event: Any) -> str:
    return ", ".join(part for part in (event.city, event.province, event.country) if part)


def _item(line: Any, quantity: int, *, eager: bool = False) -> dict[str, Any]:
    """One line as the page lists it: title, units, Shopify's picture (tracking/_item.html
    shows a neutral box of the same size when there is none)."""
    return {
        "title": _item_title(line),
        "quantity": quantity,
        "image_url": safe_url(line.image_url),
        "eager": eager,
    }


def _item_title(line: Any) -> str:
    if line.variant_title and line.variant_title != "Default Title":
        return f"{line.title} – {line.variant_title}"
    return line.title


def _no_match_message() -> str | Promise:
    return _(
        "We couldn't find an order with these details. Check the order number and the email "
        "address or phone number used at checkout."
    )


def _form_expired_message() -> str | Promise:
    return _("This form has expired. Please try again.")


def _page_title(view: str, context: dict[str, Any]) -> str | Promise:
    if view == "order":
        return _("Order %(name)s") % {"name": context["order"]["name"]}
    return _("Track your order")

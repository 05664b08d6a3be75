"""App proxy requests: Shopify forwards https://<shop>/apps/<subpath>/… to /proxy/… signed.

    @app_proxy_required
    def track(request): request.shop, request.logged_in_customer_id

The guard, in order (each rejection logs its own reason and answers a generic 403):
    signature   sorted "k=v1,v2" strings concatenated, HMAC-SHA256 hex with the client secret
                (shopify.dev, app proxies: "Calculate a digital signature"), constant-time
    timestamp   within ±SHOPIFY_APP_PROXY_TIMESTAMP_TOLERANCE_SECONDS (90 s, like Shopify's
                Node library), so a captured URL cannot be replayed later
    re-split    Shopify joins the sorted ``k=v`` strings with no separator, so the signed text of
                ``a=1logged_in_customer_id=42`` + ``logged_in_customer_id=`` is also the text of
                ``a=1`` + ``logged_in_customer_id=42logged_in_customer_id=``: a second query with
                the same signature. No honest query puts a reserved ``name=`` inside a value (or
                a reserved name inside another key), so any such query is refused, and
                ``logged_in_customer_id`` must be empty or digits
    shop        an installed (active) Shop for the signed ``shop`` parameter

A valid signature only says Shopify forwarded the request: views must still check that
``logged_in_customer_id`` owns what it asks for (Shopify's warning), and every query is scoped by
``request.shop``. Shopify strips cookies both ways, so Django's CSRF cookie cannot work here:
the decorator exempts the view from CSRF, and forms that change state must carry their own
token (e.g. an HMAC of customer and order) and check it.
"""

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Concatenate, ParamSpec, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from shopapp.auth.services import ShopTokenUnavailable
from shopapp.http import ProxyRequest
from shopapp.models import Shop
from shopapp.rawsql import row_fetch_one

logger = logging.getLogger(__name__)

P = ParamSpec("P")

# Shopify's Node library (@shopify/shopify-api ≥ 12) rejects a timestamp more than 90 s off.
DEFAULT_TIMESTAMP_TOLERANCE_SECONDS = 90
# Parameters Shopify sets itself: a second copy means someone other than Shopify added one
# (the Node library 13.x rejects repeats of these as well).
_SINGLE_VALUED = ("shop", "signature", "timestamp", "logged_in_customer_id", "path_prefix")
_RESERVED_ASSIGNMENTS = tuple(f"{name}=" for name in _SINGLE_VALUED)


def _grouped(query: QueryDict | Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Key → values in the order received, from a QueryDict or a list of pairs."""
    if isinstance(query, QueryDict):
        return {key: list(values) for key, values in query.lists()}
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    return grouped


def app_proxy_signature(query: QueryDict | Iterable[tuple[str, str]], *, secret: str) -> str:
    """The signature Shopify computes for an app proxy query (``signature`` itself excluded)."""
    grouped = _grouped(query)
    grouped.pop("signature", None)
    message = "".join(sorted(f"{key}={','.join(values)}" for key, values in grouped.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def app_proxy_signature_valid(query: QueryDict | Iterable[tuple[str, str]], *, secret: str) -> bool:
    """True if the query carries exactly one ``signature`` and it matches, compared in
    constant time."""
    grouped = _grouped(query)
    signatures = grouped.get("signature", [])
    if len(signatures) != 1 or not signatures[0]:
        return False
    expected = app_proxy_signature(_pairs(grouped), secret=secret)
    return hmac.compare_digest(expected.encode(), signatures[0].encode())


def _pairs(grouped: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(key, value) for key, values in grouped.items() for value in values]


def _tolerance_seconds() -> int:
    return int(
        getattr(
            settings,
            "SHOPIFY_APP_PROXY_TIMESTAMP_TOLERANCE_SECONDS",
            DEFAULT_TIMESTAMP_TOLERANCE_SECONDS,
        )
    )


def _resplit(grouped: dict[str, list[str]]) -> bool:
    """True if the query could be another query's signed text split differently: a value holding
    a reserved ``name=``, or a key that is not reserved but holds a reserved name."""
    for key, values in grouped.items():
        if key not in _SINGLE_VALUED and any(name in key for name in _SINGLE_VALUED):
            return True
        if any(marker in value for value in values for marker in _RESERVED_ASSIGNMENTS):
            return True
    return False


def app_proxy_rejection(query: QueryDict, *, secret: str, now: float | None = None) -> str:
    """Why a proxied request must be refused ("" when it may proceed), before the shop lookup."""
    grouped = _grouped(query)
    if any(len(grouped.get(key, [])) > 1 for key in _SINGLE_VALUED):
        return "repeated_parameter"
    if _resplit(grouped):
        return "reserved_name_in_value"
    customer = (grouped.get("logged_in_customer_id") or [""])[0]
    if customer and not (customer.isascii() and customer.isdigit()):
        return "malformed_customer"
    if not grouped.get("signature"):
        return "missing_signature"
    if not app_proxy_signature_valid(query, secret=secret):
        return "invalid_signature"
    raw_timestamp = (grouped.get("timestamp") or [""])[0]
    if not raw_timestamp.isdigit():
        return "missing_timestamp"
    current = now if now is not None else time.time()
    if abs(current - int(raw_timestamp)) > _tolerance_seconds():
        return "stale_timestamp"
    if not (grouped.get("shop") or [""])[0]:
        return "missing_shop"
    return ""


# Seconds a shopper's browser is told to wait when the store cannot be read for now.
TOKEN_UNAVAILABLE_RETRY_AFTER = 300


def _unavailable() -> HttpResponse:
    # The shop is known and the request is Shopify's, but the app holds no usable token (an
    # uninstall not yet delivered, an expired refresh token): a page that needed the Admin API
    # cannot be built until the merchant opens the app again. Nothing was stored.
    response = HttpResponse(
        _("This store's order pages are not available right now. Please try again later."),
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(TOKEN_UNAVAILABLE_RETRY_AFTER)
    return response


def _forbidden() -> HttpResponse:
    # Generic on purpose: which check failed is in the log, not in the answer.
    return HttpResponse("Forbidden", status=403, content_type="text/plain; charset=utf-8")


def app_proxy_required(
    view: Callable[Concatenate[ProxyRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Let a view answer only signed, fresh app proxy requests for an installed shop.

    Sets ``request.shop`` (the active ``Shop``) and ``request.logged_in_customer_id`` (an int,
    or None when no customer is logged in).
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        reason = app_proxy_rejection(request.GET, secret=settings.SHOPIFY_API_SECRET)
        if reason:
            logger.warning("shopapp.proxy.rejected", extra={"reason": reason, "path": request.path})
            return _forbidden()
        domain = request.GET["shop"]
        # Plain SQL (shopapp.rawsql): every storefront request makes this lookup.
        shop = row_fetch_one(Shop, "myshopify_domain = %s AND is_active", [domain])
        if shop is None:
            logger.warning(
                "shopapp.proxy.rejected",
                extra={"reason": "unknown_shop", "shop": domain, "path": request.path},
            )
            return _forbidden()
        raw_customer = request.GET.get("logged_in_customer_id", "")
        proxy_request = cast(ProxyRequest, request)
        proxy_request.shop = shop
        proxy_request.logged_in_customer_id = int(raw_customer) if raw_customer else None
        try:
            return view(proxy_request, *args, **kwargs)
        except ShopTokenUnavailable as exc:
            logger.warning(
                "shopapp.proxy.token_unavailable",
                extra={"shop": domain, "reason": exc.reason, "path": request.path},
            )
            return _unavailable()

    # Shopify strips cookies through the proxy, so Django's CSRF cookie never arrives; the
    # signature and timestamp stand in for it (see the module docstring for forms).
    return csrf_exempt(guarded)

"""Session tokens (App Bridge JWT) for everything under /app/.

    @session_token_required
    def view(request): request.shop  # the Shop the token was signed for, and nothing else

Where the token comes from decides what a failure looks like (Shopify's embedded-app rules):

    no Authorization header (document load)  token in ``id_token``;  bad → 302 to the bounce
                                             page, where App Bridge reloads with a fresh token
    ``Authorization: Bearer …`` (fetch/XHR)  bad → 401 + X-Shopify-Retry-Invalid-Session-Request

A valid token for a shop without a usable offline token (first load after a managed install,
a reinstall, ``needs_reauth``, a legacy token) runs the token exchange, then the view.

Unsafe methods (POST, …) must carry the token in the Authorization header: a token in the
URL can leak through logs and Referer, and the header is what makes CSRF cookies moot here
(third-party cookies are blocked in the admin iframe anyway), hence ``csrf_exempt``.

Every response carries ``Content-Security-Policy: frame-ancestors https://<shop>
https://admin.shopify.com;`` and no X-Frame-Options, so only that shop's admin frames it.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from shopify import session_token

from shopapp.auth.domains import shop_domain_clean
from shopapp.auth.selectors import shop_token_is_usable
from shopapp.auth.services import shop_after_install, shop_install_from_session_token
from shopapp.auth.shopify_oauth import TokenRequestRejected, TokenRequestUnavailable
from shopapp.http import ShopRequest
from shopapp.models import Shop

logger = logging.getLogger(__name__)

P = ParamSpec("P")
HttpResponseBaseT = TypeVar("HttpResponseBaseT", bound=HttpResponseBase)

RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class InvalidSessionToken(Exception):
    """The session token is missing, malformed, forged, expired or for another app."""


def session_token_decode(raw: str) -> dict[str, Any]:
    """Verify an App Bridge session token and return its claims.

    ShopifyAPI checks HS256 with the app secret, ``aud`` = API key, ``exp``/``nbf`` with 10 s
    leeway, and that ``iss`` and ``dest`` name the same valid shop. It does not require
    ``exp`` or ``nbf`` to be present, so a token without them is refused here.
    """
    if not raw:
        raise InvalidSessionToken("no session token")
    try:
        # decode_from_header insists on the "Bearer " prefix; TokenAuthenticationError (no
        # prefix) is a SessionTokenError subclass in ShopifyAPI 12.x.
        claims = session_token.decode_from_header(
            "Bearer " + raw, settings.SHOPIFY_API_KEY, settings.SHOPIFY_API_SECRET
        )
    except session_token.SessionTokenError as exc:
        raise InvalidSessionToken(type(exc).__name__) from None
    except (TypeError, ValueError, AttributeError):
        # Claims of the wrong type (e.g. a non-string iss) break the library's URL handling.
        raise InvalidSessionToken("malformed claims") from None
    if "exp" not in claims or "nbf" not in claims:
        raise InvalidSessionToken("exp and nbf are required")
    if shop_domain_clean(urlsplit(str(claims["dest"])).hostname) is None:
        raise InvalidSessionToken("dest is not a shop")
    return claims


def session_token_shop_domain(claims: dict[str, Any]) -> str:
    domain = shop_domain_clean(urlsplit(str(claims["dest"])).hostname)
    if domain is None:
        raise InvalidSessionToken("dest is not a shop")
    return domain


def embedded_headers_set(
    response: HttpResponseBaseT, *, shop_domain: str | None
) -> HttpResponseBaseT:
    """Let only the shop's admin frame the response (Shopify requires frame-ancestors).

    Locally, ``SHOPIFY_EXTRA_FRAME_ANCESTORS`` adds the devshop's admin frame origin (always
    empty in production)."""
    ancestors = [
        f"https://{shop_domain}" if shop_domain else "https://*.myshopify.com",
        "https://admin.shopify.com",
        *settings.SHOPIFY_EXTRA_FRAME_ANCESTORS,
    ]
    response["Content-Security-Policy"] = f"frame-ancestors {' '.join(ancestors)};"
    if "X-Frame-Options" in response:
        del response["X-Frame-Options"]
    return response


def _bounce_redirect(request: HttpRequest) -> HttpResponse:
    """To the bounce page, which reloads this URL (minus the stale id_token) with a new one."""
    query = request.GET.copy()
    query.pop("id_token", None)
    reload_url = request.path + (f"?{query.urlencode()}" if query else "")
    params = {"shopify-reload": reload_url}
    for key in ("shop", "host", "embedded"):
        if key in request.GET:
            params[key] = request.GET[key]
    response = HttpResponseRedirect(f"{reverse('auth_session_token')}?{urlencode(params)}")
    return embedded_headers_set(response, shop_domain=shop_domain_clean(request.GET.get("shop")))


def _retry_response(shop_domain: str | None = None) -> HttpResponse:
    response = HttpResponse("Unauthorized", status=401, content_type="text/plain")
    response[RETRY_HEADER] = "1"
    return embedded_headers_set(response, shop_domain=shop_domain)


def _invalid(request: HttpRequest, *, is_document: bool, reason: str) -> HttpResponse:
    logger.info(
        "auth.session_token.invalid",
        extra={"reason": reason, "document": is_document, "path": request.path},
    )
    return _bounce_redirect(request) if is_document else _retry_response()


def _raw_token(request: HttpRequest) -> str | None:
    """The session token a request carries; None for an unsafe document load (no header)."""
    header = request.headers.get("Authorization")
    if header is None:
        if request.method not in _SAFE_METHODS:
            return None
        return request.GET.get("id_token", "")
    return header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""


def session_token_required(
    view: Callable[Concatenate[ShopRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        is_document = request.headers.get("Authorization") is None
        raw = _raw_token(request)
        if raw is None:
            return _invalid(request, is_document=False, reason="unsafe_method_without_header")
        try:
            claims = session_token_decode(raw)
            domain = session_token_shop_domain(claims)
        except InvalidSessionToken as exc:
            return _invalid(request, is_document=is_document, reason=str(exc))

        shop = Shop.objects.filter(myshopify_domain=domain).first()
        if shop is None or not shop_token_is_usable(shop=shop):
            try:
                shop = shop_install_from_session_token(shop_domain=domain, session_token=raw)
            except TokenRequestRejected as exc:
                # Shopify refused the subject token (e.g. it expired on the way): get a new one.
                return _invalid(request, is_document=is_document, reason=f"exchange_{exc.error}")
            except TokenRequestUnavailable:
                logger.warning("auth.session_token.exchange_unavailable", extra={"shop": domain})
                response = HttpResponse(
                    "Shopify is unreachable, try again shortly.",
                    status=503,
                    content_type="text/plain",
                )
                response["Retry-After"] = "5"
                return embedded_headers_set(response, shop_domain=domain)
            shop_after_install(shop=shop)

        shop_request = cast(ShopRequest, request)
        shop_request.shop = shop
        shop_request.session_token_claims = claims
        return embedded_headers_set(view(shop_request, *args, **kwargs), shop_domain=domain)

    return csrf_exempt(xframe_options_exempt(wrapper))

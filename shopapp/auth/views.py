"""The install and auth endpoints under /auth/.

Authorization code grant (the fallback for non-embedded installs; embedded installs use
managed installation and token exchange, see ``session.py``):

    GET /auth/install?shop=…   one-time ``state`` (row + signed cookie) → 302 to the shop's
                               /admin/oauth/authorize
    GET /auth/callback?…       hmac → timestamp → state → code exchanged → 302 into the admin

    GET /auth/session-token    the bounce page: App Bridge reloads ``shopify-reload`` with a
                               fresh session token

Each guard of the callback has its own log key and status; a rejected callback stores nothing.
"""

import base64
import binascii
import hmac
import logging
import re
import secrets
import time
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import redis
import shopify
from django.conf import settings
from django.core.signing import BadSignature
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from shopapp.auth.domains import shop_domain_clean
from shopapp.auth.services import shop_after_install, shop_install_from_authorization_code
from shopapp.auth.session import embedded_headers_set
from shopapp.auth.shopify_oauth import TokenRequestRejected, TokenRequestUnavailable
from shopapp.models import OAuthState
from shopapp.storefront import ratelimit

logger = logging.getLogger(__name__)

STATE_COOKIE = "shopify_oauth_state"
STATE_COOKIE_SALT = "shopapp.auth.state"
# Long enough for a merchant to read the consent page; Shopify's Node library uses 60 s,
# which is tight for a human.
STATE_TTL = timedelta(minutes=10)
# Shopify stamps the callback when it redirects, and the browser follows at once. ShopifyAPI
# accepts a day-old timestamp; a replay window of minutes is plenty (Node's library: ±90 s).
CALLBACK_MAX_AGE_SECONDS = 5 * 60
CALLBACK_MAX_SKEW_SECONDS = 60
# Where Shopify's admin puts embedded apps: admin.shopify.com/store/<name>, or the legacy
# <shop>/admin. Anything else in ``host`` is not trusted as a redirect target.
_HOST_RE = re.compile(
    r"^(admin\.shopify\.com/store/[a-z0-9][a-z0-9-]*|[a-z0-9][a-z0-9-]*\.myshopify\.com/admin)$"
)
_CALLBACK_REQUIRED = ("code", "hmac", "shop", "state", "timestamp")


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def _redirect_uri() -> str:
    return f"{settings.APP_URL}/auth/callback"


@require_GET
def install(request: HttpRequest) -> HttpResponse:
    """Start the authorization code grant for ``?shop=<name>.myshopify.com``."""
    domain = shop_domain_clean(request.GET.get("shop"))
    if domain is None:
        logger.info("auth.install.bad_shop")
        return _text("Invalid shop domain: expected <name>.myshopify.com", 400)

    refused = _install_rate_limit_hit(request, domain=domain)
    if refused:
        response = _text("Too many install attempts: try again in a few minutes.", 429)
        response["Retry-After"] = str(refused)
        return response

    now = timezone.now()
    # Housekeeping, cheap with the index on nothing-but-old rows: unused states pile up
    # when merchants abandon the consent page.
    OAuthState.objects.filter(created_at__lt=now - timedelta(days=1)).delete()
    state = secrets.token_hex(32)
    OAuthState.objects.create(state=state, shop_domain=domain)

    base = settings.SHOPIFY_ADMIN_URL_TEMPLATE.format(shop=domain).rstrip("/")
    query = urlencode(
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "scope": settings.SHOPIFY_SCOPES,
            "redirect_uri": _redirect_uri(),
            "state": state,
        }
    )
    response = HttpResponseRedirect(f"{base}/admin/oauth/authorize?{query}")
    # As Shopify's libraries do: the state also rides in a signed cookie scoped to the
    # callback, so a state lifted from one browser cannot complete in another. Lax: the
    # callback is a top-level GET navigation from Shopify.
    response.set_signed_cookie(
        STATE_COOKIE,
        state,
        salt=STATE_COOKIE_SALT,
        max_age=int(STATE_TTL.total_seconds()),
        path="/auth/callback",
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
    logger.info("auth.install.redirected", extra={"shop": domain})
    return response


def _install_rate_limit_hit(request: HttpRequest, *, domain: str) -> int:
    """Seconds to wait when this client, or this shop, started too many installs lately (each
    writes an OAuth state row before anyone is authenticated); 0 when allowed. Redis down:
    allowed (fail open, logged), as the storefront limits."""
    address = ratelimit.client_address(
        request.headers.get("X-Forwarded-For", ""),
        request.META.get("REMOTE_ADDR", ""),
        via_shopify=False,
    )
    limit = int(settings.AUTH_INSTALL_RATE_PER_IP)
    window = ratelimit.window_seconds()
    try:
        for scope, subject in (
            ("install-ip", ratelimit.address_subject(address)),
            ("install-shop", domain),
        ):
            result = ratelimit.rate_limit_hit(scope, 0, subject, limit, window)
            if not result.allowed:
                logger.warning("auth.install.rate_limited", extra={"scope": scope})
                return result.retry_after
    except redis.RedisError as exc:
        logger.warning("auth.install.rate_limit_unavailable", extra={"error": type(exc).__name__})
    return 0


def _callback_params(request: HttpRequest) -> dict[str, object]:
    """The query as ShopifyAPI signs it: ``key[]`` keys keep every value, others the last."""
    return {
        key: (request.GET.getlist(key) if key.endswith("[]") else request.GET[key])
        for key in request.GET
    }


def _shopify_session_setup() -> None:
    # Class-level settings in ShopifyAPI: set them from our settings before every use, so a
    # changed secret (tests, rotation) is the one checked.
    shopify.Session.setup(api_key=settings.SHOPIFY_API_KEY, secret=settings.SHOPIFY_API_SECRET)


def _timestamp_is_fresh(value: object) -> bool:
    try:
        stamp = int(str(value))
    except ValueError:
        return False
    now = time.time()
    return now - CALLBACK_MAX_AGE_SECONDS <= stamp <= now + CALLBACK_MAX_SKEW_SECONDS


def _state_consume(*, request: HttpRequest, state: str, domain: str) -> str:
    """ "" when the state is good (and now used up), else the reason it is not."""
    try:
        cookie = request.get_signed_cookie(
            STATE_COOKIE, salt=STATE_COOKIE_SALT, max_age=int(STATE_TTL.total_seconds())
        )
    except (KeyError, BadSignature):
        return "no_cookie"
    if cookie is None:
        return "no_cookie"
    if not hmac.compare_digest(cookie.encode(), state.encode()):
        return "cookie_mismatch"
    now = timezone.now()
    # One UPDATE both checks and spends the state: two callbacks racing with the same state
    # cannot both get a row count of 1.
    used = OAuthState.objects.filter(
        state=state, shop_domain=domain, used_at__isnull=True, created_at__gte=now - STATE_TTL
    ).update(used_at=now)
    return "" if used == 1 else "unknown_used_or_expired"


def _embedded_app_url(*, host_param: str, domain: str) -> str:
    """The app's page inside the Shopify admin, from ``host`` (base64 of the admin host).

    A development store that is not Shopify's admin (the devshop) names its own page through
    ``SHOPIFY_EMBEDDED_APP_URL_TEMPLATE``.
    """
    if settings.SHOPIFY_EMBEDDED_APP_URL_TEMPLATE:
        return settings.SHOPIFY_EMBEDDED_APP_URL_TEMPLATE.format(shop=domain)
    try:
        host = base64.b64decode(host_param + "=" * (-len(host_param) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        host = ""
    if not _HOST_RE.fullmatch(host):
        host = f"admin.shopify.com/store/{domain.removesuffix('.myshopify.com')}"
    return f"https://{host}/apps/{settings.SHOPIFY_API_KEY}"


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Shopify's redirect after consent: verify everything, then exchange the code."""
    params = _callback_params(request)
    missing = [key for key in _CALLBACK_REQUIRED if not params.get(key)]
    if missing:
        logger.info("auth.callback.missing_params", extra={"missing": ",".join(missing)})
        return _text("Missing parameters: " + ", ".join(missing), 400)
    domain = shop_domain_clean(str(params["shop"]))
    if domain is None:
        logger.info("auth.callback.bad_shop")
        return _text("Invalid shop domain", 400)

    _shopify_session_setup()
    if not shopify.Session.validate_hmac(params):
        logger.warning("auth.callback.bad_hmac", extra={"shop": domain})
        return _text("Invalid signature", 403)
    # validate_params re-checks the hmac and rejects a timestamp over 24 h old; ours is tighter.
    if not _timestamp_is_fresh(params["timestamp"]) or not shopify.Session.validate_params(params):
        logger.warning("auth.callback.stale_timestamp", extra={"shop": domain})
        return _text("Request expired, start the install again", 403)
    reason = _state_consume(request=request, state=str(params["state"]), domain=domain)
    if reason:
        logger.warning("auth.callback.bad_state", extra={"shop": domain, "reason": reason})
        return _text("Invalid or reused state, start the install again", 403)

    try:
        shop = shop_install_from_authorization_code(shop_domain=domain, code=str(params["code"]))
    except TokenRequestRejected as exc:
        logger.warning("auth.callback.code_rejected", extra={"shop": domain, "error": exc.error})
        return _text("Shopify refused the authorization code, start the install again", 400)
    except TokenRequestUnavailable:
        logger.warning("auth.callback.shopify_unavailable", extra={"shop": domain})
        return _text("Shopify is unreachable, try again shortly", 502)
    shop_after_install(shop=shop)

    response = HttpResponseRedirect(
        _embedded_app_url(host_param=str(params.get("host", "")), domain=domain)
    )
    response.delete_cookie(STATE_COOKIE, path="/auth/callback", samesite="Lax")
    return response


def _reload_target_is_safe(target: str) -> bool:
    """Same origin as the app only: the bounce page must not become an open redirect."""
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return False
    app = urlsplit(settings.APP_URL)
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        if (parts.scheme, parts.netloc) != (app.scheme, app.netloc):
            return False
    elif not target.startswith("/") or target.startswith("//"):
        return False
    return url_has_allowed_host_and_scheme(
        target, allowed_hosts={app.netloc}, require_https=app.scheme == "https"
    )


@require_GET
def session_token_bounce(request: HttpRequest) -> HttpResponse:
    """App Bridge, loaded alone, fetches a fresh session token and reloads ``shopify-reload``."""
    if not _reload_target_is_safe(request.GET.get("shopify-reload", "")):
        logger.info("auth.bounce.bad_reload")
        return _text("Invalid shopify-reload", 400)
    html = format_html(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta name="shopify-api-key" content="{}">'
        '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>'
        "</head><body></body></html>",
        settings.SHOPIFY_API_KEY,
    )
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return embedded_headers_set(response, shop_domain=shop_domain_clean(request.GET.get("shop")))

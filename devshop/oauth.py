"""The store's OAuth endpoints, as Shopify serves them on ``https://<shop>``:

    GET|POST /store/<shop>/admin/oauth/authorize     consent (or auto-approve) → 302 to the app
                                                     with code, hmac, host, shop, state, timestamp
    POST     /store/<shop>/admin/oauth/access_token  authorization_code | token-exchange
                                                     (session token, or a legacy token to
                                                     migrate) | refresh_token

Errors use Shopify's shape: HTTP 400 ``{"error": …, "error_description": …}`` with the codes
``invalid_request``, ``invalid_client``, ``invalid_grant``, ``invalid_subject_token``.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from base64 import b64encode
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from devshop.knobs import forced_failure_take, knob_get
from devshop.models import DevAccessToken, DevAuthorizationCode, DevShop
from devshop.tokens import dev_token_issue, dev_token_response

logger = logging.getLogger(__name__)

GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
SUBJECT_OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"
REQUESTED_OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"
# An authorization code is good once, for this long: the app exchanges it within seconds.
CODE_TTL = timedelta(minutes=5)
# Shopify's session tokens carry a minute of life; accept a few seconds of clock skew.
SESSION_TOKEN_LEEWAY_SECONDS = 5


def oauth_query_sign(params: Mapping[str, str], secret: str) -> str:
    """Shopify's OAuth query signature: ``key=value`` pairs (hmac and signature left out),
    sorted, joined with ``&``, HMAC-SHA256 with the client secret, lowercase hex."""
    message = "&".join(
        sorted(
            f"{key}={value}" for key, value in params.items() if key not in {"hmac", "signature"}
        )
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def admin_host_param(shop: DevShop) -> str:
    """``host``: base64 of the shop's admin host, '=' stripped, as Shopify sends it."""
    name = shop.myshopify_domain.removesuffix(".myshopify.com")
    return b64encode(f"admin.shopify.com/store/{name}".encode()).decode().rstrip("=")


def _error(error: str, description: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _redirect_uri_allowed(redirect_uri: str) -> bool:
    """Under the app's URL, as Shopify requires it to match the app's redirect_urls."""
    app = urlsplit(settings.DEVSHOP_APP_URL)
    target = urlsplit(redirect_uri)
    return (
        (target.scheme, target.netloc) == (app.scheme, app.netloc)
        and target.path.startswith(app.path.rstrip("/") + "/")
        and not target.fragment
    )


def app_install(*, shop: DevShop, scopes: str | None = None) -> None:
    """Install the app on the store (managed install or consent): grant its scopes."""
    shop.app_installed = True
    shop.granted_scopes = scopes if scopes is not None else settings.DEVSHOP_APP_SCOPES
    shop.installed_at = timezone.now()
    shop.save(update_fields=["app_installed", "granted_scopes", "installed_at"])


def app_uninstall(*, shop: DevShop) -> int:
    """Uninstall the app: every token it holds on the store dies at once, and Shopify sends
    app/uninstalled with the Shop resource (shopify.dev, webhooks: app/uninstalled). Returns
    how many tokens were revoked."""
    from devshop.payloads import shop_payload
    from devshop.webhooks import dev_webhook_emit

    now = timezone.now()
    was_installed = shop.app_installed
    shop.app_installed = False
    shop.granted_scopes = ""
    shop.save(update_fields=["app_installed", "granted_scopes"])
    revoked = DevAccessToken.objects.filter(shop=shop, revoked_at__isnull=True).update(
        revoked_at=now
    )
    if was_installed:
        dev_webhook_emit(shop=shop, topic="app/uninstalled", payload=shop_payload(shop))
    return revoked


@csrf_exempt
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest, shop: str) -> HttpResponse:
    """The consent screen. GET shows it (or approves at once with knob auto_approve); POST
    approves. Both end in a 302 to the app's redirect_uri with a fresh code."""
    dev_shop = get_object_or_404(DevShop, myshopify_domain=shop)
    params = request.POST if request.method == "POST" else request.GET
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    state = params.get("state", "")
    scope = params.get("scope") or settings.DEVSHOP_APP_SCOPES
    if not hmac.compare_digest(client_id.encode(), settings.DEVSHOP_APP_CLIENT_ID.encode()):
        return HttpResponse("Oauth error invalid_request: unknown client_id", status=400)
    if not _redirect_uri_allowed(redirect_uri):
        return HttpResponse(
            "Oauth error invalid_request: The redirect_uri is not whitelisted", status=400
        )
    if request.method == "GET" and not knob_get("auto_approve"):
        return render(
            request,
            "devshop/oauth_authorize.html",
            {
                "shop": dev_shop,
                "scopes": [s for s in scope.split(",") if s],
                "fields": {
                    "client_id": client_id,
                    "redirect_uri": redirect_uri,
                    "state": state,
                    "scope": scope,
                },
            },
        )
    now = timezone.now()
    code = DevAuthorizationCode.objects.create(
        shop=dev_shop, code=secrets.token_hex(16), scope=scope, expires_at=now + CODE_TTL
    )
    app_install(shop=dev_shop, scopes=scope)
    query = {
        "code": code.code,
        "host": admin_host_param(dev_shop),
        "shop": dev_shop.myshopify_domain,
        "state": state,
        "timestamp": str(int(time.time())),
    }
    query["hmac"] = oauth_query_sign(query, settings.DEVSHOP_APP_CLIENT_SECRET)
    separator = "&" if urlsplit(redirect_uri).query else "?"
    logger.info("devshop.oauth.authorized", extra={"shop": shop})
    return HttpResponseRedirect(f"{redirect_uri}{separator}{urlencode(query)}")


def _request_fields(request: HttpRequest) -> dict[str, str] | None:
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return {str(key): str(value) for key, value in body.items() if value is not None}
    return {key: request.POST[key] for key in request.POST}


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true"}


@csrf_exempt
@require_http_methods(["POST"])
def access_token(request: HttpRequest, shop: str) -> HttpResponse:
    failure = forced_failure_take("oauth_fail_next")
    if failure is not None:
        # What an outage looks like from the app: a 5xx (or 429) with no token.
        return JsonResponse(
            {"errors": "Service Unavailable"}, status=int(failure.get("status", 503))
        )
    dev_shop = DevShop.objects.filter(myshopify_domain=shop).first()
    if dev_shop is None:
        return _error("invalid_request", "Unknown shop", status=404)
    fields = _request_fields(request)
    if fields is None:
        return _error("invalid_request", "Malformed request body")
    client_ok = hmac.compare_digest(
        fields.get("client_id", "").encode(), settings.DEVSHOP_APP_CLIENT_ID.encode()
    ) and hmac.compare_digest(
        fields.get("client_secret", "").encode(), settings.DEVSHOP_APP_CLIENT_SECRET.encode()
    )
    if not client_ok:
        return _error("invalid_client", "Client authentication failed")

    grant_type = fields.get("grant_type") or "authorization_code"
    with transaction.atomic():
        if grant_type == "authorization_code":
            return _grant_authorization_code(dev_shop, fields)
        if grant_type == GRANT_TOKEN_EXCHANGE:
            return _grant_token_exchange(dev_shop, fields)
        if grant_type == "refresh_token":
            return _grant_refresh(dev_shop, fields)
    return _error("invalid_request", f"Unsupported grant_type: {grant_type[:80]}")


def _grant_authorization_code(shop: DevShop, fields: dict[str, str]) -> JsonResponse:
    if not fields.get("code"):
        return _error("invalid_request", "Missing code")
    now = timezone.now()
    code = (
        DevAuthorizationCode.objects.select_for_update()
        .filter(shop=shop, code=fields["code"])
        .first()
    )
    if code is None or code.used_at is not None or code.expires_at <= now:
        return _error("invalid_grant", "The authorization code was not found or was already used")
    code.used_at = now
    code.save(update_fields=["used_at"])
    token = dev_token_issue(shop=shop, scope=code.scope, expiring=_is_true(fields.get("expiring")))
    logger.info("devshop.oauth.code_exchanged", extra={"shop": shop.myshopify_domain})
    return JsonResponse(dev_token_response(token))


def _session_token_valid_for(shop: DevShop, subject_token: str) -> bool:
    try:
        claims: dict[str, Any] = jwt.decode(
            subject_token,
            settings.DEVSHOP_APP_CLIENT_SECRET,
            algorithms=["HS256"],
            audience=settings.DEVSHOP_APP_CLIENT_ID,
            leeway=SESSION_TOKEN_LEEWAY_SECONDS,
            options={"require": ["exp", "nbf", "iss", "dest", "sub"]},
        )
    except jwt.PyJWTError:
        return False
    expected = f"https://{shop.myshopify_domain}"
    return claims.get("dest") == expected and str(claims.get("iss", "")).startswith(expected + "/")


def _grant_token_exchange(shop: DevShop, fields: dict[str, str]) -> JsonResponse:
    subject_token = fields.get("subject_token", "")
    subject_type = fields.get("subject_token_type", "")
    requested = fields.get("requested_token_type") or REQUESTED_OFFLINE
    if not subject_token:
        return _error("invalid_request", "Missing subject_token")
    if requested != REQUESTED_OFFLINE:
        # Online tokens are not simulated: the app uses offline tokens only.
        return _error("invalid_request", "Unsupported requested_token_type")
    expiring = _is_true(fields.get("expiring"))

    if subject_type == SUBJECT_ID_TOKEN:
        if not _session_token_valid_for(shop, subject_token):
            return _error("invalid_subject_token", "Session token is invalid or expired")
        if not shop.app_installed:
            # Managed installation: the merchant installed from the admin before the app
            # ever loaded, with the scopes of shopify.app.toml.
            app_install(shop=shop)
        token = dev_token_issue(shop=shop, scope=shop.granted_scopes, expiring=expiring)
        logger.info("devshop.oauth.token_exchanged", extra={"shop": shop.myshopify_domain})
        return JsonResponse(dev_token_response(token))

    if subject_type == SUBJECT_OFFLINE_TOKEN:
        if not expiring:
            return _error("invalid_request", "Migrating an offline token requires expiring=1")
        legacy = (
            DevAccessToken.objects.select_for_update()
            .filter(
                shop=shop,
                access_token=subject_token,
                expires_at__isnull=True,
                revoked_at__isnull=True,
            )
            .first()
        )
        if legacy is None or not shop.app_installed:
            return _error("invalid_subject_token", "Offline access token is invalid or revoked")
        # Irreversible: the non-expiring token dies with the migration.
        legacy.revoked_at = timezone.now()
        legacy.save(update_fields=["revoked_at"])
        token = dev_token_issue(shop=shop, scope=legacy.scope, expiring=True)
        logger.info("devshop.oauth.legacy_migrated", extra={"shop": shop.myshopify_domain})
        return JsonResponse(dev_token_response(token))

    return _error("invalid_request", "Unsupported subject_token_type")


def _grant_refresh(shop: DevShop, fields: dict[str, str]) -> JsonResponse:
    refresh_token = fields.get("refresh_token", "")
    if not refresh_token:
        return _error("invalid_request", "Missing refresh_token")
    now = timezone.now()
    old = (
        DevAccessToken.objects.select_for_update()
        .filter(shop=shop, refresh_token=refresh_token, revoked_at__isnull=True)
        .first()
    )
    if old is None or not shop.app_installed:
        return _error("invalid_grant", "Refresh token is invalid")
    if old.replaced_at is not None:
        window = timedelta(seconds=int(knob_get("refresh_retry_window")))
        if old.replaced_by_id is not None and now - old.replaced_at <= window:
            # Shopify's retry window: the same request again gets the same answer.
            replacement = DevAccessToken.objects.get(pk=old.replaced_by_id)
            return JsonResponse(dev_token_response(replacement))
        return _error("invalid_grant", "Refresh token has already been used")
    if old.refresh_token_expires_at is None or old.refresh_token_expires_at <= now:
        return _error("invalid_grant", "Refresh token has expired")
    new = dev_token_issue(shop=shop, scope=old.scope, expiring=True)
    # dev_token_issue retired ``old`` (replaced_at); remember by what, for the retry window.
    DevAccessToken.objects.filter(pk=old.pk).update(replaced_by=new)
    logger.info("devshop.oauth.refreshed", extra={"shop": shop.myshopify_domain})
    return JsonResponse(dev_token_response(new))

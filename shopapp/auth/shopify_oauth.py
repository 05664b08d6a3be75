"""Calls to a shop's token endpoint, ``<base>/admin/oauth/access_token``, with ``requests``.

ShopifyAPI (Python) has no token exchange, no refresh and no expiring tokens, and its
``request_token`` has no timeout, so every grant the app uses goes through here:

    token_exchange               session token (JWT)      → expiring offline token (install)
    token_from_authorization_code  ``code`` from callback → expiring offline token (fallback)
    token_refresh                refresh token            → new access + refresh tokens
    token_migrate_legacy         non-expiring token       → expiring token (revokes the old one)

Network errors, 429 and 5xx are retried with backoff; a 4xx answer is Shopify's final word
(``TokenRequestRejected``). Refresh is safe to repeat: Shopify answers a repeated refresh
inside its retry window with the same tokens. No token, code or secret is ever logged.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

GRANT_TYPE_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPE_REFRESH_TOKEN = "refresh_token"
SUBJECT_TOKEN_TYPE_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
SUBJECT_TOKEN_TYPE_OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"
REQUESTED_TOKEN_TYPE_OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"

# (connect, read) seconds. Shopify's token endpoint answers in well under a second; a user
# waits on the install path, so fail fast and retry rather than hang.
TIMEOUT_SECONDS = (5, 15)
# Three attempts in all, 0.5 s then 1 s apart: rides out a blip without holding a request
# (and, for refresh, the shop's row lock) for long.
MAX_ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class TokenRequestError(Exception):
    """A token request that did not produce a token."""


class TokenRequestRejected(TokenRequestError):
    """Shopify answered 4xx (bad code, bad subject token, refresh token void…): final."""

    def __init__(self, *, status: int, error: str, description: str) -> None:
        super().__init__(f"token request rejected: HTTP {status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class TokenRequestUnavailable(TokenRequestError):
    """Network error or 5xx after every retry: try again later."""


@dataclass(frozen=True)
class TokenGrant:
    """A token endpoint answer. Expiry fields are None for a legacy non-expiring token."""

    access_token: str = field(repr=False)
    scope: str
    access_token_expires_at: datetime | None
    refresh_token: str | None = field(repr=False)
    refresh_token_expires_at: datetime | None

    @property
    def is_expiring(self) -> bool:
        return self.access_token_expires_at is not None


def shop_token_url(*, shop_domain: str) -> str:
    base = settings.SHOPIFY_ADMIN_URL_TEMPLATE.format(shop=shop_domain).rstrip("/")
    return f"{base}/admin/oauth/access_token"


def _client_credentials() -> dict[str, str]:
    return {
        "client_id": settings.SHOPIFY_API_KEY,
        "client_secret": settings.SHOPIFY_API_SECRET,
    }


def _grant_from_body(body: dict[str, Any], *, requested_at: datetime) -> TokenGrant:
    # Expiries count from when we asked, not when the answer arrived: errs on the early side.
    expires_in = body.get("expires_in")
    refresh_expires_in = body.get("refresh_token_expires_in")
    return TokenGrant(
        access_token=body["access_token"],
        scope=body.get("scope", ""),
        access_token_expires_at=(
            requested_at + timedelta(seconds=int(expires_in)) if expires_in is not None else None
        ),
        refresh_token=body.get("refresh_token") or None,
        refresh_token_expires_at=(
            requested_at + timedelta(seconds=int(refresh_expires_in))
            if refresh_expires_in is not None
            else None
        ),
    )


def _token_request(*, shop_domain: str, grant: str, data: dict[str, str]) -> TokenGrant:
    url = shop_token_url(shop_domain=shop_domain)
    payload = {**_client_credentials(), **data}
    facts = {"shop": shop_domain, "grant": grant}
    last_error = ""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        requested_at = timezone.now()
        try:
            response = requests.post(
                url, data=payload, headers={"Accept": "application/json"}, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            last_error = type(exc).__name__
            logger.warning(
                "auth.token_request.network_error",
                extra={**facts, "attempt": attempt, "error": last_error},
            )
        else:
            if response.status_code == 200:
                try:
                    return _grant_from_body(response.json(), requested_at=requested_at)
                except (ValueError, KeyError, TypeError) as exc:
                    # A 200 without a token is not something a retry fixes.
                    raise TokenRequestRejected(
                        status=200, error="invalid_response", description=type(exc).__name__
                    ) from None
            if response.status_code not in _RETRYABLE_STATUS:
                error, description = _error_fields(response)
                logger.warning(
                    "auth.token_request.rejected",
                    extra={**facts, "status": response.status_code, "error": error},
                )
                raise TokenRequestRejected(
                    status=response.status_code, error=error, description=description
                )
            last_error = f"HTTP {response.status_code}"
            logger.warning(
                "auth.token_request.server_error",
                extra={**facts, "attempt": attempt, "status": response.status_code},
            )
        if attempt < MAX_ATTEMPTS:
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise TokenRequestUnavailable(f"token endpoint unavailable for {shop_domain}: {last_error}")


def _error_fields(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "http_error", f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return "http_error", f"HTTP {response.status_code}"
    # Only Shopify's error code and description: never echo the request back.
    return str(body.get("error", "http_error")), str(body.get("error_description", ""))[:500]


def token_exchange(*, shop_domain: str, session_token: str) -> TokenGrant:
    """Exchange an App Bridge session token for an expiring offline token."""
    return _token_request(
        shop_domain=shop_domain,
        grant="token_exchange",
        data={
            "grant_type": GRANT_TYPE_TOKEN_EXCHANGE,
            "subject_token": session_token,
            "subject_token_type": SUBJECT_TOKEN_TYPE_ID_TOKEN,
            "requested_token_type": REQUESTED_TOKEN_TYPE_OFFLINE,
            "expiring": "1",
        },
    )


def token_from_authorization_code(*, shop_domain: str, code: str) -> TokenGrant:
    """The authorization code grant's second leg: ``code`` → expiring offline token."""
    return _token_request(
        shop_domain=shop_domain,
        grant="authorization_code",
        data={"code": code, "expiring": "1"},
    )


def token_refresh(*, shop_domain: str, refresh_token: str) -> TokenGrant:
    """New access and refresh tokens; Shopify voids the old refresh token at once."""
    return _token_request(
        shop_domain=shop_domain,
        grant="refresh_token",
        data={"grant_type": GRANT_TYPE_REFRESH_TOKEN, "refresh_token": refresh_token},
    )


def token_migrate_legacy(*, shop_domain: str, access_token: str) -> TokenGrant:
    """Trade a legacy non-expiring offline token for an expiring one (irreversible)."""
    return _token_request(
        shop_domain=shop_domain,
        grant="legacy_migration",
        data={
            "grant_type": GRANT_TYPE_TOKEN_EXCHANGE,
            "subject_token": access_token,
            "subject_token_type": SUBJECT_TOKEN_TYPE_OFFLINE,
            "requested_token_type": REQUESTED_TOKEN_TYPE_OFFLINE,
            "expiring": "1",
        },
    )

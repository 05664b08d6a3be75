"""Installing the app on a shop and keeping its offline token usable.

    first /app/ load (managed install)   shop_install_from_session_token  → token exchange
    /auth/callback (fallback)            shop_install_from_authorization_code
    any Shopify call, web or job         shop_access_token_get → refresh / migrate when due
    app/scopes_update webhook            shop_scopes_update

Both installs (re)activate the shop. They return the Shop; the caller then calls
``shop_after_install``, which queues the sync of the shop's details (``shop_details_sync``) and
a first reconciliation of its orders.

Refresh races: Shopify voids a refresh token the moment it is used (bar a short retry
window), so two workers refreshing at once could leave the shop with a dead refresh token.
The refresh therefore runs with the Shop row locked (``select_for_update``): the second
worker waits, re-reads the row, finds the new token and does not refresh again.
"""

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from shopapp.auth import shopify_oauth
from shopapp.auth.selectors import shop_token_is_usable
from shopapp.auth.shopify_oauth import TokenGrant, TokenRequestRejected, TokenRequestUnavailable
from shopapp.auth.tokens import (
    shop_access_token_read,
    shop_refresh_token_read,
    shop_tokens_assign,
)
from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import Shop, WebhookEvent
from shopapp.subscribers import SHOP_INSTALLED, ShopInstalled, subscribers_notify

logger = logging.getLogger(__name__)

# Refresh this long before the access token expires: a job that starts with 5 min left
# finishes its calls before Shopify starts answering 401.
REFRESH_MARGIN = timedelta(minutes=5)

_WRITE_SCOPE = re.compile(r"^(unauthenticated_)?write_(.+)$")


class ShopTokenUnavailable(Exception):
    """The app holds no usable token for the shop; nothing to retry until something changes."""

    def __init__(self, shop_domain: str, reason: str) -> None:
        super().__init__(f"{shop_domain}: {reason}")
        self.shop_domain = shop_domain
        self.reason = reason


class ShopNotInstalled(ShopTokenUnavailable):
    """Never installed, or uninstalled: only a new install brings a token."""


class ShopNeedsReauth(ShopTokenUnavailable):
    """The refresh token expired or was refused: the merchant has to open the app again
    (the next /app/ load runs a token exchange and clears ``needs_reauth``)."""


def scopes_missing(*, required: str, granted: str) -> list[str]:
    """Required scopes not covered by the granted ones; ``write_X`` covers ``read_X``."""
    covered = {scope.strip() for scope in granted.split(",") if scope.strip()}
    for scope in list(covered):
        match = _WRITE_SCOPE.match(scope)
        if match:
            covered.add(f"{match.group(1) or ''}read_{match.group(2)}")
    wanted = [scope.strip() for scope in required.split(",") if scope.strip()]
    return [scope for scope in wanted if scope not in covered]


def _shop_scopes_set(*, shop: Shop, granted: str, learnt_at: datetime) -> None:
    shop.granted_scopes = granted
    missing = scopes_missing(required=settings.SHOPIFY_SCOPES, granted=granted)
    shop.missing_scopes = ",".join(missing)
    shop.scopes_updated_at = learnt_at
    if missing:
        logger.warning(
            "auth.scopes.missing",
            extra={"shop": shop.myshopify_domain, "missing": shop.missing_scopes},
        )


def _shop_install_apply(*, shop: Shop, grant: TokenGrant, method: str) -> None:
    """Store a fresh grant on the (locked) shop and (re)activate it."""
    now = timezone.now()
    reinstalled = shop.uninstalled_at is not None
    shop_tokens_assign(
        shop=shop,
        access_token=grant.access_token,
        access_token_expires_at=grant.access_token_expires_at,
        refresh_token=grant.refresh_token,
        refresh_token_expires_at=grant.refresh_token_expires_at,
    )
    if not shop.is_active:
        shop.installed_at = now
    shop.is_active = True
    shop.uninstalled_at = None
    shop.needs_reauth = False
    shop.token_refreshed_at = now
    _shop_scopes_set(shop=shop, granted=grant.scope, learnt_at=now)
    shop.save()
    logger.info(
        "auth.install.completed",
        extra={
            "shop": shop.myshopify_domain,
            "method": method,
            "reinstalled": reinstalled,
            "expiring": grant.is_expiring,
        },
    )


def shop_install_from_session_token(*, shop_domain: str, session_token: str) -> Shop:
    """Managed install: exchange a verified session token for an expiring offline token.

    Runs on an /app/ load for a shop without a usable token. Concurrent loads of the same
    shop queue on its row; the ones that follow find the token and do not exchange again.
    Raises ``TokenRequestRejected`` / ``TokenRequestUnavailable``; nothing is stored then.
    """
    with transaction.atomic():
        shop, _ = Shop.objects.select_for_update().get_or_create(myshopify_domain=shop_domain)
        if shop_token_is_usable(shop=shop):
            return shop
        grant = shopify_oauth.token_exchange(shop_domain=shop_domain, session_token=session_token)
        _shop_install_apply(shop=shop, grant=grant, method="token_exchange")
    return shop


def shop_install_from_authorization_code(*, shop_domain: str, code: str) -> Shop:
    """Fallback install: the ``code`` from a verified /auth/callback → expiring offline token."""
    with transaction.atomic():
        shop, _ = Shop.objects.select_for_update().get_or_create(myshopify_domain=shop_domain)
        grant = shopify_oauth.token_from_authorization_code(shop_domain=shop_domain, code=code)
        _shop_install_apply(shop=shop, grant=grant, method="authorization_code")
    return shop


def shop_after_install(*, shop: Shop) -> None:
    """Called by both install paths after a successful install: tell the features, and queue
    the first Shopify calls.

    The shop's details (name, email, timezone, currency) and its recent orders are pulled by
    tasks after the install's transaction commits, so that the merchant's first page load never
    waits on the Admin API; with Redis down the tasks' sweep hands them over later.
    """
    from shopapp.auth.jobs import shop_details_sync_job
    from shopapp.branding.theme import branding_theme_read_defer
    from shopapp.orders.jobs import orders_reconcile_job

    # Local rows only, no Shopify call (e.g. the default notification sequences): done now so
    # the admin is never empty. Subscribers are idempotent across reinstalls.
    subscribers_notify(SHOP_INSTALLED, ShopInstalled(shop=shop))
    # The storefront theme's colours, so the pages look like the store from the start.
    branding_theme_read_defer(shop=shop)
    task_defer(
        shop_details_sync_job,
        shop=shop,
        kwargs={"shop_id": shop.pk},
        key=f"shop.details_sync:{shop.pk}",
        queue=Queues.SYNCS,
        retry_intervals_s=(10, 60, 300),
    )
    task_defer(
        orders_reconcile_job,
        shop=shop,
        kwargs={"shop_id": shop.pk},
        key=f"orders.reconcile:{shop.pk}",
        queue=Queues.SYNCS,
        timeout_s=600,
        retry_intervals_s=(30, 120, 300),
    )
    logger.info("auth.install.after_install_queued", extra={"shop": shop.myshopify_domain})


SHOP_DETAILS_QUERY = """
query ShopDetails {
  shop { id name email myshopifyDomain ianaTimezone currencyCode }
}
"""


def shop_details_sync(*, shop: Shop) -> Shop:
    """Copy the shop's name, email, timezone and currency from the Admin API."""
    from shopapp.admin_api.client import admin_client_for_shop
    from shopapp.orders.reconcile import legacy_id

    data = admin_client_for_shop(shop).execute(SHOP_DETAILS_QUERY)["shop"]
    shop.shopify_id = legacy_id(data["id"])
    shop.name = data.get("name") or ""
    shop.email = data.get("email") or ""
    shop.timezone = data.get("ianaTimezone") or "UTC"
    shop.currency = data.get("currencyCode") or ""
    shop.save(update_fields=["shopify_id", "name", "email", "timezone", "currency", "updated_at"])
    logger.info("auth.shop_details.synced", extra={"shop": shop.myshopify_domain})
    return shop


def _token_is_fresh(*, shop: Shop, now: datetime) -> bool:
    return bool(
        shop_token_is_usable(shop=shop)
        and shop.access_token_expires_at is not None
        and shop.access_token_expires_at - REFRESH_MARGIN > now
    )


def shop_access_token_get(*, shop: Shop) -> str:
    """A token to call the Admin API with, refreshed first when it expires within the margin.

    Legacy non-expiring tokens are migrated to expiring ones here. Raises ``ShopNotInstalled``
    or ``ShopNeedsReauth`` (after storing ``needs_reauth=True``) when there is no usable
    token, and ``TokenRequestUnavailable`` when Shopify cannot be reached and the current
    token has run out (retry later). ``shop`` is refreshed from the database on the way out.
    """
    now = timezone.now()
    if _token_is_fresh(shop=shop, now=now):
        return shop_access_token_read(shop=shop)

    reauth_reason = ""
    with transaction.atomic():
        locked = Shop.objects.select_for_update().get(pk=shop.pk)
        domain = locked.myshopify_domain
        if not locked.is_active or not locked.access_token_encrypted:
            raise ShopNotInstalled(domain, "not installed")
        if locked.needs_reauth:
            raise ShopNeedsReauth(domain, "waiting for the merchant to open the app")
        if _token_is_fresh(shop=locked, now=now):
            # Another worker renewed it while we waited for the lock.
            token = shop_access_token_read(shop=locked)
        else:
            token, reauth_reason = _shop_token_renew(shop=locked, now=now)
        if reauth_reason:
            locked.needs_reauth = True
            locked.save(update_fields=["needs_reauth", "updated_at"])
            logger.warning(
                "auth.token.needs_reauth", extra={"shop": domain, "reason": reauth_reason}
            )
    shop.refresh_from_db()
    if reauth_reason:
        # Raised after the commit, so needs_reauth=True is stored.
        raise ShopNeedsReauth(domain, reauth_reason)
    return token


def _shop_token_renew(*, shop: Shop, now: datetime) -> tuple[str, str]:
    """Refresh or migrate the locked shop's token: (token, "") or ("", reason for reauth)."""
    domain = shop.myshopify_domain
    legacy = shop.access_token_expires_at is None
    if not legacy:
        if not shop.refresh_token_encrypted:
            return "", "no_refresh_token"
        if shop.refresh_token_expires_at is not None and shop.refresh_token_expires_at <= now:
            return "", "refresh_token_expired"
    try:
        if legacy:
            grant = shopify_oauth.token_migrate_legacy(
                shop_domain=domain, access_token=shop_access_token_read(shop=shop)
            )
        else:
            grant = shopify_oauth.token_refresh(
                shop_domain=domain, refresh_token=shop_refresh_token_read(shop=shop)
            )
    except TokenRequestRejected as exc:
        return "", exc.error
    except TokenRequestUnavailable:
        # The current token still works until it expires (Shopify keeps an old access token
        # valid after a refresh too): use it and let the next call try the refresh again.
        if legacy or (
            shop.access_token_expires_at is not None and shop.access_token_expires_at > now
        ):
            logger.warning("auth.token.refresh_deferred", extra={"shop": domain})
            return shop_access_token_read(shop=shop), ""
        raise
    shop_tokens_assign(
        shop=shop,
        access_token=grant.access_token,
        access_token_expires_at=grant.access_token_expires_at,
        refresh_token=grant.refresh_token,
        refresh_token_expires_at=grant.refresh_token_expires_at,
    )
    shop.token_refreshed_at = timezone.now()
    shop.save(
        update_fields=[
            "access_token_encrypted",
            "access_token_expires_at",
            "refresh_token_encrypted",
            "refresh_token_expires_at",
            "token_refreshed_at",
            "updated_at",
        ]
    )
    logger.info("auth.token.migrated" if legacy else "auth.token.refreshed", extra={"shop": domain})
    return grant.access_token, ""


def shop_scopes_update(*, shop: Shop, event: WebhookEvent, payload: dict[str, Any]) -> None:
    """``app/scopes_update``: store the scopes now granted and recompute the missing ones.

    Idempotent; a delivery older than what is stored (``updated_at``) changes nothing.
    """
    current = payload.get("current")
    if not isinstance(current, list):
        logger.warning("auth.scopes_update.malformed", extra={"shop": shop.myshopify_domain})
        return
    updated_at = parse_datetime(str(payload.get("updated_at") or "")) or event.triggered_at
    with transaction.atomic():
        locked = Shop.objects.select_for_update().get(pk=shop.pk)
        if (
            updated_at is not None
            and locked.scopes_updated_at is not None
            and updated_at < locked.scopes_updated_at
        ):
            logger.info("auth.scopes_update.stale", extra={"shop": locked.myshopify_domain})
            return
        _shop_scopes_set(
            shop=locked,
            granted=",".join(str(scope) for scope in current),
            learnt_at=updated_at or timezone.now(),
        )
        locked.save(
            update_fields=["granted_scopes", "missing_scopes", "scopes_updated_at", "updated_at"]
        )
    logger.info("auth.scopes_update.applied", extra={"shop": locked.myshopify_domain})
    shop.refresh_from_db()
    if not scopes_missing(required="read_themes", granted=shop.granted_scopes):
        # Approved the scope the theme's colours need (or still holds it): read them again.
        from shopapp.branding.theme import branding_theme_read_defer

        branding_theme_read_defer(shop=shop)

"""Issuing the app's access tokens on a store, as Shopify's token endpoint does.

Expiring offline tokens: ``shpat_…`` good for ``access_token_ttl`` (1 h), with a ``shprt_…``
refresh token good for ``refresh_token_ttl`` (90 days). Shopify keeps one refreshable token per
app and store: issuing a new one retires the older ones.
"""

import secrets
from datetime import timedelta

from django.utils import timezone

from devshop.knobs import knob_get
from devshop.models import DevAccessToken, DevShop


def dev_token_issue(*, shop: DevShop, scope: str, expiring: bool) -> DevAccessToken:
    now = timezone.now()
    if expiring:
        DevAccessToken.objects.filter(
            shop=shop,
            refresh_token__isnull=False,
            revoked_at__isnull=True,
            replaced_at__isnull=True,
        ).update(replaced_at=now)
    return DevAccessToken.objects.create(
        shop=shop,
        access_token="shpat_" + secrets.token_hex(16),
        scope=scope,
        expires_at=now + timedelta(seconds=int(knob_get("access_token_ttl"))) if expiring else None,
        refresh_token="shprt_" + secrets.token_hex(16) if expiring else None,
        refresh_token_expires_at=(
            now + timedelta(seconds=int(knob_get("refresh_token_ttl"))) if expiring else None
        ),
    )


def dev_token_response(token: DevAccessToken) -> dict:
    """The JSON body Shopify answers a token request with."""
    body: dict = {"access_token": token.access_token, "scope": token.scope}
    if token.expires_at is not None:
        now = timezone.now()
        body["expires_in"] = max(0, int((token.expires_at - now).total_seconds()))
        body["refresh_token"] = token.refresh_token
        body["refresh_token_expires_in"] = max(
            0, int((token.refresh_token_expires_at - now).total_seconds())
        )
    return body


def dev_token_authenticate(*, shop: DevShop, access_token: str) -> DevAccessToken | None:
    """The token behind an Admin API call, or None (401): unknown, revoked, or expired."""
    token = DevAccessToken.objects.filter(
        shop=shop, access_token=access_token, revoked_at__isnull=True
    ).first()
    if token is None or not shop.app_installed:
        return None
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return None
    return token

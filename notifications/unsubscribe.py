"""Signed one-click unsubscribe tokens (RFC 8058) for email footers and List-Unsubscribe.

    email ─ List-Unsubscribe: <APP_URL/notifications/unsubscribe/<token>> ─▶ mail provider
    provider ─ POST (List-Unsubscribe=One-Click) ─▶ notifications.views.unsubscribe ─▶ Suppression

The token is a ``django.core.signing`` value over (shop id, channel, address): nothing is
stored, and a token cannot be forged or edited to unsubscribe someone else. It never expires:
a link in a months-old email must still work (RFC 8058 gives no lifetime, and a dead
unsubscribe link is a spam complaint waiting to happen). The address is signed, not
encrypted: the token reveals it to whoever holds the link, who is the recipient.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

UNSUBSCRIBE_SALT = "notifications.unsubscribe.v1"


@dataclass(frozen=True)
class UnsubscribeTarget:
    shop_id: int
    channel: str
    address: str


def unsubscribe_token_make(*, shop_id: int, channel: str, address: str) -> str:
    # URL-safe base64 and ':' only: fits one path segment.
    return signing.dumps([shop_id, channel, address], salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> UnsubscribeTarget | None:
    """The target a token names, or None when it is tampered, truncated or malformed."""
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not isinstance(value[0], int)
        or not isinstance(value[1], str)
        or not isinstance(value[2], str)
        or not value[2]
    ):
        return None
    return UnsubscribeTarget(shop_id=value[0], channel=value[1], address=value[2])


def unsubscribe_url(*, shop_id: int, channel: str, address: str) -> str:
    """The absolute one-click URL on APP_URL (not behind the app proxy: mail providers POST
    to it directly, with no Shopify signature)."""
    token = unsubscribe_token_make(shop_id=shop_id, channel=channel, address=address)
    path = reverse("notifications:unsubscribe", kwargs={"token": token})
    return f"{settings.APP_URL}{path}"

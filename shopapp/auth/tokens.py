"""Access and refresh tokens at rest: Fernet-encrypted with ``TOKEN_ENCRYPTION_KEY``.

The key setting may hold several comma-separated keys to rotate them: the first encrypts, any
of them decrypts (``MultiFernet``). The plain tokens only live in memory, on their way to a
Shopify call; they are never logged nor rendered.
"""

from datetime import datetime
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from shopapp.models import Shop


class TokenDecryptError(Exception):
    """A stored token could not be decrypted: the key changed without a rotation."""


@lru_cache(maxsize=4)
def _fernet(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()])


def token_encrypt(*, plain: str) -> str:
    return _fernet(settings.TOKEN_ENCRYPTION_KEY).encrypt(plain.encode()).decode()


def token_decrypt(*, encrypted: str) -> str:
    try:
        return _fernet(settings.TOKEN_ENCRYPTION_KEY).decrypt(encrypted.encode()).decode()
    except InvalidToken as exc:
        # Never chain the value itself into the message: it would end up in a traceback.
        raise TokenDecryptError(
            "stored token cannot be decrypted with TOKEN_ENCRYPTION_KEY"
        ) from exc


def shop_tokens_assign(
    *,
    shop: Shop,
    access_token: str,
    access_token_expires_at: datetime | None,
    refresh_token: str | None,
    refresh_token_expires_at: datetime | None,
) -> None:
    """Put new tokens on ``shop`` (unsaved: the calling service saves in its transaction).

    A ``None`` expiry means a legacy non-expiring offline token, which has no refresh token.
    """
    shop.access_token_encrypted = token_encrypt(plain=access_token)
    shop.access_token_expires_at = access_token_expires_at
    shop.refresh_token_encrypted = token_encrypt(plain=refresh_token) if refresh_token else ""
    shop.refresh_token_expires_at = refresh_token_expires_at if refresh_token else None


def shop_tokens_clear(*, shop: Shop) -> None:
    """Forget the shop's tokens (unsaved), e.g. when Shopify says they are dead."""
    shop.access_token_encrypted = ""
    shop.access_token_expires_at = None
    shop.refresh_token_encrypted = ""
    shop.refresh_token_expires_at = None


def shop_access_token_read(*, shop: Shop) -> str:
    """The stored access token as is, expired or not; "" when there is none.

    Callers that need a token to call Shopify use ``services.shop_access_token_get``, which
    refreshes it first.
    """
    if not shop.access_token_encrypted:
        return ""
    return token_decrypt(encrypted=shop.access_token_encrypted)


def shop_refresh_token_read(*, shop: Shop) -> str:
    if not shop.refresh_token_encrypted:
        return ""
    return token_decrypt(encrypted=shop.refresh_token_encrypted)

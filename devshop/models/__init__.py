"""The development store's own tables (its own database: never the app's)."""

from devshop.models.shops import DevAccessToken, DevAuthorizationCode, DevSetting, DevShop

__all__ = ["DevAccessToken", "DevAuthorizationCode", "DevSetting", "DevShop"]

"""Shops of the development store, and the app's grants and tokens on them."""

from django.db import models


class DevShop(models.Model):
    """A store, as Shopify's ``Shop`` object describes it."""

    shopify_id = models.BigIntegerField(unique=True)
    myshopify_domain = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    email = models.CharField(max_length=255)
    currency_code = models.CharField(max_length=8, default="USD")
    iana_timezone = models.CharField(max_length=64, default="America/New_York")
    primary_locale = models.CharField(max_length=16, default="en")
    # Shopify plan, which sets the GraphQL restore rate (points/s): Standard 100, Advanced 200,
    # Plus 1000, Enterprise 2000. The bucket holds 20 s worth of restore (2,000 at 100/s).
    plan = models.CharField(max_length=32, default="standard")

    # The app's installation on this store (managed install: scopes from shopify.app.toml).
    app_installed = models.BooleanField(default=False)
    granted_scopes = models.TextField(blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    # Admin API requests this store answered (any outcome): tests and benchmarks read it to
    # show that a page view called Shopify, or did not.
    admin_api_requests = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.myshopify_domain


class DevAuthorizationCode(models.Model):
    """An authorization code from ``/admin/oauth/authorize``: good once, for a short time."""

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=64, unique=True)
    scope = models.TextField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class DevAccessToken(models.Model):
    """An access token the store issued to the app, with its refresh token when expiring.

    ``replaced_by`` and ``replaced_at`` let a refresh repeated within the retry window return
    the same answer, as Shopify does, while the old refresh token is otherwise void at once.
    """

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="tokens")
    access_token = models.CharField(max_length=128, unique=True)
    scope = models.TextField()
    # Null for a legacy non-expiring offline token.
    expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token = models.CharField(max_length=128, unique=True, null=True, blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replaced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class DevSetting(models.Model):
    """Runtime knobs of the store that tests and the demo turn through the control API
    (token lifetimes, chaos switches, clock speed…), falling back to ``settings``."""

    key = models.CharField(max_length=64, unique=True)
    value = models.JSONField()

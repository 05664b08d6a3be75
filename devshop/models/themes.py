"""The store's online store themes, as Shopify's ``OnlineStoreTheme`` describes them.

Only what the app reads is kept: the name, the role, and ``config/settings_data.json`` (the
theme editor's saved settings, colours among them), stored as the text Shopify serves,
including the comment block its editor writes at the top.
"""

from django.db import models
from django.utils import timezone

from devshop.models.orders import shopify_id_next
from devshop.models.shops import DevShop


class DevTheme(models.Model):
    class Role(models.TextChoices):
        # ThemeRole (GraphQL Admin API); the devshop uses MAIN and UNPUBLISHED.
        MAIN = "MAIN"
        UNPUBLISHED = "UNPUBLISHED"
        DEVELOPMENT = "DEVELOPMENT"

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="themes")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    name = models.CharField(max_length=255)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.UNPUBLISHED)
    settings_data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"

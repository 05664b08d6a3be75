"""Webhook subscriptions and the delivery outbox of the development store.

The app's ``shopify.app.toml`` subscriptions are implied for an installed app and have no row;
``DevWebhookSubscription`` holds the shop-specific ones that ``webhookSubscriptionCreate``
makes. Every delivery is an outbox row (``DevWebhookDelivery``) with its body serialized once,
so retries carry the original bytes, as Shopify's do.
"""

import random

from django.db import models

from devshop.models.shops import DevShop


def _subscription_id_next() -> int:
    return random.randint(10**12, 10**13)


class DevWebhookSubscription(models.Model):
    """A shop-specific subscription made through the Admin API (``webhookSubscriptionCreate``).

    Shopify deletes such a subscription after 8 consecutive failed deliveries; TOML
    subscriptions are not deleted (shopify.dev, webhooks troubleshooting).
    """

    shop = models.ForeignKey(
        DevShop, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    shopify_id = models.BigIntegerField(unique=True, default=_subscription_id_next)
    # Shopify's REST spelling, e.g. "orders/create" (GraphQL's ORDERS_CREATE is derived).
    topic = models.CharField(max_length=128)
    uri = models.CharField(max_length=2048)
    api_version = models.CharField(max_length=32)
    name = models.CharField(max_length=255, blank=True)
    # Stored as given; the devshop does not apply them (payloads are sent whole).
    filter = models.TextField(blank=True)
    include_fields = models.JSONField(default=list, blank=True)
    format = models.CharField(max_length=16, default="json")
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "topic", "uri"], name="devshop_webhook_sub_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} → {self.uri}"


class DevWebhookDelivery(models.Model):
    """One delivery of one event to one subscription: the outbox row and its retry schedule."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        # Every retry used up: Shopify stops trying.
        FAILED = "failed", "Failed"

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="webhook_deliveries")
    # Null for the app's TOML subscriptions (and once an API subscription was deleted).
    subscription = models.ForeignKey(
        DevWebhookSubscription,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    topic = models.CharField(max_length=128)
    # Retries go to the address that was current when the event fired (Shopify), so it is
    # copied here rather than read from the subscription at send time.
    uri = models.CharField(max_length=2048)
    api_version = models.CharField(max_length=32)
    name = models.CharField(max_length=255, blank=True)
    webhook_id = models.CharField(max_length=64, unique=True)
    event_id = models.CharField(max_length=64, db_index=True)
    triggered_at = models.DateTimeField()
    # The exact bytes signed and sent, every attempt.
    body = models.BinaryField()
    order_id = models.BigIntegerField(null=True, blank=True)
    is_test = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    # [{"at": iso, "status_code": int | None, "error": str, "duration_ms": int, "duplicate": bool}]
    attempt_log = models.JSONField(default=list, blank=True)
    # Chaos: extra sends of the same delivery (same X-Shopify-Webhook-Id).
    duplicates_sent = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id}"

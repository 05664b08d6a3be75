"""Returns, shaped after Shopify's ``Return`` and ``ReturnLineItem`` (Admin GraphQL API).

Statuses as ``ReturnStatus`` spells them. The flow (shopify.dev, "Build a return management
workflow"): ``returnRequest`` → REQUESTED; the merchant approves (OPEN) or declines
(DECLINED); ``returnProcess`` confirms what came back and settles it (refund, store credit);
a return whose every line is processed is CLOSED; an unprocessed return can be CANCELED.
"""

from decimal import Decimal

from django.db import models
from django.utils import timezone

from devshop.models.orders import DevFulfillmentLineItem, DevOrder, shopify_id_next
from devshop.models.shops import DevShop


class DevReturn(models.Model):
    class Status(models.TextChoices):
        # ReturnStatus (GraphQL Admin API).
        REQUESTED = "REQUESTED"
        OPEN = "OPEN"
        DECLINED = "DECLINED"
        CANCELED = "CANCELED"
        CLOSED = "CLOSED"

    class DeclineReason(models.TextChoices):
        # ReturnDeclineReason (GraphQL Admin API).
        FINAL_SALE = "FINAL_SALE"
        RETURN_PERIOD_ENDED = "RETURN_PERIOD_ENDED"
        OTHER = "OTHER"

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="returns")
    order = models.ForeignKey(DevOrder, on_delete=models.CASCADE, related_name="returns")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    # Shopify names returns after the order: "#1001-R1", "#1001-R2".
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    decline_reason = models.CharField(
        max_length=32, choices=DeclineReason.choices, blank=True, default=""
    )
    decline_note = models.TextField(blank=True)
    return_shipping_fee = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # What returnProcess settled, in the shop's currency.
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    store_credit_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    request_approved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "status"])]

    def __str__(self) -> str:
        return self.name


class DevReturnLineItem(models.Model):
    class Reason(models.TextChoices):
        # ReturnReason (deprecated in 2026-01 for return reason definitions; still accepted).
        COLOR = "COLOR"
        DEFECTIVE = "DEFECTIVE"
        NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
        OTHER = "OTHER"
        SIZE_TOO_LARGE = "SIZE_TOO_LARGE"
        SIZE_TOO_SMALL = "SIZE_TOO_SMALL"
        STYLE = "STYLE"
        UNKNOWN = "UNKNOWN"
        UNWANTED = "UNWANTED"
        WRONG_ITEM = "WRONG_ITEM"

    return_obj = models.ForeignKey(
        DevReturn, on_delete=models.CASCADE, related_name="return_line_items"
    )
    fulfillment_line_item = models.ForeignKey(
        DevFulfillmentLineItem, on_delete=models.CASCADE, related_name="return_line_items"
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    quantity = models.PositiveIntegerField()
    processed_quantity = models.PositiveIntegerField(default=0)
    return_reason = models.CharField(max_length=32, choices=Reason.choices, default=Reason.UNKNOWN)
    # The ReturnReasonDefinition's stable handle (2026-01), e.g. "size-too-small".
    return_reason_handle = models.CharField(max_length=64, blank=True)
    return_reason_note = models.CharField(max_length=255, blank=True)
    customer_note = models.CharField(max_length=300, blank=True)
    restocking_fee_percentage = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

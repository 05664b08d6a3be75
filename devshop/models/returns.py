"""Returns, shaped after Shopify's ``Return`` and ``ReturnLineItem`` (Admin GraphQL API).

Statuses as ``ReturnStatus`` spells them. The flow (shopify.dev, "Build a return management
workflow"): ``returnRequest`` → REQUESTED; the merchant approves (OPEN) or declines
(DECLINED); ``returnProcess`` confirms what came back and settles it (refund, store credit);
a return whose every line is processed is CLOSED; an unprocessed return can be CANCELED.
"""

from decimal import Decimal

from django.db import models
from django.utils import timezone

from devshop.models.orders import (
    DevFulfillmentLineItem,
    DevLineItem,
    DevOrder,
    DevVariant,
    shopify_id_next,
)
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

    class MadeBy(models.TextChoices):
        # The devshop's own bookkeeping, not a Shopify field (never in payloads): who made the
        # return, so the simulation leaves the app's returns to the merchant in the app.
        APP = "app"  # returnRequest / returnCreate through the Admin API
        MERCHANT = "merchant"  # the simulated merchant, in Shopify's admin

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="returns")
    order = models.ForeignKey(DevOrder, on_delete=models.CASCADE, related_name="returns")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    # Shopify names returns after the order: "#1001-R1", "#1001-R2".
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    made_by = models.CharField(max_length=16, choices=MadeBy.choices, default=MadeBy.APP)
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
    # ReturnInput.requestedAt: when the buyer first asked (returnCreate); null otherwise.
    requested_at = models.DateTimeField(null=True, blank=True)
    # What a buyer-owes exchange still has to collect (its fulfillment is held until paid).
    exchange_amount_due = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

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


# -- Exchanges and reverse logistics (Admin GraphQL: ExchangeLineItem, ReverseFulfillmentOrder,
# ReverseDelivery, ReverseFulfillmentOrderDisposition; stagedUploadsCreate for return labels) --


class DevExchangeLineItem(models.Model):
    """A variant the buyer gets in exchange (``ReturnInput.exchangeLineItems``). Shopify books
    the sale only when ``returnProcess`` confirms it: then a new order line item is made."""

    class HoldReason(models.TextChoices):
        # FulfillmentHoldReason: only buyer-owes exchanges wait for payment.
        AWAITING_PAYMENT = "AWAITING_PAYMENT"

    return_obj = models.ForeignKey(
        DevReturn, on_delete=models.CASCADE, related_name="exchange_line_items"
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    variant = models.ForeignKey(
        DevVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField()
    processed_quantity = models.PositiveIntegerField(default=0)
    # Unit price after the exchange line's applied discount, in the shop's currency.
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    # The order line item booked at processing (None before).
    line_item = models.ForeignKey(
        DevLineItem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="exchange_line_items",
    )
    hold_reason = models.CharField(
        max_length=32, choices=HoldReason.choices, blank=True, default=""
    )

    class Meta:
        ordering = ["id"]


class DevReverseFulfillmentOrder(models.Model):
    """The items of an approved return, to be received at a location (one per return here)."""

    class Status(models.TextChoices):
        # ReverseFulfillmentOrderStatus.
        OPEN = "OPEN"
        CLOSED = "CLOSED"
        CANCELED = "CANCELED"

    return_obj = models.ForeignKey(
        DevReturn, on_delete=models.CASCADE, related_name="reverse_fulfillment_orders"
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]


class DevReverseFulfillmentOrderLineItem(models.Model):
    reverse_fulfillment_order = models.ForeignKey(
        DevReverseFulfillmentOrder, on_delete=models.CASCADE, related_name="line_items"
    )
    return_line_item = models.ForeignKey(
        DevReturnLineItem,
        on_delete=models.CASCADE,
        related_name="reverse_fulfillment_order_line_items",
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    total_quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]


class DevReverseDelivery(models.Model):
    """A buyer's parcel back to the merchant, with its shipping deliverable (tracking, label)."""

    reverse_fulfillment_order = models.ForeignKey(
        DevReverseFulfillmentOrder, on_delete=models.CASCADE, related_name="reverse_deliveries"
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    carrier_name = models.CharField(max_length=255, blank=True)
    tracking_number = models.CharField(max_length=255, blank=True)
    tracking_url = models.CharField(max_length=2048, blank=True)
    # The label as given (labelInput.fileUrl) and where the store serves it.
    label_file_url = models.CharField(max_length=2048, blank=True)
    label_public_url = models.CharField(max_length=2048, blank=True)
    label_created_at = models.DateTimeField(null=True, blank=True)
    label_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]


class DevReverseDeliveryLineItem(models.Model):
    reverse_delivery = models.ForeignKey(
        DevReverseDelivery, on_delete=models.CASCADE, related_name="line_items"
    )
    reverse_fulfillment_order_line_item = models.ForeignKey(
        DevReverseFulfillmentOrderLineItem,
        on_delete=models.CASCADE,
        related_name="reverse_delivery_line_items",
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]


class DevReverseFulfillmentOrderDisposition(models.Model):
    class Type(models.TextChoices):
        # ReverseFulfillmentOrderDispositionType.
        MISSING = "MISSING"
        NOT_RESTOCKED = "NOT_RESTOCKED"
        PROCESSING_REQUIRED = "PROCESSING_REQUIRED"
        RESTOCKED = "RESTOCKED"

    reverse_fulfillment_order_line_item = models.ForeignKey(
        DevReverseFulfillmentOrderLineItem, on_delete=models.CASCADE, related_name="dispositions"
    )
    reverse_delivery_line_item = models.ForeignKey(
        DevReverseDeliveryLineItem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dispositions",
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    type = models.CharField(max_length=32, choices=Type.choices)
    quantity = models.PositiveIntegerField()
    # The Location's numeric id (the devshop has one location per shop).
    location_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]


class DevStagedUpload(models.Model):
    """A staged upload target (stagedUploadsCreate) and, once sent, the file it received."""

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="staged_uploads")
    key = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=255)
    resource = models.CharField(max_length=64)
    http_method = models.CharField(max_length=8, default="PUT")
    content = models.BinaryField(null=True, blank=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

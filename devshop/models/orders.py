"""The store's catalogue and orders, shaped after Shopify's Admin API objects.

Statuses are stored as the GraphQL Admin API spells its enums (``PAID``, ``UNFULFILLED``,
``IN_TRANSIT``…): the GraphQL layer returns them as they are, the REST webhook payloads
lowercase them. ``shipment_status`` is the exception: it only exists in REST, so it is stored
as REST spells it (``in_transit``, ``out_for_delivery``…).

Amounts are in the shop's currency; ``presentment_currency`` and ``exchange_rate`` give what
the shopper saw (Shopify's ``shopMoney`` / ``presentmentMoney`` pair of a ``MoneyBag``).
"""

import itertools
import threading
import time
from decimal import Decimal

from django.db import models
from django.utils import timezone

from devshop.models.shops import DevShop

_id_lock = threading.Lock()
_id_counter = itertools.count()


def shopify_id_next() -> int:
    """A new numeric resource id, as Shopify's (large, increasing, unique across the store).

    Milliseconds since the epoch times 1,000 plus a per-process counter: increasing across
    restarts of the store, so a reset devshop never hands out an id the app has seen before.
    """
    with _id_lock:
        return int(time.time() * 1000) * 1000 + next(_id_counter) % 1000


class DevCustomer(models.Model):
    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="customers")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    locale = models.CharField(max_length=16, default="en")
    tags = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class DevProduct(models.Model):
    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="products")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    title = models.CharField(max_length=255)
    handle = models.CharField(max_length=255)
    vendor = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    # Comma-separated, as Shopify's REST payloads spell tags.
    tags = models.TextField(blank=True)
    # The product's featured image, which Shopify gives line items of its variants
    # (LineItem.image). Empty: the picture the devshop draws for it (devshop.cdn), so the demo
    # shows real images; set: that URL as given (a test's stand-in for Shopify's CDN).
    image_url = models.CharField(max_length=1024, blank=True)
    # False: the merchant uploaded no image (LineItem.image is null).
    has_image = models.BooleanField(default=True)
    # Product.status (ProductStatus): only ACTIVE products are on the online store.
    status = models.CharField(max_length=16, default="ACTIVE")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.title


class DevVariant(models.Model):
    product = models.ForeignKey(DevProduct, on_delete=models.CASCADE, related_name="variants")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    # "Default Title" when the product has no options, as Shopify names it.
    title = models.CharField(max_length=255, default="Default Title")
    sku = models.CharField(max_length=255, blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=2)
    requires_shipping = models.BooleanField(default=True)
    grams = models.PositiveIntegerField(default=0)
    # ProductVariant.availableForSale: the devshop keeps no inventory, so this stands for
    # "in stock, or sold when out of stock" and is set by hand (control API) to test sold-out.
    available_for_sale = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.product.title} - {self.title}"


class DevOrder(models.Model):
    class FinancialStatus(models.TextChoices):
        # OrderDisplayFinancialStatus (GraphQL Admin API).
        AUTHORIZED = "AUTHORIZED"
        EXPIRED = "EXPIRED"
        PAID = "PAID"
        PARTIALLY_PAID = "PARTIALLY_PAID"
        PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
        PENDING = "PENDING"
        REFUNDED = "REFUNDED"
        VOIDED = "VOIDED"

    class FulfillmentStatus(models.TextChoices):
        # OrderDisplayFulfillmentStatus (GraphQL Admin API).
        FULFILLED = "FULFILLED"
        # 2026-10: nothing on the order needs shipping (digital goods, gift cards).
        FULFILLMENT_NOT_REQUIRED = "FULFILLMENT_NOT_REQUIRED"
        IN_PROGRESS = "IN_PROGRESS"
        ON_HOLD = "ON_HOLD"
        OPEN = "OPEN"
        PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
        PENDING_FULFILLMENT = "PENDING_FULFILLMENT"
        REQUEST_DECLINED = "REQUEST_DECLINED"
        RESTOCKED = "RESTOCKED"
        SCHEDULED = "SCHEDULED"
        UNFULFILLED = "UNFULFILLED"

    class CancelReason(models.TextChoices):
        # OrderCancelReason (GraphQL Admin API).
        CUSTOMER = "CUSTOMER"
        DECLINED = "DECLINED"
        FRAUD = "FRAUD"
        INVENTORY = "INVENTORY"
        OTHER = "OTHER"
        STAFF = "STAFF"

    shop = models.ForeignKey(DevShop, on_delete=models.CASCADE, related_name="orders")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    # Shopify: order_number counts from 1001 per shop; name is "#" + number by default.
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=64)
    email = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    customer = models.ForeignKey(
        DevCustomer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    customer_locale = models.CharField(max_length=16, blank=True)
    buyer_accepts_marketing = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    source_name = models.CharField(max_length=64, default="web")

    currency = models.CharField(max_length=8)
    presentment_currency = models.CharField(max_length=8)
    # Presentment units per shop unit (1 when the shopper paid in the shop's currency).
    exchange_rate = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("1"))
    subtotal_price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_discounts = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_tax = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_shipping = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_price = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    financial_status = models.CharField(
        max_length=32, choices=FinancialStatus.choices, default=FinancialStatus.PAID
    )
    fulfillment_status = models.CharField(
        max_length=32, choices=FulfillmentStatus.choices, default=FulfillmentStatus.UNFULFILLED
    )

    # Addresses in Shopify's REST shape (first_name, address1, city, province_code,
    # country_code, zip, …): the webhooks send them as they are.
    shipping_address = models.JSONField(null=True, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    tags = models.TextField(blank=True)
    test = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    # Set by the services on every change (not auto_now): tests may set it explicitly to
    # reproduce out-of-order deliveries.
    updated_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(
        max_length=16, choices=CancelReason.choices, blank=True, default=""
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "number"], name="devorder_number_per_shop")
        ]
        indexes = [
            models.Index(fields=["shop", "updated_at", "id"]),
            models.Index(fields=["shop", "created_at", "id"]),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]


class DevLineItem(models.Model):
    order = models.ForeignKey(DevOrder, on_delete=models.CASCADE, related_name="line_items")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    product = models.ForeignKey(
        DevProduct, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    variant = models.ForeignKey(
        DevVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=255)
    variant_title = models.CharField(max_length=255, blank=True)
    sku = models.CharField(max_length=255, blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField()
    # quantity minus refunded and removed units (Shopify's currentQuantity).
    current_quantity = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=14, decimal_places=2)
    total_discount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    requires_shipping = models.BooleanField(default=True)
    is_gift_card = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.title


class DevFulfillment(models.Model):
    class Status(models.TextChoices):
        # FulfillmentStatus (GraphQL Admin API); OPEN and PENDING are deprecated there.
        SUCCESS = "SUCCESS"
        CANCELLED = "CANCELLED"
        ERROR = "ERROR"
        FAILURE = "FAILURE"
        OPEN = "OPEN"
        PENDING = "PENDING"

    order = models.ForeignKey(DevOrder, on_delete=models.CASCADE, related_name="fulfillments")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    # "#1001.1", "#1001.2": Shopify numbers an order's fulfillments.
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUCCESS)
    # REST's shipment_status (label_printed, label_purchased, confirmed, in_transit,
    # out_for_delivery, attempted_delivery, delayed, ready_for_pickup, picked_up, delivered,
    # failure, carrier_picked_up); empty until a carrier reports.
    shipment_status = models.CharField(max_length=32, blank=True)
    # FulfillmentDisplayStatus (GraphQL), e.g. FULFILLED, IN_TRANSIT, DELIVERED.
    display_status = models.CharField(max_length=32, default="FULFILLED")
    tracking_company = models.CharField(max_length=255, blank=True)
    tracking_numbers = models.JSONField(default=list, blank=True)
    tracking_urls = models.JSONField(default=list, blank=True)
    location_name = models.CharField(max_length=255, blank=True)
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    in_transit_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class DevFulfillmentLineItem(models.Model):
    fulfillment = models.ForeignKey(
        DevFulfillment, on_delete=models.CASCADE, related_name="fulfillment_line_items"
    )
    line_item = models.ForeignKey(
        DevLineItem, on_delete=models.CASCADE, related_name="fulfillment_line_items"
    )
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    quantity = models.PositiveIntegerField()


class DevFulfillmentEvent(models.Model):
    class Status(models.TextChoices):
        # FulfillmentEventStatus (GraphQL Admin API).
        ATTEMPTED_DELIVERY = "ATTEMPTED_DELIVERY"
        CARRIER_PICKED_UP = "CARRIER_PICKED_UP"
        CONFIRMED = "CONFIRMED"
        DELAYED = "DELAYED"
        DELIVERED = "DELIVERED"
        FAILURE = "FAILURE"
        IN_TRANSIT = "IN_TRANSIT"
        LABEL_PRINTED = "LABEL_PRINTED"
        LABEL_PURCHASED = "LABEL_PURCHASED"
        OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
        READY_FOR_PICKUP = "READY_FOR_PICKUP"

    fulfillment = models.ForeignKey(DevFulfillment, on_delete=models.CASCADE, related_name="events")
    shopify_id = models.BigIntegerField(unique=True, default=shopify_id_next)
    status = models.CharField(max_length=32, choices=Status.choices)
    happened_at = models.DateTimeField()
    message = models.TextField(blank=True)
    address1 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=255, blank=True)
    province = models.CharField(max_length=255, blank=True)
    country = models.CharField(max_length=255, blank=True)
    zip = models.CharField(max_length=32, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["happened_at", "id"]

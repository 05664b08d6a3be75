"""Return policy, return requests and their items, photos, and the blocklist.

A request is stored the moment the shopper submits it and sent to Shopify by a job; Shopify is
then the source of truth: its returns webhooks move ``status`` (Shopify's ``ReturnStatus``
strings, an open set) and the timestamps.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from shopapp.models import LineItem, Order, Shop


class Resolution(models.TextChoices):
    REFUND = "refund", _("Refund to the original payment")
    STORE_CREDIT = "store_credit", _("Store credit")
    EXCHANGE = "exchange", _("Exchange for another variant")
    # A request whose items were given different resolutions (each line carries its own).
    MIXED = "mixed", _("Per item")


# What a shopper may choose for one item (MIXED only ever describes a whole request).
ITEM_RESOLUTIONS = (Resolution.REFUND, Resolution.STORE_CREDIT, Resolution.EXCHANGE)


class ReturnPolicy(models.Model):
    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, related_name="return_policy")
    # Counted from delivery; without a delivery event, from fulfillment plus the allowance.
    window_days = models.PositiveIntegerField(default=30)
    transit_allowance_days = models.PositiveIntegerField(default=7)
    # Off (the default): an item on its way cannot be returned until it is delivered, or,
    # without a delivery scan, until the transit allowance since shipping has passed
    # (Shopify's own self-serve rule). On: as soon as it has shipped.
    allows_return_before_delivery = models.BooleanField(
        "Returns before delivery",
        default=False,
        help_text="Let shoppers start a return while the parcel is still on its way.",
    )
    # Comma-separated, case-insensitive.
    excluded_product_tags = models.TextField(blank=True, default="final-sale")
    excluded_product_types = models.TextField(blank=True)
    exclude_discounted_items = models.BooleanField(default=False)

    allow_refund = models.BooleanField(default=True)
    allow_store_credit = models.BooleanField(default=True)
    allow_exchange = models.BooleanField(default=True)
    # Exchange for any product of the shop, not only another size or colour of the same one
    # (returns.catalogue). Dearer is allowed: the shopper owes the difference, which Shopify
    # collects as the order's outstanding balance before it ships the new item.
    allow_product_exchange = models.BooleanField(
        "Exchange for a different product",
        default=False,
        help_text=(
            "Shoppers may exchange for any product in stock. Cheaper: the difference is "
            "refunded. Dearer: the shopper pays the difference before the new item ships."
        ),
    )
    restocking_fee_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    return_shipping_fee = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    # "Keep the item": a return whose items are worth at most this (refund or store credit
    # only) is settled without sending anything back, nor paying return shipping. 0: off.
    keep_items_max_value = models.DecimalField(
        "Keep the items up to",
        max_digits=10,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="Returns worth at most this need not be sent back. 0 turns it off.",
    )
    # Added to what an item settled as store credit brings back (after its restocking fee):
    # merchants pay a little more to keep the money in the shop. Recorded on each request at
    # submission, so a later change of policy never changes what a shopper was promised.
    store_credit_bonus_percent = models.DecimalField(
        "Store credit bonus (%)",
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Extra credit for shoppers who choose store credit, e.g. 10 for +10%.",
    )

    # Shopify ReturnReason values offered (API ≤ 2025-10), or ReturnReasonDefinition handles.
    reasons = models.JSONField(
        default=list,
        blank=True,
        help_text="Empty: every Shopify ReturnReason except UNKNOWN.",
    )
    # {product type: [reasons]}: the reasons offered for items of that type, e.g. no size
    # reasons for "Beauty". Empty: returns.policy.DEFAULT_REASONS_BY_PRODUCT_TYPE.
    reasons_by_product_type = models.JSONField(
        default=dict,
        blank=True,
        help_text="Empty: no size, colour or style reasons for beauty, food, books, electronics.",
    )
    reasons_requiring_note = models.JSONField(default=list, blank=True)
    reasons_requiring_photo = models.JSONField(default=list, blank=True)

    # Auto-approve when every rule holds.
    is_auto_approve = models.BooleanField(default=False)
    auto_approve_max_value = models.DecimalField(max_digits=10, decimal_places=2, default=100)
    auto_approve_excluded_reasons = models.JSONField(default=list, blank=True)
    # A customer whose returns / orders is at or above this is flagged for review.
    high_return_ratio = models.DecimalField(max_digits=4, decimal_places=2, default=0.5)

    updated_at = models.DateTimeField(auto_now=True)


class ReturnRequest(models.Model):
    class Status(models.TextChoices):
        # Local only: stored, not yet accepted by Shopify.
        SUBMITTED = "SUBMITTED", _("Submitted")
        # Shopify's ReturnStatus.
        REQUESTED = "REQUESTED", _("Requested")
        OPEN = "OPEN", _("Approved")
        DECLINED = "DECLINED", _("Declined")
        CANCELED = "CANCELED", _("Canceled")
        CLOSED = "CLOSED", _("Closed")

    class SyncState(models.TextChoices):
        PENDING = "pending", "Waiting to be sent to Shopify"
        SYNCED = "synced", "In Shopify"
        FAILED = "failed", "Shopify refused it"
        # An exchange request: ``returnRequest`` carries no exchange lines (API 2026-10), so it
        # waits here and is created with ``returnCreate`` when the merchant approves it.
        HELD = "held", "Kept here until approved"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="return_requests")
    shopify_return_id = models.BigIntegerField(null=True, blank=True)
    name = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32, default=Status.SUBMITTED)
    sync_state = models.CharField(
        max_length=16, choices=SyncState.choices, default=SyncState.PENDING
    )
    # Shopify's userErrors or our reason, in words a shopper can read.
    sync_error = models.TextField(blank=True)
    # Set (and committed) before the create call: a retry after a timeout looks the return up
    # in Shopify first instead of creating a second one.
    send_started_at = models.DateTimeField(null=True, blank=True)

    # The items' resolutions: one of them when all agree, else MIXED (see ReturnLineItem).
    resolution = models.CharField(max_length=16, choices=Resolution.choices)
    customer_id = models.BigIntegerField(null=True, blank=True)
    customer_email = models.CharField(max_length=255, blank=True)
    # Estimate shown to the shopper at review: items minus restocking and shipping fees.
    # What the shopper gets back in all (original payment and store credit, bonus included),
    # and the store credit's part of it, as returns.eligibility.return_quote computed them
    # for the review.
    refund_estimate = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    store_credit_estimate = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    @property
    def original_payment_estimate(self):
        """The part of ``refund_estimate`` paid back to the original payment."""
        return self.refund_estimate - self.store_credit_estimate

    # The shopper keeps the items (the policy's keep_items_max_value): nothing is shipped
    # back, no return shipping fee is kept, the store settles without receiving anything.
    is_returnless = models.BooleanField(default=False)
    # The policy's store credit bonus when the shopper submitted: honoured at processing.
    store_credit_bonus_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    currency = models.CharField(max_length=8, blank=True)

    # Merchant's side.
    approval_instructions = models.TextField(blank=True)
    label_file = models.FileField(upload_to="returns/labels/", blank=True)
    # Reverse logistics in Shopify: the return's reverse fulfillment order (named by the
    # reverse_fulfillment_orders/dispose webhook), the delivery carrying the label and tracking.
    reverse_fulfillment_order_gid = models.CharField(max_length=255, blank=True)
    reverse_delivery_gid = models.CharField(max_length=255, blank=True)
    label_url = models.CharField(max_length=1000, blank=True)
    return_tracking_number = models.CharField(max_length=255, blank=True)
    return_tracking_url = models.CharField(max_length=1000, blank=True)
    # What the buyer still owes on the order after an exchange worth more than the return
    # (Order.totalOutstandingSet): Shopify holds the exchange until it is paid.
    amount_outstanding = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # Money paid back by returnProcess in all (original payment or store credit): a refund,
    # or what an exchange for something cheaper left the shopper.
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    decline_reason = models.CharField(max_length=32, blank=True)
    decline_note = models.CharField(max_length=500, blank=True)

    requested_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # X-Shopify-Triggered-At of the webhook that last set ``status`` (Shopify's clock, never
    # the app's): an older webhook never moves the status (see returns.services).
    shopify_status_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "shopify_return_id"], name="return_unique_shopify_id_per_shop"
            )
        ]
        indexes = [
            models.Index(fields=["shop", "status", "-created_at"]),
            # The admin's orders search by return name ("#1001-R1", any case).
            models.Index(models.F("shop"), Upper("name"), name="return_shop_upper_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name or f"return {self.pk}"

    @property
    def status_label(self) -> str:
        """``status`` in words. An open set (Shopify adds statuses), so the field has no
        choices: a status this app does not know yet is shown as Shopify names it."""
        try:
            return str(self.Status(self.status).label)
        except ValueError:
            return self.status.replace("_", " ").capitalize()


class ReturnLineItem(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="line_items"
    )
    line_item = models.ForeignKey(LineItem, on_delete=models.PROTECT, related_name="+")
    fulfillment_line_item_gid = models.CharField(max_length=255, blank=True)
    shopify_return_line_item_gid = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField()
    # Units back and disposed in Shopify (restocked or not), never more than ``quantity``.
    received_quantity = models.PositiveIntegerField(default=0)
    # Units the reverse_fulfillment_orders/dispose webhooks reported in all. Like the totals
    # a dispose call's answer brings, a lower bound of what Shopify has disposed, so
    # ``received_quantity`` is the larger of the two: the echo of our own call, whenever it
    # arrives, adds nothing the answer already counted.
    dispose_webhook_quantity = models.PositiveIntegerField(default=0)
    # Units confirmed by returnProcess so far: a later returnProcess sends only the rest.
    processed_quantity = models.PositiveIntegerField(default=0)
    reverse_fulfillment_order_line_item_gid = models.CharField(max_length=255, blank=True)
    # Shopify's ReturnReason (e.g. SIZE_TOO_SMALL) or a ReturnReasonDefinition handle.
    reason = models.CharField(max_length=64)
    # What the shopper wants for this item (refund, store credit or exchange); blank on rows
    # made before resolutions were per item, which follow the request's.
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    # This line's share of the review's estimate: its value less the restocking fee, plus the
    # store credit bonus; 0 for an exchange (the value goes to the new item).
    estimate = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    customer_note = models.CharField(max_length=300, blank=True)
    exchange_variant_id = models.BigIntegerField(null=True, blank=True)
    exchange_variant_title = models.CharField(max_length=255, blank=True)
    # The ExchangeLineItem returnCreate made for this line (same quantity), and how many of
    # its units returnProcess has booked on the order.
    shopify_exchange_line_item_gid = models.CharField(max_length=255, blank=True)
    exchange_processed_quantity = models.PositiveIntegerField(default=0)

    @property
    def effective_resolution(self) -> str:
        return self.resolution or self.return_request.resolution


class ReturnPhoto(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    return_line_item = models.ForeignKey(
        ReturnLineItem, on_delete=models.CASCADE, related_name="photos"
    )
    # Decoded and encoded afresh before it was kept (returns.images): pixels, no metadata.
    image = models.FileField(upload_to="returns/photos/")
    # The admin's small copy (returns.images.THUMBNAIL_EDGE); empty for photos kept before.
    thumbnail = models.FileField(upload_to="returns/photos/thumbs/", blank=True)
    content_type = models.CharField(max_length=32)
    size_bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class ReturnBlocklistEntry(models.Model):
    """Emails whose return requests the merchant refuses outright."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    email = models.CharField(max_length=255)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "email"], name="blocklist_unique_per_shop")
        ]


class ProductInfo(models.Model):
    """A product's tags, type and variants, read through GraphQL when the portal needs them.

    The order mirror does not carry them (REST line items have no tags), and the app
    subscribes to no products/* topic. Kept in the database, not a process cache, so web and
    worker processes share one copy. Page views take rows up to
    ``returns.eligibility.PRODUCT_FACTS_PAGE_TTL`` old; the submission reads tags and type again
    once older than ``PRODUCT_INFO_TTL``, which bounds how long a product newly tagged "final
    sale" can still be returned.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    product_id = models.BigIntegerField()
    tags = models.JSONField(default=list, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    fetched_at = models.DateTimeField()
    # The product's variants as [[variant id, title, available for sale]], for the portal's
    # exchange choices; read with the tags (``variants_fetched_at``), never by the submit
    # check's tags-only read, which leaves them as they were.
    variants = models.JSONField(default=list, blank=True)
    variants_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "product_id"], name="product_info_unique_per_shop"
            )
        ]

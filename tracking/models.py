"""Shipments and their tracking events, delay findings, and per-shop tracking settings.

Shopify's status strings are stored as they come (new API versions add values); ``stage`` is
our small, shopper-facing reading of them (see ``tracking.stages``).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from shopapp.models import Order, Shop


class Stage(models.TextChoices):
    """What a shopper understands. The main line, then the branches."""

    ORDERED = "ordered", _("Ordered")
    SHIPPED = "shipped", _("Shipped")
    IN_TRANSIT = "in_transit", _("In transit")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    DELIVERED = "delivered", _("Delivered")
    ATTEMPTED_DELIVERY = "attempted_delivery", _("Delivery attempted")
    READY_FOR_PICKUP = "ready_for_pickup", _("Ready for pickup")
    DELAYED = "delayed", _("Delayed")
    PROBLEM = "problem", _("Problem")


class Shipment(models.Model):
    """One Shopify fulfillment: what left the warehouse together, and where it is."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    fulfillment_id = models.BigIntegerField()
    admin_graphql_api_id = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=64, blank=True)

    # Shopify's own strings: fulfillment ``status`` (pending, open, success, cancelled, error,
    # failure) and ``shipment_status`` (label_printed … delivered, failure), open sets.
    status = models.CharField(max_length=64, blank=True)
    shipment_status = models.CharField(max_length=64, blank=True)
    stage = models.CharField(max_length=32, choices=Stage.choices, default=Stage.SHIPPED)

    tracking_company = models.CharField(max_length=255, blank=True)
    tracking_numbers = models.JSONField(default=list, blank=True)
    tracking_urls = models.JSONField(default=list, blank=True)
    destination_country_code = models.CharField(max_length=8, blank=True)
    # The region (ISO 3166-2 subdivision: "ON", "KY") and its name as Shopify spells it: the
    # delivery estimates group past deliveries by carrier, country and region
    # (tracking.estimates). Not the shopper's address: a region holds millions.
    destination_province_code = models.CharField(max_length=16, blank=True)
    destination_province = models.CharField(max_length=255, blank=True)
    # The order's shipping rate when the parcel left ("Express"), "" when unknown: the
    # estimates' service.
    service = models.CharField(max_length=255, blank=True)

    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    in_transit_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The newest carrier scan: "no movement for N days" is measured from here.
    last_event_at = models.DateTimeField(null=True, blank=True)

    shopify_created_at = models.DateTimeField(null=True, blank=True)
    shopify_updated_at = models.DateTimeField(null=True, blank=True)
    # GraphQL ``Fulfillment.displayStatus`` (open set, stored as REST-style lower_snake).
    display_status = models.CharField(max_length=64, blank=True)
    # Last successful read of this fulfillment through GraphQL: the in-flight refresh picks
    # the least recently refreshed shipments first.
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "fulfillment_id"], name="shipment_unique_per_shop"
            )
        ]
        # "By order" is the order FK's own index (a second one on the same column was paid for
        # on every write and never chosen: tests/perf/test_indexes.py).
        indexes = [
            models.Index(fields=["shop", "stage"]),
            models.Index(fields=["shop", "refreshed_at"]),
            # The admin's home lists a shop's parcels in trouble, latest news first: a shop
            # with a million orders has tens of thousands, which a sort would read every time.
            # Partial, so only those parcels' scans maintain it. (Plain DESC: SQLite, the
            # local default, has no NULLS LAST in an index.)
            models.Index(
                fields=["shop", "-last_event_at"],
                condition=models.Q(stage="problem"),
                name="shipment_problem_latest",
            ),
            # The delivery-estimate rollup reads a shop's recent deliveries only
            # (tracking.estimates): partial, so parcels still moving never maintain it.
            models.Index(
                fields=["shop", "delivered_at"],
                condition=models.Q(delivered_at__isnull=False),
                name="shipment_delivered_history",
            ),
        ]

    def __str__(self) -> str:
        return self.name or str(self.fulfillment_id)


class ShipmentLineItem(models.Model):
    """Which line items, and how many of each, travel in a shipment."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    # No index of its own: the unique (shipment, line_item_shopify_id) serves "by shipment".
    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, related_name="line_items", db_index=False
    )
    line_item_shopify_id = models.BigIntegerField()
    quantity = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shipment", "line_item_shopify_id"], name="shipment_line_item_unique"
            )
        ]


class TrackingEvent(models.Model):
    """One Shopify fulfillment event (a carrier scan or a merchant update)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    # No index of its own: (shipment, -happened_at) below serves "by shipment" too, and each
    # index is written for every one of the ~10M events a big install base holds.
    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    shopify_id = models.BigIntegerField()
    status = models.CharField(max_length=64)
    stage = models.CharField(max_length=32, choices=Stage.choices, blank=True)
    happened_at = models.DateTimeField()
    message = models.TextField(blank=True)
    city = models.CharField(max_length=255, blank=True)
    province = models.CharField(max_length=255, blank=True)
    country = models.CharField(max_length=255, blank=True)
    zip = models.CharField(max_length=32, blank=True)
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    # Recorded, but older than the shop's stale age when it arrived: no message goes out.
    is_stale = models.BooleanField(default=False)
    # fulfillment_events/delete: kept for the timeline, hidden from the page.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "shopify_id"], name="tracking_event_unique_per_shop"
            )
        ]
        indexes = [models.Index(fields=["shipment", "-happened_at"])]
        ordering = ["-happened_at", "-id"]


class Delay(models.Model):
    """A delay found by the detector, once per order, shipment and kind."""

    class Kind(models.TextChoices):
        UNFULFILLED = "unfulfilled", _("Not shipped in time")
        NO_MOVEMENT = "no_movement", _("No tracking movement")
        PAST_ESTIMATE = "past_estimate", _("Past the estimated delivery date")
        NEVER_SCANNED = "never_scanned", _("Label created but never scanned")
        CARRIER_DELAYED = "carrier_delayed", _("Carrier reported a delay")

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="delays")
    # Empty for order-level findings (not shipped in time).
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.CASCADE, related_name="delays"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # "order:<id>" or "shipment:<id>" plus the kind: one finding, whatever the cron repeats.
    dedupe_key = models.CharField(max_length=255)
    detected_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "dedupe_key"], name="delay_unique_per_shop")
        ]
        indexes = [
            models.Index(fields=["shop", "resolved_at"]),
            # Open delays newest first (the admin's home), without sorting all of them.
            models.Index(
                fields=["shop", "-detected_at"],
                condition=models.Q(resolved_at__isnull=True),
                name="delay_open_latest",
            ),
        ]


class TrackingSettings(models.Model):
    """Per-shop tracking choices: branding of the page and the delay thresholds."""

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, related_name="tracking_settings")
    # Branding of the storefront page.
    logo_url = models.URLField(max_length=1024, blank=True)
    accent_color = models.CharField(max_length=7, default="#008060")
    custom_message = models.TextField(blank=True)
    show_line_items = models.BooleanField(default=True)
    show_event_timeline = models.BooleanField(default=True)
    show_return_link = models.BooleanField(default=True)
    # Answer with a full page instead of application/liquid inside the merchant's theme.
    is_standalone_page = models.BooleanField(default=False)
    # "You may also like": a few of the shop's products under the order (tracking.suggestions).
    show_product_suggestions = models.BooleanField(default=True)

    # Delay thresholds (business days for "unfulfilled", calendar days otherwise).
    unfulfilled_business_days = models.PositiveIntegerField(default=3)
    no_movement_days_domestic = models.PositiveIntegerField(default=3)
    no_movement_days_international = models.PositiveIntegerField(default=7)
    never_scanned_days = models.PositiveIntegerField(default=3)
    # An event older than this when it arrives is recorded but sends nothing.
    stale_event_hours = models.PositiveIntegerField(default=48)
    # The country the shop ships from, for domestic vs international.
    origin_country_code = models.CharField(max_length=8, blank=True)
    # When the shop's delivery statistics (predicted estimates) were last rebuilt: part of
    # these settings' fingerprint, so a rebuild is a new key for every cached page.
    delivery_stats_built_at = models.DateTimeField(null=True, blank=True, editable=False)

    updated_at = models.DateTimeField(auto_now=True)


class TrackingPageView(models.Model):
    """How often shoppers opened an order's tracking page: the "where is my order" signal."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="tracking_views")
    views = models.PositiveIntegerField(default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)


class ProblemCase(models.Model):
    """Something the shopper says went wrong with an order: a parcel that never came, arrived
    damaged, or held the wrong item. Opened from the tracking page (the shopper) or the
    order page (staff, on the shopper's behalf); support resolves it. See tracking.problems.
    """

    class Kind(models.TextChoices):
        NOT_RECEIVED = "not_received", _("Not received")
        DAMAGED = "damaged", _("Arrived damaged")
        WRONG_ITEM = "wrong_item", _("Wrong item")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Resolved")

    class Reporter(models.TextChoices):
        SHOPPER = "shopper", _("Shopper")
        STAFF = "staff", _("Staff")

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="problem_cases")
    # The parcel it is about, when one is named (a "not received" on a split order).
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    reported_by = models.CharField(max_length=16, choices=Reporter.choices)
    # The shopper's words (or staff's note of them).
    description = models.TextField(blank=True)
    # Shopify staff user ids (the session token's ``sub``) of who opened and resolved it.
    opened_by_user_id = models.CharField(max_length=64, blank=True)
    resolved_by_user_id = models.CharField(max_length=64, blank=True)
    resolution_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["shop", "status", "-created_at"]),
            models.Index(fields=["order", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"


class DeliveryStat(models.Model):
    """How long a shop's parcels took to arrive, by carrier and destination: the basis of the
    delivery estimates shown when Shopify gives none (tracking.estimates). Rebuilt from the
    shop's recent deliveries by a daily job, so a page view reads one small indexed row set.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    # tracking_company as stored on the shipments; "" is every carrier together.
    carrier = models.CharField(max_length=255, blank=True)
    # The shipping rate (Order.shipping_method); "" is every rate of the carrier together.
    service = models.CharField(max_length=255, blank=True)
    country_code = models.CharField(max_length=8)
    # "" is the whole country.
    province_code = models.CharField(max_length=16, blank=True)
    province_name = models.CharField(max_length=255, blank=True)
    deliveries = models.PositiveIntegerField()
    # Days from the fulfillment's creation to delivery, at these percentiles of the group.
    days_p10 = models.FloatField()
    days_p50 = models.FloatField()
    days_p90 = models.FloatField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "country_code", "province_code", "carrier", "service"],
                name="delivery_stat_unique_group",
            )
        ]

    def __str__(self) -> str:
        place = "-".join(p for p in (self.country_code, self.province_code) if p)
        return f"{self.carrier or 'all carriers'} to {place}: {self.deliveries}"

"""The platform's tables: shops and their tokens, webhook deliveries, the order mirror and its
timeline, and privacy exports.

Models hold fields, choices and constraints only: every change goes through a service.
Every row that belongs to a shop carries ``shop``; every query is scoped by it.
"""

from django.db import models
from django.db.models.functions import Upper


class Shop(models.Model):
    """One installation of the app on one Shopify store.

    Tokens are stored encrypted (Fernet, ``TOKEN_ENCRYPTION_KEY``) and only read through
    ``shopapp.auth.tokens``; the plain values never reach a log line or a template.
    """

    myshopify_domain = models.CharField(max_length=255, unique=True)
    shopify_id = models.BigIntegerField(null=True, blank=True)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    # IANA zone of the shop (Shopify's ``ianaTimezone``); used to show times to shoppers.
    timezone = models.CharField(max_length=64, default="UTC")
    currency = models.CharField(max_length=8, blank=True)
    primary_locale = models.CharField(max_length=16, default="en")

    is_active = models.BooleanField(default=False)
    installed_at = models.DateTimeField(null=True, blank=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    # The refresh token expired or was revoked: the merchant has to open the app again, which
    # runs a fresh token exchange. Background work for the shop waits until then.
    needs_reauth = models.BooleanField(default=False)

    # Comma-separated scopes Shopify reported as granted, and the required ones missing.
    granted_scopes = models.TextField(blank=True)
    missing_scopes = models.TextField(blank=True)
    # When the granted scopes were last learnt (install, or app/scopes_update's ``updated_at``):
    # an older scopes_update delivered late changes nothing.
    scopes_updated_at = models.DateTimeField(null=True, blank=True)

    access_token_encrypted = models.TextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_encrypted = models.TextField(blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    token_refreshed_at = models.DateTimeField(null=True, blank=True)

    # Reconciliation cursor: orders updated at or after this were pulled through GraphQL.
    orders_synced_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["myshopify_domain"]

    def __str__(self) -> str:
        return self.myshopify_domain


class WebhookEvent(models.Model):
    """One webhook delivery as received: the database, not Redis, is the source of truth."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    # Null when the shop is unknown to the app (stored and marked ignored). No index of its
    # own: (shop, order_shopify_id) below serves "by shop" too, and every index is paid for
    # on each delivery, at Shopify's busiest.
    shop = models.ForeignKey(
        Shop,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_events",
        db_index=False,
    )
    shop_domain = models.CharField(max_length=255)
    # Unique through Meta.constraints: unique=True would add, on PostgreSQL, a second index
    # for LIKE queries nobody makes.
    webhook_id = models.CharField(max_length=255)
    topic = models.CharField(max_length=128)
    event_id = models.CharField(max_length=255, blank=True)
    api_version = models.CharField(max_length=32, blank=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    # Every X-Shopify-* header received, names lowercased.
    headers = models.JSONField(default=dict)
    payload = models.JSONField(default=dict)
    # The Shopify order this delivery is about, when it is about one (for redaction and the
    # order timeline).
    order_shopify_id = models.BigIntegerField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    ignored_reason = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["webhook_id"], name="webhookevent_webhook_id_unique")
        ]
        indexes = [
            models.Index(fields=["status", "received_at"]),
            models.Index(fields=["shop", "order_shopify_id"]),
            # What the pump looks for: small, as rows leave it once handed over.
            models.Index(
                fields=["id"],
                condition=models.Q(status="pending", enqueued_at__isnull=True),
                name="webhookevent_to_pump",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id}"


class Order(models.Model):
    """The app's mirror of a Shopify order: the fields tracking, returns and notifications need."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="orders")
    shopify_id = models.BigIntegerField()
    admin_graphql_api_id = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=64, blank=True)
    order_number = models.BigIntegerField(null=True, blank=True)

    email = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)
    customer_first_name = models.CharField(max_length=255, blank=True)
    customer_last_name = models.CharField(max_length=255, blank=True)
    buyer_accepts_marketing = models.BooleanField(default=False)
    locale = models.CharField(max_length=16, blank=True)

    currency = models.CharField(max_length=8, blank=True)
    presentment_currency = models.CharField(max_length=8, blank=True)
    total_price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    subtotal_price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_discounts = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_tax = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_shipping = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    # Shopify's status strings, stored as they come: new API versions add values.
    financial_status = models.CharField(max_length=64, blank=True)
    fulfillment_status = models.CharField(max_length=64, blank=True)

    shipping_country_code = models.CharField(max_length=8, blank=True)
    shipping_province_code = models.CharField(max_length=16, blank=True)
    shipping_city = models.CharField(max_length=255, blank=True)
    shipping_zip = models.CharField(max_length=32, blank=True)
    # The shipping rate the shopper chose at checkout (the first shipping line's title:
    # "Standard", "Express"): the delivery estimates' service (tracking.estimates).
    shipping_method = models.CharField(max_length=255, blank=True)

    tags = models.TextField(blank=True)
    is_test = models.BooleanField(default=False)
    order_status_url = models.URLField(max_length=1024, blank=True)

    shopify_created_at = models.DateTimeField(null=True, blank=True)
    shopify_updated_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=64, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # orders/delete: kept (the timeline stays readable) but hidden from lists.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # customers/redact: personal data erased, the order kept anonymised.
    redacted_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by PostgreSQL triggers on every change to the order, its line items, shipments
    # (and their items and events) and delays, whoever writes them (bulk updates included):
    # the storefront caches an order's rendered page under it (migrations
    # shopapp 0007_order_version, tracking 0003_order_version_triggers). Never set it here.
    version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "shopify_id"], name="order_unique_per_shop")
        ]
        indexes = [
            models.Index(fields=["shop", "-shopify_created_at"]),
            models.Index(fields=["shop", "email"]),
            models.Index(fields=["shop", "customer_id"]),
            models.Index(fields=["shop", "name"]),
            # The storefront lookups (returns portal) match the name a shopper typed in any
            # case and, for custom-prefixed names, the bare number: without these, every
            # lookup reads every order of every shop.
            models.Index(models.F("shop"), Upper("name"), name="order_shop_upper_name_idx"),
            models.Index(fields=["shop", "order_number"], name="order_shop_number_idx"),
        ]

    def __str__(self) -> str:
        return self.name or str(self.shopify_id)


class LineItem(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="line_items")
    shopify_id = models.BigIntegerField()
    admin_graphql_api_id = models.CharField(max_length=255, blank=True)
    product_id = models.BigIntegerField(null=True, blank=True)
    variant_id = models.BigIntegerField(null=True, blank=True)
    title = models.CharField(max_length=512, blank=True)
    variant_title = models.CharField(max_length=512, blank=True)
    sku = models.CharField(max_length=255, blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField(default=0)
    current_quantity = models.PositiveIntegerField(default=0)
    fulfillable_quantity = models.PositiveIntegerField(default=0)
    fulfillment_status = models.CharField(max_length=64, blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_discount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    requires_shipping = models.BooleanField(default=True)
    is_gift_card = models.BooleanField(default=False)
    # Shopify's picture of the line's variant (LineItem.image, a small transform of it), read
    # through the Admin API after the order arrives (shopapp.orders.images): the REST-shaped
    # orders webhooks carry none, so they never write it. Empty: none known (yet).
    image_url = models.URLField(max_length=2048, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "shopify_id"], name="line_item_unique_per_order"
            )
        ]

    def __str__(self) -> str:
        return self.title


class LineItemReplacement(models.Model):
    """An order line that replaces another: what an exchange booked on the order.

    Keyed by Shopify's line item ids (the new line may reach the mirror after the exchange is
    known), written by the returns app through ``line_item_replacement_record``, read when a
    parcel is announced ("replaces your Linen shirt · M").
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    line_item_shopify_id = models.BigIntegerField()
    replaces_line_item_shopify_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "line_item_shopify_id"], name="line_item_replacement_once"
            )
        ]


class OrderEvent(models.Model):
    """The order's timeline: one row per thing that happened to it, written only by services.

    ``dedupe_key`` makes a write idempotent: the same fact recorded twice (a webhook retried,
    a reconciliation after a webhook) stays one row.
    """

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        RECONCILIATION = "reconciliation", "Reconciliation"
        APP = "app", "App"
        STAFF = "staff", "Staff"
        SHOPPER = "shopper", "Shopper"
        CARRIER = "carrier", "Carrier"
        SYSTEM = "system", "System"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    # Dotted kind, open set: order.created, order.updated, order.cancelled, shipment.in_transit,
    # notification.sent, return.requested, staff.note, …
    kind = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices)
    summary = models.CharField(max_length=255)
    detail = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "dedupe_key"], name="order_event_dedupe_per_shop"
            )
        ]
        indexes = [models.Index(fields=["order", "-occurred_at"])]
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"


class CustomerDataExport(models.Model):
    """A ``customers/data_request``: what the app holds about a customer, for the merchant."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="data_exports")
    data_request_id = models.BigIntegerField(null=True, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)
    customer_email = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class OAuthState(models.Model):
    """A one-time ``state`` nonce for the authorization code grant (fallback install path)."""

    state = models.CharField(max_length=64, unique=True)
    shop_domain = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)


class Task(models.Model):
    """Background work that must happen: the row is the promise, RQ only the hand-over.

    Written in the transaction that decides the work (a return submitted, a shipment to read
    back), handed to RQ when it commits, and handed over again by the sweep when Redis was
    down or lost the job. ``key`` makes a second request for the same pending work a no-op.
    See shopapp.background.services.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    shop = models.ForeignKey(
        Shop, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Dotted path of the job function; it is called with ``kwargs``.
    job = models.CharField(max_length=255)
    kwargs = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=32, default="default")
    # One pending task per key (e.g. "tracking.refresh:<shipment id>").
    key = models.CharField(max_length=255, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    run_after = models.DateTimeField()
    # When it was last handed to RQ (or when RQ's retry will run): the sweep leaves it alone
    # for a while after that.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # A worker running it owns it until the lease expires (a killed worker's lease runs out).
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The RQ job whose attempt holds the claim. RQ runs that job's retry only after the attempt
    # ended, so the retry may take the claim over at once: an attempt that died with the
    # database could not release it (shopapp.background.services.task_run).
    claimed_by_job = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    timeout_s = models.PositiveIntegerField(default=300)
    retry_intervals_s = models.JSONField(default=list, blank=True)
    # Dotted path called with the task when no retry is left (the job's "give up" step).
    on_give_up = models.CharField(max_length=255, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(status="pending"),
                name="task_one_pending_per_key",
            )
        ]
        indexes = [models.Index(fields=["status", "run_after"])]

    def __str__(self) -> str:
        return f"{self.job} ({self.status})"


class ShopBranding(models.Model):
    """The shop's look, set once by the merchant, on every page and email the shopper sees.

    Colours are ``#rrggbb`` (checked by shopapp.branding.look before they are stored); the logo
    is kept as the bytes Pillow encoded afresh (shopapp.branding.logo), served by its digest.
    """

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, related_name="branding")
    accent_color = models.CharField(max_length=7, default="#008060")
    text_color = models.CharField(max_length=7, default="#1c1c1c")
    background_color = models.CharField(max_length=7, default="#ffffff")
    # A key of shopapp.branding.look.FONT_STACKS (system and web-safe stacks only: no CDN).
    font = models.CharField(max_length=16, default="system")
    logo = models.BinaryField(blank=True, default=b"")
    logo_content_type = models.CharField(max_length=32, blank=True)
    # sha256 of ``logo``, the logo URL's name: a new logo is a new URL (cached for a year).
    logo_digest = models.CharField(max_length=64, blank=True)
    logo_width = models.PositiveIntegerField(default=0)
    logo_height = models.PositiveIntegerField(default=0)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=32, blank=True)
    footer_text = models.TextField(blank=True)
    # The storefront theme's colours (shopapp.branding.theme), used instead of the three above
    # while ``follows_theme``: a new shop's pages look like its store without a visit here.
    follows_theme = models.BooleanField(default=True)
    theme_accent_color = models.CharField(max_length=7, blank=True)
    theme_text_color = models.CharField(max_length=7, blank=True)
    theme_background_color = models.CharField(max_length=7, blank=True)
    theme_name = models.CharField(max_length=255, blank=True)
    theme_read_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"branding of shop {self.shop_id}"

    def colours_in_use(self) -> tuple[str, str, str]:
        """(accent, text, background): the theme's while following it and it gave an accent,
        else the merchant's own."""
        if self.follows_theme and self.theme_accent_color:
            return (
                self.theme_accent_color,
                self.theme_text_color or self.text_color,
                self.theme_background_color or self.background_color,
            )
        return self.accent_color, self.text_color, self.background_color

"""Notification sequences, their steps and templates, the scheduled messages, suppressions.

The database holds every future message: a ``Message`` row is the schedule, and the unique
constraint on (order, step, shipment_key) is what makes a send happen at most once.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from shopapp.models import Order, Shop

# A review request's stars: 1 (worst) to 5 (best), as review platforms count them.
RATING_MIN = 1
RATING_MAX = 5


class Trigger(models.TextChoices):
    ORDER_CONFIRMED = "order_confirmed", _("Order confirmed")
    SHIPPED = "shipped", _("Shipped")
    IN_TRANSIT = "in_transit", _("In transit")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    ATTEMPTED_DELIVERY = "attempted_delivery", _("Delivery attempted")
    READY_FOR_PICKUP = "ready_for_pickup", _("Ready for pickup")
    DELAYED = "delayed", _("Delayed")
    PROBLEM = "problem", _("Problem")
    DELIVERED = "delivered", _("Delivered")
    ALL_DELIVERED = "all_delivered", _("All shipments delivered")
    ORDER_CANCELLED = "order_cancelled", _("Order cancelled")
    RETURN_REQUESTED = "return_requested", _("Return requested")
    RETURN_APPROVED = "return_approved", _("Return approved")
    RETURN_DECLINED = "return_declined", _("Return declined")
    RETURN_PROCESSED = "return_processed", _("Return processed")
    RETURN_CLOSED = "return_closed", _("Return closed")
    # The shopper reported a problem on the tracking page (not received, damaged, wrong item).
    PROBLEM_REPORTED = "problem_reported", _("Problem reported by the shopper")


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


class Sequence(models.Model):
    """What happens after a trigger: ordered steps, each a message after a delay."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    # Stable name of a default sequence ("shipped", "delivered_review", …) or a merchant's own.
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=255)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    # Several triggers can start the same sequence (e.g. attempted delivery or problem).
    extra_triggers = models.JSONField(default=list, blank=True)
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "key"], name="sequence_key_unique_per_shop")
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class MessageTemplate(models.Model):
    """Merchant-editable Liquid, per template key, channel and language."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=64)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    locale = models.CharField(max_length=8, default="en")
    subject = models.CharField(max_length=500, blank=True)
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    # SMS only.
    sms_body = models.TextField(blank=True)
    # Edited as blocks (notifications.blocks: subject, heading, text, button label, colour):
    # the blocks as the merchant wrote them; html_body and text_body are composed from them.
    # Empty when the merchant edits the HTML itself.
    blocks = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "key", "channel", "locale"], name="template_unique_per_shop"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.channel}, {self.locale})"


class SequenceStep(models.Model):
    class DelayFrom(models.TextChoices):
        TRIGGER = "trigger", _("After the trigger")
        PREVIOUS = "previous", _("After the previous step")

    class Audience(models.TextChoices):
        # The order's customer (its email or phone), as every shopper-facing step.
        CUSTOMER = "customer", _("The customer")
        # The shop's support inbox (notifications.recipients.merchant_recipient): alerts the
        # merchant must act on, e.g. a problem a shopper reported.
        MERCHANT = "merchant", _("The shop's support address")

    class Condition(models.TextChoices):
        NOT_DELIVERED = "not_delivered", _("Only if not yet delivered")
        ACCEPTS_MARKETING = "accepts_marketing", _("Only if the customer accepts marketing")
        NOT_CANCELLED = "not_cancelled", _("Stop if the order was cancelled")
        NOT_RETURNED = "not_returned", _("Stop if a return was started")

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    delay_minutes = models.PositiveIntegerField(default=0)
    delay_from = models.CharField(
        max_length=16, choices=DelayFrom.choices, default=DelayFrom.TRIGGER
    )
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    # Templates are chosen by key and the order's locale at send time.
    template_key = models.SlugField(max_length=64)
    conditions = models.JSONField(default=list, blank=True)
    is_enabled = models.BooleanField(default=True)
    # Who the step's message goes to (email only for the merchant).
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.CUSTOMER)

    class Meta:
        ordering = ["sequence", "position", "id"]

    def __str__(self) -> str:
        return f"{self.sequence_id}#{self.position} {self.channel} {self.template_key}"


class Message(models.Model):
    """One scheduled message for one order, step and shipment."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        SKIPPED = "skipped", _("Skipped")

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="messages")
    step = models.ForeignKey(SequenceStep, on_delete=models.PROTECT, related_name="messages")
    # What the news is about: "shipment:<Shopify fulfillment id>", "return:<return id>" or
    # "order". Part of the unique key (one message per order, step and subject), so never NULL
    # (NULLs never collide in a unique index).
    subject_key = models.CharField(max_length=64, default="order")
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=255)
    locale = models.CharField(max_length=8, default="en")
    # The facts the message was rendered from (notifications.news snapshots): written when it
    # is scheduled, refreshed with the latest facts when it is sent.
    snapshot = models.JSONField(default=dict, blank=True)

    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    reason = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A sender claims the row until this time; a worker that dies mid-send leaves a lease
    # that expires, and the row is claimed again.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Set when a worker claims the row for one attempt (cleared with its outcome): a second job
    # for the same row finds it claimed under a live lease and leaves it alone.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Set just before the message is handed to the provider: a claim that dies after this may
    # have been delivered (SMTP has no idempotency key), one that dies before it certainly not.
    provider_call_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "step", "subject_key"], name="message_once_per_order_step"
            )
        ]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["shop", "status", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.trigger} → {self.channel} ({self.status})"


class MessageShipment(models.Model):
    """A parcel a message is about. Parcels of one order shipped close together share one
    message; the constraint keeps a parcel in one message per step, whatever is repeated."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="shipments")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    step = models.ForeignKey(SequenceStep, on_delete=models.CASCADE, related_name="+")
    fulfillment_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "step", "fulfillment_id"], name="message_shipment_once"
            )
        ]


class ShipmentFacts(models.Model):
    """The latest news tracking gave about a parcel: what a message checks before it goes
    (is it still news?) and renders (the newest estimate)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    fulfillment_id = models.BigIntegerField()
    stage = models.CharField(max_length=32)
    happened_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "fulfillment_id"], name="shipment_facts_unique_per_shop"
            )
        ]
        indexes = [models.Index(fields=["order"])]


class ReturnFacts(models.Model):
    """The latest news returns gave about a return (a started return stops review requests)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    return_id = models.BigIntegerField()
    status = models.CharField(max_length=32)
    happened_at = models.DateTimeField()
    snapshot = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "return_id"], name="return_facts_unique_per_shop"
            )
        ]
        indexes = [models.Index(fields=["order"])]


class Suppression(models.Model):
    """An address or number that must not be messaged: unsubscribed, bounced, complained."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")
        INVALID = "invalid", _("Invalid")

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # Normalised: lower-cased email, or E.164 phone number.
    address = models.CharField(max_length=255)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "channel", "address"], name="suppression_unique_per_shop"
            )
        ]


class NotificationSettings(models.Model):
    shop = models.OneToOneField(
        Shop, on_delete=models.CASCADE, related_name="notification_settings"
    )
    sender_name = models.CharField(max_length=255, blank=True)
    reply_to = models.EmailField(blank=True)
    # Quiet hours in the recipient's timezone, "HH:MM"; equal start and end means none.
    email_quiet_start = models.CharField(max_length=5, default="00:00")
    email_quiet_end = models.CharField(max_length=5, default="00:00")
    sms_quiet_start = models.CharField(max_length=5, default="21:00")
    sms_quiet_end = models.CharField(max_length=5, default="08:00")
    # Parcels of one order that reach the same stage within this many minutes share one
    # message (a split shipment is one "on its way" email, not four); 0 sends each at once.
    combine_shipments_minutes = models.PositiveIntegerField(default=10)
    # Twilio, per shop; the auth token is encrypted like Shopify tokens.
    is_sms_enabled = models.BooleanField(default=False)
    twilio_account_sid = models.CharField(max_length=64, blank=True)
    twilio_auth_token_encrypted = models.TextField(blank=True)
    twilio_from_number = models.CharField(max_length=32, blank=True)
    # Where the review request's rating page sends a shopper on to write a full review (the
    # merchant's review app or product page); https only, empty: no onward link.
    review_page_url = models.URLField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class ReviewAnswer(models.Model):
    """A shopper's star rating (and optional comment) in answer to one review request.

    One row per message (the unique constraint): a second click or submit changes the rating,
    never adds an answer (notifications.reviews).
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="review_answer")
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    # The first answer; a changed rating moves ``updated_at`` only.
    answered_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__gte=RATING_MIN) & models.Q(rating__lte=RATING_MAX),
                name="review_answer_rating_1_to_5",
            )
        ]
        indexes = [models.Index(fields=["shop", "order"])]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.rating}/{RATING_MAX}"

"""Built-in templates (English, Spanish, French, German; composed in notifications.copy) and
the default sequences.

``notification_defaults_install`` creates the default sequences once per shop (by key); a
reinstall finds them and leaves the merchant's changes alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from notifications.copy import (  # noqa: F401  (LANGUAGES, sample_context: the admin's names)
    DELIVERY_ISSUE_KEY,
    LANGUAGES,
    default_source,
    sample_context,
)
from notifications.models import Channel, Sequence, SequenceStep, Trigger
from notifications.rendering import TemplateSource
from shopapp.models import Shop

logger = logging.getLogger(__name__)

LANGUAGE_NAMES: dict[str, Any] = {
    "en": _("English"),
    "es": _("Spanish"),
    "fr": _("French"),
    "de": _("German"),
}

# One template per trigger a shopper hears about, plus the review request.
TEMPLATE_KEYS: tuple[str, ...] = (
    "order_confirmed",
    "shipped",
    "in_transit",
    "out_for_delivery",
    "attempted_delivery",
    "ready_for_pickup",
    "delayed",
    "problem",
    "delivered",
    "review_request",
    "order_cancelled",
    "return_requested",
    "return_approved",
    "return_declined",
    "return_processed",
    "return_closed",
    "problem_reported",
    "problem_reported_merchant",
)
ALL_TEMPLATE_KEYS: tuple[str, ...] = (*TEMPLATE_KEYS, DELIVERY_ISSUE_KEY)

TEMPLATE_LABELS: dict[str, Any] = {
    "order_confirmed": _("Order confirmed"),
    "shipped": _("Shipped"),
    "in_transit": _("In transit"),
    "out_for_delivery": _("Out for delivery"),
    "attempted_delivery": _("Delivery attempted"),
    "ready_for_pickup": _("Ready for pickup"),
    "delayed": _("Delayed"),
    "problem": _("Problem with delivery"),
    "delivered": _("Delivered"),
    "review_request": _("Review request"),
    "order_cancelled": _("Order cancelled"),
    "return_requested": _("Return requested"),
    "return_approved": _("Return approved"),
    "return_declined": _("Return declined"),
    "return_processed": _("Return processed"),
    "return_closed": _("Return closed"),
    "problem_reported": _("Problem reported (to the shopper)"),
    "problem_reported_merchant": _("Problem reported (to your support inbox)"),
    DELIVERY_ISSUE_KEY: _("Delivery attempted or problem"),
}

# Messages about a parcel link to the tracking page; messages about a return to the portal.
TRACKING_LINK_KEYS: frozenset[str] = frozenset(
    {
        "order_confirmed",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "attempted_delivery",
        "ready_for_pickup",
        "delayed",
        "problem",
        "delivered",
        DELIVERY_ISSUE_KEY,
    }
)
RETURN_LINK_KEYS: frozenset[str] = frozenset(
    {"return_requested", "return_approved", "return_declined", "return_processed"}
)


def default_template_get(*, key: str, channel: str, locale: str) -> TemplateSource | None:
    """The built-in template for ``key``/``channel`` in ``locale``'s language, or None."""
    language = (locale or "").split("-", 1)[0].lower()
    if language not in LANGUAGES or key not in ALL_TEMPLATE_KEYS:
        return None
    if channel not in Channel.values:
        return None
    return default_source(key, channel, language)


# ---------------------------------------------------------------------------------------------
# Default sequences


@dataclass(frozen=True)
class StepSpec:
    template_key: str
    channel: str = Channel.EMAIL
    delay_minutes: int = 0
    delay_from: str = SequenceStep.DelayFrom.TRIGGER
    conditions: tuple[str, ...] = ()
    is_enabled: bool = True
    audience: str = SequenceStep.Audience.CUSTOMER


@dataclass(frozen=True)
class SequenceSpec:
    key: str
    name: str
    trigger: str
    steps: tuple[StepSpec, ...]
    extra_triggers: tuple[str, ...] = ()
    is_enabled: bool = True


_C = SequenceStep.Condition
# Each return update is its own sequence: a merchant may want the "approved" email and not
# the "closed" one.
_RETURN_SEQUENCES = tuple(
    SequenceSpec(
        key=trigger.value,
        name=label,
        trigger=trigger.value,
        steps=(StepSpec(trigger.value),),
    )
    for trigger, label in (
        (Trigger.RETURN_REQUESTED, gettext_noop("Return requested")),
        (Trigger.RETURN_APPROVED, gettext_noop("Return approved")),
        (Trigger.RETURN_DECLINED, gettext_noop("Return declined")),
        (Trigger.RETURN_PROCESSED, gettext_noop("Return processed")),
        (Trigger.RETURN_CLOSED, gettext_noop("Return closed")),
    )
)
# An SMS step is added where a text is worth its cost (the shopper should act soon), disabled:
# SMS needs the merchant's own Twilio account and their shoppers' consent.
DEFAULT_SEQUENCES: tuple[SequenceSpec, ...] = (
    SequenceSpec(
        key="order_confirmed",
        name=gettext_noop("Order confirmed"),
        trigger=Trigger.ORDER_CONFIRMED,
        # Off: Shopify already sends an order confirmation.
        is_enabled=False,
        steps=(StepSpec("order_confirmed"),),
    ),
    SequenceSpec(
        key="shipped",
        name=gettext_noop("Shipped"),
        trigger=Trigger.SHIPPED,
        steps=(
            StepSpec("shipped", conditions=(_C.NOT_CANCELLED,)),
            StepSpec(
                "shipped", channel=Channel.SMS, conditions=(_C.NOT_CANCELLED,), is_enabled=False
            ),
        ),
    ),
    SequenceSpec(
        key="in_transit",
        name=gettext_noop("In transit"),
        trigger=Trigger.IN_TRANSIT,
        # Off: a carrier scan a day is noise; available for merchants who want it.
        is_enabled=False,
        steps=(StepSpec("in_transit", conditions=(_C.NOT_DELIVERED, _C.NOT_CANCELLED)),),
    ),
    SequenceSpec(
        key="out_for_delivery",
        name=gettext_noop("Out for delivery"),
        trigger=Trigger.OUT_FOR_DELIVERY,
        steps=(
            StepSpec("out_for_delivery", conditions=(_C.NOT_DELIVERED,)),
            StepSpec(
                "out_for_delivery",
                channel=Channel.SMS,
                conditions=(_C.NOT_DELIVERED,),
                is_enabled=False,
            ),
        ),
    ),
    SequenceSpec(
        key="delivery_issue",
        name=gettext_noop("Delivery attempted or problem"),
        trigger=Trigger.ATTEMPTED_DELIVERY,
        extra_triggers=(Trigger.PROBLEM,),
        steps=(
            StepSpec(DELIVERY_ISSUE_KEY, conditions=(_C.NOT_DELIVERED,)),
            StepSpec(
                DELIVERY_ISSUE_KEY,
                channel=Channel.SMS,
                conditions=(_C.NOT_DELIVERED,),
                is_enabled=False,
            ),
        ),
    ),
    SequenceSpec(
        key="ready_for_pickup",
        name=gettext_noop("Ready for pickup"),
        trigger=Trigger.READY_FOR_PICKUP,
        steps=(
            StepSpec("ready_for_pickup", conditions=(_C.NOT_DELIVERED,)),
            StepSpec(
                "ready_for_pickup",
                channel=Channel.SMS,
                conditions=(_C.NOT_DELIVERED,),
                is_enabled=False,
            ),
        ),
    ),
    SequenceSpec(
        key="delayed",
        name=gettext_noop("Delayed"),
        trigger=Trigger.DELAYED,
        steps=(StepSpec("delayed", conditions=(_C.NOT_DELIVERED, _C.NOT_CANCELLED)),),
    ),
    SequenceSpec(
        key="delivered_review",
        name=gettext_noop("Delivered, then a review request"),
        trigger=Trigger.DELIVERED,
        steps=(
            StepSpec("delivered"),
            StepSpec(
                "review_request",
                # Seven days gives time to use the product; a started return means it is not
                # the moment to ask for a review.
                delay_minutes=7 * 24 * 60,
                delay_from=SequenceStep.DelayFrom.TRIGGER,
                conditions=(_C.NOT_RETURNED, _C.NOT_CANCELLED),
            ),
        ),
    ),
    *_RETURN_SEQUENCES,
    SequenceSpec(
        key="order_cancelled",
        name=gettext_noop("Order cancelled"),
        trigger=Trigger.ORDER_CANCELLED,
        steps=(StepSpec("order_cancelled"),),
    ),
    # A problem reported on the tracking page: the shopper's confirmation (what happens next)
    # and the alert to the shop's support inbox, both at once. Unsubscribes are respected for
    # the shopper like every message; the alert goes to the merchant's own address.
    SequenceSpec(
        key="problem_reported",
        name=gettext_noop("Problem reported by the shopper"),
        trigger=Trigger.PROBLEM_REPORTED,
        steps=(
            StepSpec("problem_reported"),
            StepSpec("problem_reported_merchant", audience=SequenceStep.Audience.MERCHANT),
        ),
    ),
)


def _sequence_create(*, shop: Shop, spec: SequenceSpec) -> Sequence:
    sequence = Sequence.objects.create(
        shop=shop,
        key=spec.key,
        name=spec.name,
        trigger=str(spec.trigger),
        extra_triggers=[str(t) for t in spec.extra_triggers],
        is_enabled=spec.is_enabled,
    )
    SequenceStep.objects.bulk_create(
        SequenceStep(
            shop=shop,
            sequence=sequence,
            position=position,
            delay_minutes=step.delay_minutes,
            delay_from=str(step.delay_from),
            channel=str(step.channel),
            template_key=step.template_key,
            conditions=[str(c) for c in step.conditions],
            is_enabled=step.is_enabled,
            audience=str(step.audience),
        )
        for position, step in enumerate(spec.steps)
    )
    return sequence


def notification_defaults_install(*, shop: Shop) -> list[Sequence]:
    """Create the default sequences the shop lacks; return the ones created.

    Safe to run on every install: a sequence whose key exists (edited, disabled, or with its
    steps removed by the merchant) is left exactly as it is. Two installs racing meet the
    unique (shop, key) constraint; the loser skips that sequence.
    """
    existing = set(Sequence.objects.filter(shop=shop).values_list("key", flat=True))
    created: list[Sequence] = []
    for spec in DEFAULT_SEQUENCES:
        if spec.key in existing:
            continue
        try:
            with transaction.atomic():
                created.append(_sequence_create(shop=shop, spec=spec))
        except IntegrityError:
            continue
    if created:
        logger.info(
            "notifications.defaults.installed",
            extra={"shop": shop.myshopify_domain, "sequences": [s.key for s in created]},
        )
    return created

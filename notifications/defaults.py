"""Built-in templates (English, Spanish, French, German) and the default sequences.

    default_templates/<lang>/<key>.liquid   one message: subject, SMS body, then the email copy
    default_templates/<lang>/_strings.txt   greeting, footer and labels of that language
    default_templates/layout.html           the email layout the copy is poured into

A message's copy is written once and turned into both the HTML and the text email here, so
the two never drift apart. The copy is plain text with Liquid, one paragraph per blank-line
separated block, and three directives on lines of their own:

    @greeting                       "Hi {{ customer.first_name }}," (or a nameless greeting)
    @button <url> | <label>         a button in HTML, "<label>: <url>" in text
    @items                          the order's line items

Built-in templates are never copied into the database: a shop has a ``MessageTemplate`` row
only for what its merchant edited, so improvements to the defaults reach every other template.

``notification_defaults_install`` creates the default sequences once per shop (by key); a
reinstall finds them and leaves the merchant's changes alone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from notifications.models import Channel, Sequence, SequenceStep, Trigger
from notifications.rendering import TemplateSource
from shopapp.models import Shop

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "default_templates"
LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de")
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German"}

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
)
# The default "attempted delivery or problem" sequence has one step, so one template: it is
# composed from the two above and picks its copy by the shipment's stage.
DELIVERY_ISSUE_KEY = "delivery_issue"
ALL_TEMPLATE_KEYS: tuple[str, ...] = (*TEMPLATE_KEYS, DELIVERY_ISSUE_KEY)

TEMPLATE_LABELS: dict[str, str] = {
    "order_confirmed": "Order confirmed",
    "shipped": "Shipped",
    "in_transit": "In transit",
    "out_for_delivery": "Out for delivery",
    "attempted_delivery": "Delivery attempted",
    "ready_for_pickup": "Ready for pickup",
    "delayed": "Delayed",
    "problem": "Problem with delivery",
    "delivered": "Delivered",
    "review_request": "Review request",
    "order_cancelled": "Order cancelled",
    "return_requested": "Return requested",
    "return_approved": "Return approved",
    "return_declined": "Return declined",
    "return_processed": "Return processed",
    "return_closed": "Return closed",
    DELIVERY_ISSUE_KEY: "Delivery attempted or problem",
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

_SECTION = re.compile(r"^(subject|sms):\s*(.*)$")
_BUTTON = re.compile(r"^@button\s+(.+?)\s*\|\s*([^|]+)$")

_FONT = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"
_P_STYLE = "margin:0 0 16px;"
_BUTTON_HTML = (
    '<table role="presentation" cellpadding="0" cellspacing="0" style="margin:8px 0 24px;">'
    '<tr><td style="border-radius:8px;background:#111827;">'
    '<a href="{url}" style="display:inline-block;padding:12px 22px;font-family:{font};'
    "font-size:15px;font-weight:600;color:#ffffff;text-decoration:none;border-radius:8px;"
    '">{label}</a></td></tr></table>'
)
_ITEMS_HTML = (
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
    'style="margin:0 0 24px;border-top:1px solid #e5e7eb;">'
    "{% for item in order.line_items %}"
    '<tr><td style="padding:10px 0;border-bottom:1px solid #e5e7eb;font-size:14px;'
    'color:#111827;">{{ item.title }}{% if item.variant_title %}'
    '<span style="color:#6b7280;"> · {{ item.variant_title }}</span>{% endif %}</td>'
    '<td align="right" style="padding:10px 0;border-bottom:1px solid #e5e7eb;font-size:14px;'
    'color:#6b7280;white-space:nowrap;">× {{ item.quantity }}</td></tr>'
    "{% endfor %}</table>"
)
_ITEMS_TEXT = (
    "{% for item in order.line_items %}- {{ item.quantity }} × {{ item.title }}"
    "{% if item.variant_title %} ({{ item.variant_title }}){% endif %}\n{% endfor %}"
)


@dataclass(frozen=True)
class _Copy:
    subject: str
    sms: str
    blocks: tuple[str, ...]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def _strings(language: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in _read(TEMPLATES_DIR / language / "_strings.txt").splitlines():
        if ":" in line and not line.startswith("#"):
            name, value = line.split(":", 1)
            values[name.strip()] = value.strip()
    return values


@cache
def _copy(language: str, key: str) -> _Copy:
    text = _read(TEMPLATES_DIR / language / f"{key}.liquid")
    header, _, body = text.partition("\n---\n")
    fields = {"subject": "", "sms": ""}
    for line in header.splitlines():
        match = _SECTION.match(line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    blocks = tuple(block.strip() for block in re.split(r"\n\s*\n", body) if block.strip())
    return _Copy(subject=fields["subject"], sms=fields["sms"], blocks=blocks)


def _block_html(block: str, strings: dict[str, str]) -> str:
    if block == "@greeting":
        return f'<p style="{_P_STYLE}">{_greeting(strings)}</p>'
    if block == "@items":
        return _ITEMS_HTML
    match = _BUTTON.match(block)
    if match:
        return _BUTTON_HTML.format(url=match.group(1), label=match.group(2), font=_FONT)
    return f'<p style="{_P_STYLE}">{"<br>".join(block.splitlines())}</p>'


def _block_text(block: str, strings: dict[str, str]) -> str:
    if block == "@greeting":
        return _greeting(strings)
    if block == "@items":
        return _ITEMS_TEXT
    match = _BUTTON.match(block)
    if match:
        return f"{match.group(2)}: {match.group(1)}"
    return block


def _greeting(strings: dict[str, str]) -> str:
    return (
        f"{{% if customer.first_name %}}{strings['greeting']}"
        f"{{% else %}}{strings['greeting_anonymous']}{{% endif %}}"
    )


def _html_content(copy: _Copy, strings: dict[str, str]) -> str:
    return "\n".join(_block_html(block, strings) for block in copy.blocks)


def _text_content(copy: _Copy, strings: dict[str, str]) -> str:
    parts: list[str] = []
    for block in copy.blocks:
        if parts:
            # The items loop ends each line with its own newline.
            parts.append("\n" if parts[-1] == _ITEMS_TEXT else "\n\n")
        parts.append(_block_text(block, strings))
    return "".join(parts)


def _layout(language: str, content: str) -> str:
    strings = _strings(language)
    return (
        _read(TEMPLATES_DIR / "layout.html")
        .replace("[[lang]]", language)
        .replace("[[font]]", _FONT)
        .replace("[[footer]]", strings["footer"])
        .replace("[[unsubscribe]]", strings["unsubscribe"])
        .replace("[[content]]", content)
    )


def _text_email(language: str, content: str) -> str:
    strings = _strings(language)
    return (
        f"{content}\n\n--\n{{{{ shop.name }}}}\n{strings['footer']}\n"
        f"{strings['unsubscribe']}: {{{{ unsubscribe_url }}}}\n"
    )


def _branch(problem: str, attempted: str) -> str:
    return f'{{% if shipment.stage == "problem" %}}{problem}{{% else %}}{attempted}{{% endif %}}'


@cache
def _default_source(key: str, channel: str, language: str) -> TemplateSource:
    strings = _strings(language)
    if key == DELIVERY_ISSUE_KEY:
        problem, attempted = _copy(language, "problem"), _copy(language, "attempted_delivery")
        subject = _branch(problem.subject, attempted.subject)
        sms = _branch(problem.sms, attempted.sms)
        html = _branch(_html_content(problem, strings), _html_content(attempted, strings))
        text = _branch(_text_content(problem, strings), _text_content(attempted, strings))
    else:
        copy = _copy(language, key)
        subject, sms = copy.subject, copy.sms
        html, text = _html_content(copy, strings), _text_content(copy, strings)
    if channel == Channel.SMS:
        return TemplateSource(key=key, channel=channel, locale=language, sms_body=sms)
    return TemplateSource(
        key=key,
        channel=channel,
        locale=language,
        subject=subject,
        html_body=_layout(language, html),
        text_body=_text_email(language, text),
    )


def default_template_get(*, key: str, channel: str, locale: str) -> TemplateSource | None:
    """The built-in template for ``key``/``channel`` in ``locale``'s language, or None."""
    language = (locale or "").split("-", 1)[0].lower()
    if language not in LANGUAGES or key not in ALL_TEMPLATE_KEYS:
        return None
    if channel not in Channel.values:
        return None
    return _default_source(key, channel, language)


def sample_context(*, shop: Shop | None = None) -> dict[str, Any]:
    """A made-up order, following the context contract, for previews and save-time checks."""
    domain = shop.myshopify_domain if shop else "example.myshopify.com"
    base = f"https://{domain}/{settings.SHOPIFY_APP_PROXY_PREFIX}/"
    base += settings.SHOPIFY_APP_PROXY_SUBPATH
    created = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    tracking_url = f"{base}/track/SAMPLE-TOKEN"
    return {
        "shop": {
            "name": (shop.name if shop else "") or "Your Store",
            "email": (shop.email if shop else "") or "hello@example.com",
            "domain": domain,
        },
        "order": {
            "name": "#1001",
            "number": 1001,
            "created_at": created,
            "total_price": Decimal("84.90"),
            "currency": (shop.currency if shop else "") or "EUR",
            "line_items": [
                {"title": "Linen shirt", "variant_title": "Sand / M", "quantity": 1},
                {"title": "Canvas tote", "variant_title": "", "quantity": 2},
            ],
        },
        "customer": {"first_name": "Ada"},
        "shipment": {
            "carrier": "DHL Express",
            "tracking_number": "JD014600006543210987",
            "tracking_url": "https://www.dhl.com/track?id=JD014600006543210987",
            "stage": "in_transit",
            "estimated_delivery_at": created + timedelta(days=3),
            "delivered_at": None,
        },
        "tracking_url": tracking_url,
        "return_url": f"{base}/returns",
        "unsubscribe_url": f"https://{domain}/unsubscribe/SAMPLE",
    }


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
        (Trigger.RETURN_REQUESTED, "Return requested"),
        (Trigger.RETURN_APPROVED, "Return approved"),
        (Trigger.RETURN_DECLINED, "Return declined"),
        (Trigger.RETURN_PROCESSED, "Return processed"),
        (Trigger.RETURN_CLOSED, "Return closed"),
    )
)
# An SMS step is added where a text is worth its cost (the shopper should act soon), disabled:
# SMS needs the merchant's own Twilio account and their shoppers' consent.
DEFAULT_SEQUENCES: tuple[SequenceSpec, ...] = (
    SequenceSpec(
        key="order_confirmed",
        name="Order confirmed",
        trigger=Trigger.ORDER_CONFIRMED,
        # Off: Shopify already sends an order confirmation.
        is_enabled=False,
        steps=(StepSpec("order_confirmed"),),
    ),
    SequenceSpec(
        key="shipped",
        name="Shipped",
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
        name="In transit",
        trigger=Trigger.IN_TRANSIT,
        # Off: a carrier scan a day is noise; available for merchants who want it.
        is_enabled=False,
        steps=(StepSpec("in_transit", conditions=(_C.NOT_DELIVERED, _C.NOT_CANCELLED)),),
    ),
    SequenceSpec(
        key="out_for_delivery",
        name="Out for delivery",
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
        name="Delivery attempted or problem",
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
        name="Ready for pickup",
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
        name="Delayed",
        trigger=Trigger.DELAYED,
        steps=(StepSpec("delayed", conditions=(_C.NOT_DELIVERED, _C.NOT_CANCELLED)),),
    ),
    SequenceSpec(
        key="delivered_review",
        name="Delivered, then a review request",
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
        name="Order cancelled",
        trigger=Trigger.ORDER_CANCELLED,
        steps=(StepSpec("order_cancelled"),),
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

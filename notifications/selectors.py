"""Read queries for the notifications admin; every one takes the shop first and is scoped by it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.translation import gettext

from notifications.defaults import (
    ALL_TEMPLATE_KEYS,
    DEFAULT_SEQUENCES,
    LANGUAGES,
    TEMPLATE_LABELS,
)
from notifications.models import (
    Channel,
    Message,
    MessageTemplate,
    Sequence,
    SequenceStep,
    Suppression,
)
from shopapp.models import Shop

_ORDER_NUMBER = re.compile(r"^#?(\d{1,18})$")


def sequence_list(*, shop: Shop) -> QuerySet[Sequence]:
    steps = SequenceStep.objects.filter(shop=shop).order_by("position", "id")
    return (
        Sequence.objects.filter(shop=shop)
        .prefetch_related(Prefetch("steps", queryset=steps))
        .order_by("id")
    )


def sequence_get(*, shop: Shop, sequence_id: int) -> Sequence | None:
    return Sequence.objects.filter(shop=shop, pk=sequence_id).first()


def sequence_step_list(*, shop: Shop, sequence: Sequence) -> QuerySet[SequenceStep]:
    return SequenceStep.objects.filter(shop=shop, sequence=sequence).order_by("position", "id")


def sequence_step_get(*, shop: Shop, sequence_id: int, step_id: int) -> SequenceStep | None:
    return (
        SequenceStep.objects.filter(shop=shop, sequence_id=sequence_id, pk=step_id)
        .select_related("sequence")
        .first()
    )


def template_keys(*, shop: Shop) -> list[str]:
    """Built-in keys, then any key the merchant created for themselves."""
    own = (
        MessageTemplate.objects.filter(shop=shop)
        .exclude(key__in=ALL_TEMPLATE_KEYS)
        .values_list("key", flat=True)
        .distinct()
    )
    return [*ALL_TEMPLATE_KEYS, *sorted(set(own))]


def template_key_label(key: str) -> str:
    known = TEMPLATE_LABELS.get(key)
    return str(known) if known is not None else key.replace("_", " ").capitalize()


_DEFAULT_NAMES = {spec.key: spec.name for spec in DEFAULT_SEQUENCES}


def sequence_display_name(sequence: Sequence) -> str:
    """A built-in sequence's name in the admin's language; a name the merchant changed (or a
    sequence of their own) as they wrote it. The stored name and key never change."""
    if _DEFAULT_NAMES.get(sequence.key) == sequence.name:
        return gettext(sequence.name)
    return sequence.name


@dataclass(frozen=True)
class TemplateCell:
    channel: str
    locale: str
    is_customized: bool


@dataclass(frozen=True)
class TemplateRow:
    key: str
    label: str
    cells: list[TemplateCell]


def template_overview(*, shop: Shop) -> list[TemplateRow]:
    """Every key × channel × language, marking the ones the merchant edited."""
    edited = set(MessageTemplate.objects.filter(shop=shop).values_list("key", "channel", "locale"))
    locales = list(LANGUAGES) + sorted({loc for _, _, loc in edited} - set(LANGUAGES))
    return [
        TemplateRow(
            key=key,
            label=template_key_label(key),
            cells=[
                TemplateCell(channel, locale, (key, channel, locale) in edited)
                for channel in Channel.values
                for locale in locales
            ],
        )
        for key in template_keys(shop=shop)
    ]


def template_get(*, shop: Shop, key: str, channel: str, locale: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(
        shop=shop, key=key, channel=channel, locale=locale
    ).first()


def message_list(
    *, shop: Shop, status: str = "", channel: str = "", order_query: str = ""
) -> QuerySet[Message]:
    messages = Message.objects.filter(shop=shop).select_related("order", "step__sequence")
    if status in Message.Status.values:
        messages = messages.filter(status=status)
    if channel in Channel.values:
        messages = messages.filter(channel=channel)
    query = order_query.strip()
    if query:
        match = _ORDER_NUMBER.match(query)
        condition = Q(order__name__iexact=query)
        if match:
            number = int(match.group(1))
            condition |= Q(order__order_number=number) | Q(order__shopify_id=number)
        messages = messages.filter(condition)
    return messages.order_by("-created_at", "-id")


def message_status_counts(*, shop: Shop) -> dict[str, int]:
    rows = Message.objects.filter(shop=shop).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def message_get(*, shop: Shop, message_id: int) -> Message | None:
    return (
        Message.objects.filter(shop=shop, pk=message_id)
        .select_related("order", "step__sequence")
        .first()
    )


def suppression_list(*, shop: Shop, query: str = "") -> QuerySet[Suppression]:
    suppressions = Suppression.objects.filter(shop=shop)
    if query.strip():
        suppressions = suppressions.filter(address__icontains=query.strip())
    return suppressions.order_by("-created_at", "-id")


def suppression_get(*, shop: Shop, suppression_id: int) -> Suppression | None:
    return Suppression.objects.filter(shop=shop, pk=suppression_id).first()


# What "resend the last message" can send again: a message that went out or failed to.
RESENDABLE_LAST = (Message.Status.SENT, Message.Status.FAILED)


def message_last_for_order(*, shop: Shop, order_id: int) -> Message | None:
    """The order's latest message that was sent or failed (by when it was due): what support
    sends again when a shopper says "I never got the email"."""
    return (
        Message.objects.filter(shop=shop, order_id=order_id, status__in=RESENDABLE_LAST)
        .select_related("step")
        .order_by("-due_at", "-id")
        .first()
    )

"""Forms of the notifications admin: parse and check what the merchant sent, nothing more."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from notifications.models import Channel, Message, SequenceStep
from notifications.rendering import SOURCE_MAX_CHARS, SUBJECT_MAX_CHARS

# A template key (built-in or the merchant's) and a locale as they appear in URLs.
TEMPLATE_KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LOCALE_PATTERN = re.compile(r"^[a-z]{2}(-[A-Za-z]{2})?$")

MINUTES_PER_UNIT = {"minutes": 1, "hours": 60, "days": 24 * 60}
# A year: anything longer is a typo, and due dates that far out outlive the order's story.
DELAY_MAX_MINUTES = 365 * 24 * 60


def delay_label(minutes: int) -> str:
    """``10080`` → ``"7 days"``; ``0`` → ``"at once"``."""
    if not minutes:
        return "at once"
    for unit in ("days", "hours", "minutes"):
        size = MINUTES_PER_UNIT[unit]
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit[:-1] if count == 1 else unit}"
    return f"{minutes} minutes"


class TemplateForm(forms.Form):
    subject = forms.CharField(required=False, max_length=SUBJECT_MAX_CHARS, strip=False)
    html_body = forms.CharField(required=False, max_length=SOURCE_MAX_CHARS, strip=False)
    text_body = forms.CharField(required=False, max_length=SOURCE_MAX_CHARS, strip=False)
    sms_body = forms.CharField(required=False, max_length=SOURCE_MAX_CHARS, strip=False)


class StepForm(forms.Form):
    delay_amount = forms.IntegerField(min_value=0, max_value=DELAY_MAX_MINUTES)
    delay_unit = forms.ChoiceField(choices=[(u, u.capitalize()) for u in MINUTES_PER_UNIT])
    delay_from = forms.ChoiceField(choices=SequenceStep.DelayFrom.choices)
    channel = forms.ChoiceField(choices=Channel.choices)
    template_key = forms.ChoiceField(choices=())
    conditions = forms.MultipleChoiceField(
        choices=SequenceStep.Condition.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    is_enabled = forms.BooleanField(required=False)

    def __init__(self, *args, template_keys: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["template_key"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared above
        field.choices = template_keys

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        amount, unit = data.get("delay_amount"), data.get("delay_unit")
        if amount is not None and unit:
            minutes = amount * MINUTES_PER_UNIT[unit]
            if minutes > DELAY_MAX_MINUTES:
                self.add_error("delay_amount", "At most 365 days.")
            data["delay_minutes"] = minutes
        return data

    @staticmethod
    def initial_for(step: SequenceStep) -> dict:
        minutes = step.delay_minutes
        unit = "minutes"
        for candidate in ("days", "hours"):
            if minutes and minutes % MINUTES_PER_UNIT[candidate] == 0:
                unit = candidate
                break
        return {
            "delay_amount": minutes // MINUTES_PER_UNIT[unit],
            "delay_unit": unit,
            "delay_from": step.delay_from,
            "channel": step.channel,
            "template_key": step.template_key,
            "conditions": list(step.conditions or []),
            "is_enabled": step.is_enabled,
        }


class MessageFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Message.Status.choices]
    )
    channel = forms.ChoiceField(required=False, choices=[("", "Any channel"), *Channel.choices])
    order = forms.CharField(required=False, max_length=64)

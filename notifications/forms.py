"""Forms of the notifications admin: parse and check what the merchant sent, nothing more."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

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
        return gettext("at once")
    for unit in ("days", "hours", "minutes"):
        size = MINUTES_PER_UNIT[unit]
        if minutes % size == 0:
            count = minutes // size
            return _COUNTED[unit](count) % {"count": count}
    return _COUNTED["minutes"](minutes) % {"count": minutes}


_COUNTED = {
    "days": lambda n: ngettext("%(count)s day", "%(count)s days", n),
    "hours": lambda n: ngettext("%(count)s hour", "%(count)s hours", n),
    "minutes": lambda n: ngettext("%(count)s minute", "%(count)s minutes", n),
}
UNIT_CHOICES = [("minutes", _("Minutes")), ("hours", _("Hours")), ("days", _("Days"))]


class TemplateForm(forms.Form):
    subject = forms.CharField(required=False, max_length=SUBJECT_MAX_CHARS, strip=False)
    html_body = forms.CharField(required=False, max_length=SOURCE_MAX_CHARS, strip=False)
    text_body = forms.CharField(required=False, max_length=SOURCE_MAX_CHARS, strip=False)
    sms_body = forms.CharField(required=False, max_length=SOURCE_MAX_CHARS, strip=False)


class StepForm(forms.Form):
    delay_amount = forms.IntegerField(min_value=0, max_value=DELAY_MAX_MINUTES)
    delay_unit = forms.ChoiceField(choices=UNIT_CHOICES)
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
        required=False, choices=[("", _("Any status")), *Message.Status.choices]
    )
    channel = forms.ChoiceField(required=False, choices=[("", _("Any channel")), *Channel.choices])
    order = forms.CharField(required=False, max_length=64)


_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
_TWILIO_SID = r"^AC[0-9a-fA-F]{32}$"
_E164 = r"^\+[1-9]\d{6,14}$"


class NotificationSettingsForm(forms.Form):
    """Who messages come from, when they may arrive, and the shop's Twilio account.

    The Twilio auth token is write-only: the page never shows it, an empty field keeps the
    stored one, and what is typed is stored encrypted (``TOKEN_ENCRYPTION_KEY``, Fernet).
    """

    sender_name = forms.CharField(
        max_length=255,
        required=False,
        label=_("Sender name"),
        help_text=_("Shown as the sender of emails; empty: your store's name."),
    )
    reply_to = forms.EmailField(
        required=False,
        label=_("Reply-to address"),
        help_text=_("Where shoppers' replies go; empty: your store's email."),
    )
    email_quiet_start = forms.RegexField(
        regex=_HHMM,
        label=_("Emails: quiet from"),
        error_messages={"invalid": _("Use HH:MM, e.g. 21:00.")},
    )
    email_quiet_end = forms.RegexField(
        regex=_HHMM,
        label=_("until"),
        help_text=_("In the shopper's time zone. The same time twice means no quiet hours."),
        error_messages={"invalid": _("Use HH:MM, e.g. 08:00.")},
    )
    sms_quiet_start = forms.RegexField(
        regex=_HHMM,
        label=_("Text messages: quiet from"),
        error_messages={"invalid": _("Use HH:MM.")},
    )
    sms_quiet_end = forms.RegexField(
        regex=_HHMM,
        label=_("until"),
        help_text=_("A text due at night waits until morning."),
        error_messages={"invalid": _("Use HH:MM.")},
    )
    combine_shipments_minutes = forms.IntegerField(
        min_value=0,
        max_value=24 * 60,
        label=_("Combine parcels shipped within (minutes)"),
        help_text=_(
            "Parcels of one order reaching the same stage this close together share one "
            "message. 0 sends one per parcel at once."
        ),
    )
    is_sms_enabled = forms.BooleanField(required=False, label=_("Send text messages (Twilio)"))
    twilio_account_sid = forms.RegexField(
        regex=_TWILIO_SID,
        required=False,
        label=_("Twilio Account SID"),
        help_text=_("Starts with AC, from your Twilio console."),
        error_messages={
            "invalid": _("A Twilio Account SID is AC followed by 32 letters and digits.")
        },
    )
    twilio_auth_token = forms.CharField(
        required=False,
        max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        label=_("Twilio auth token"),
        help_text=_("Stored encrypted and never shown again. Leave empty to keep the saved one."),
    )
    twilio_from_number = forms.RegexField(
        regex=_E164,
        required=False,
        label=_("Send from (phone number)"),
        help_text=_("Your Twilio number in international format, e.g. +15005550006."),
        error_messages={"invalid": _("Use the international format: + then the digits.")},
    )

    review_page_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label=_("Your review page"),
        help_text=_(
            "After a shopper rates their order from the review request, the page thanks them "
            "and links here to write a full review (your review app or a product page). "
            "Empty: no link."
        ),
        error_messages={"invalid": _("Enter a full web address starting with https://.")},
    )

    def __init__(self, *args: Any, has_stored_token: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.has_stored_token = has_stored_token

    def clean_review_page_url(self) -> str:
        # Shown to shoppers on the storefront: only an encrypted page, never http:, javascript:
        # or a page on a bare address (URLField already refuses anything but http(s)).
        value = (self.cleaned_data.get("review_page_url") or "").strip()
        if value and not value.lower().startswith("https://"):
            raise forms.ValidationError(gettext("Enter a full web address starting with https://."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("is_sms_enabled"):
            missing = [
                label
                for name, label in (
                    ("twilio_account_sid", gettext("the Account SID")),
                    ("twilio_from_number", gettext("the number to send from")),
                )
                if not cleaned.get(name)
            ]
            if not cleaned.get("twilio_auth_token") and not self.has_stored_token:
                missing.append(gettext("the auth token"))
            if missing:
                raise forms.ValidationError(
                    gettext("To send text messages, enter %(missing)s.")
                    % {"missing": ", ".join(missing)}
                )
        return cleaned

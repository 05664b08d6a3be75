"""The tracking page's two lookup forms: parsing and normalising what a shopper typed.

Nothing here says whether an order exists: that is ``selectors.order_lookup``'s job, and it
answers wrong numbers and wrong emails alike.
"""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

# Order names are short ("#1001", "EU-1001-B"); tracking numbers are at most ~35 characters
# (UPS 18, FedEx 12–22, DHL 10–39 with S10 13): a bound keeps junk out of queries and Redis.
MAX_ORDER_LENGTH = 40
MAX_TRACKING_NUMBER_LENGTH = 40
MAX_CONTACT_LENGTH = 254  # RFC 5321's longest forward path, more than any phone number
# Fewer digits than this cannot tell two phone numbers apart.
MIN_PHONE_DIGITS = 7
# Compare the last nine digits: the subscriber number, whatever country code or trunk prefix
# was typed ("+33 6 12 34 56 78" and "06 12 34 56 78", "+1 555 123 4567" and "555-123-4567"
# are the same phone). Nine is the shortest common national length (France, Spain); with the
# order number beside it, a collision gains nothing.
PHONE_COMPARED_DIGITS = 9

_TRACKING_NUMBER_RE = re.compile(r"^[A-Z0-9]{4,40}$")


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str) -> str:
    """Digits only, the last ``PHONE_COMPARED_DIGITS`` of them."""
    digits = "".join(ch for ch in value if ch.isdigit())
    return digits[-PHONE_COMPARED_DIGITS:]


def normalise_order_number(value: str) -> str:
    """What identifies an order in what was typed: stripped, without a leading '#'."""
    return value.strip().lstrip("#").strip()


def normalise_tracking_number(value: str) -> str:
    """Carriers print tracking numbers with spaces or dashes; they are compared without."""
    return re.sub(r"[\s-]+", "", value).upper()


class OrderLookupForm(forms.Form):
    order = forms.CharField(
        label=_("Order number"),
        max_length=MAX_ORDER_LENGTH,
        error_messages={"required": _("Enter your order number.")},
    )
    contact = forms.CharField(
        label=_("Email or phone number"),
        max_length=MAX_CONTACT_LENGTH,
        error_messages={
            "required": _("Enter the email address or phone number used for the order.")
        },
    )
    form_token = forms.CharField(required=False, max_length=512)

    def clean_order(self) -> str:
        value = normalise_order_number(self.cleaned_data["order"])
        if not value:
            raise forms.ValidationError(_("Enter your order number."))
        return value

    def clean_contact(self) -> str:
        raw = self.cleaned_data["contact"].strip()
        if "@" in raw:
            return "email:" + normalise_email(raw)
        digits = "".join(ch for ch in raw if ch.isdigit())
        if len(digits) < MIN_PHONE_DIGITS:
            raise forms.ValidationError(
                _("Enter the email address or phone number used for the order.")
            )
        return "phone:" + normalise_phone(raw)


class TrackingNumberForm(forms.Form):
    tracking_number = forms.CharField(
        label=_("Tracking number"),
        max_length=MAX_TRACKING_NUMBER_LENGTH + 20,
        error_messages={"required": _("Enter the tracking number as the carrier shows it.")},
    )
    form_token = forms.CharField(required=False, max_length=512)

    def clean_tracking_number(self) -> str:
        value = normalise_tracking_number(self.cleaned_data["tracking_number"])
        if not _TRACKING_NUMBER_RE.fullmatch(value):
            raise forms.ValidationError(_("Enter the tracking number as the carrier shows it."))
        return value

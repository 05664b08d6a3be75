"""The tracking page's two lookup forms: what a shopper typed, parsed by the storefront's
shared lookup (shopapp.storefront.lookup: the order number normalised once).

Nothing here says whether an order exists: that is ``storefront_order_lookup``'s job, and it
answers wrong numbers and wrong emails alike.
"""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from shopapp.storefront.lookup import (
    MAX_ORDER_LENGTH,
    OrderNumber,
    Proof,
    order_number_parse,
    proof_parse,
)

# Tracking numbers are at most ~35 characters (UPS 18, FedEx 12–22, DHL 10–39 with S10 13):
# a bound keeps junk out of queries and Redis.
MAX_TRACKING_NUMBER_LENGTH = 40
MAX_CONTACT_LENGTH = 254  # RFC 5321's longest forward path, more than any phone number

# tracking.problems.DESCRIPTION_MAX_LENGTH (the service checks it again).
PROBLEM_DESCRIPTION_MAX_LENGTH = 2000

_TRACKING_NUMBER_RE = re.compile(r"^[A-Z0-9]{4,40}$")


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

    def clean_order(self) -> OrderNumber:
        number = order_number_parse(self.cleaned_data["order"])
        if number is None:
            raise forms.ValidationError(_("Enter your order number."))
        return number

    def clean_contact(self) -> Proof:
        proof = proof_parse(self.cleaned_data["contact"], kinds=("email", "phone"))
        if proof is None:
            raise forms.ValidationError(
                _("Enter the email address or phone number used for the order.")
            )
        return proof


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


class ProblemReportForm(forms.Form):
    """A shopper's report about one parcel (tracking.problems.problem_report_from_shopper
    decides whether the parcel allows the kind)."""

    shipment = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        error_messages={"required": _("Choose the shipment the problem is about.")},
    )
    kind = forms.ChoiceField(
        choices=[("not_received", ""), ("damaged", ""), ("wrong_item", "")],
        error_messages={
            "required": _("Choose what went wrong."),
            "invalid_choice": _("Choose what went wrong."),
        },
    )
    description = forms.CharField(
        required=False,
        max_length=PROBLEM_DESCRIPTION_MAX_LENGTH,
        strip=True,
        error_messages={
            "max_length": _("Please describe the problem in at most %(limit_value)d characters.")
        },
    )
    form_token = forms.CharField(required=False, max_length=512)


class TrackingPageSettingsForm(forms.Form):
    """The tracking page's display choices (tracking.suggestions.PAGE_SETTINGS_FIELDS)."""

    show_line_items = forms.BooleanField(required=False, label=_("Show the items of each shipment"))
    show_event_timeline = forms.BooleanField(
        required=False, label=_("Show the carrier's tracking history")
    )
    show_return_link = forms.BooleanField(
        required=False, label=_("Offer a return once the order has arrived")
    )
    show_product_suggestions = forms.BooleanField(
        required=False,
        label=_('Show "You may also like": a few of your active products the order does not hold'),
    )
    is_standalone_page = forms.BooleanField(
        required=False, label=_("Show the page on its own instead of inside your theme")
    )

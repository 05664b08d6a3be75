"""Forms of the embedded admin's returns pages (the portal's are in returns.forms)."""

from typing import Any

from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile

from returns import images
from returns.models import Resolution, ReturnPolicy
from returns.policy import DECLINE_REASONS, RETURN_REASONS

_REASON_CHOICES = [(r, r.replace("_", " ").capitalize()) for r in RETURN_REASONS]
# Photos and labels: what carriers print and phones take; 10 MB is a generous label PDF.
LABEL_MAX_BYTES = 10 * 1024 * 1024


class ApproveForm(forms.Form):
    instructions = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)
    label = forms.FileField(required=False)

    def clean_label(self):
        label = self.cleaned_data.get("label")
        if label is None:
            return None
        if label.size > LABEL_MAX_BYTES:
            raise forms.ValidationError("The label is larger than 10 MB.")
        return label_clean(label)


def label_clean(label: UploadedFile) -> UploadedFile:
    """The label as it may be kept and sent, known by its bytes (the browser's content type and
    the file name are the uploader's to choose): a PDF, or a PNG or JPEG decoded within the
    pixel budget and encoded afresh (returns.images). Raises ValidationError."""
    label.seek(0)
    head = label.read(5)
    label.seek(0)
    if head == b"%PDF-":
        return SimpleUploadedFile("label.pdf", label.read(), content_type="application/pdf")
    try:
        clean = images.label_image_clean(label)
    except images.ImageRefused as refused:
        if refused.code == "too_large":
            raise forms.ValidationError(
                "The label image is too large to open (at most "
                f"{images.max_pixels() // 1_000_000} megapixels)."
            ) from None
        raise forms.ValidationError("Upload the label as a PDF, PNG or JPEG.") from None
    return SimpleUploadedFile(f"label.{clean.ext}", clean.content, content_type=clean.content_type)


class DeclineForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[(r, r.replace("_", " ").capitalize()) for r in DECLINE_REASONS]
    )
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea)


class ReceiveForm(forms.Form):
    """What became of the items that came back (the quantities are one field per line, read
    by the view). Shopify's ReverseFulfillmentOrderDispositionType values."""

    disposition = forms.ChoiceField(
        choices=[
            ("RESTOCKED", "Restock them at the location that shipped them"),
            ("NOT_RESTOCKED", "Don't restock them"),
        ],
        initial="RESTOCKED",
    )


class ProcessForm(forms.Form):
    resolution = forms.ChoiceField(choices=Resolution.choices)


class BlocklistForm(forms.Form):
    email = forms.EmailField(max_length=255)
    note = forms.CharField(required=False, max_length=255)


class PolicyForm(forms.ModelForm):
    reasons = forms.MultipleChoiceField(
        choices=_REASON_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    reasons_requiring_note = forms.MultipleChoiceField(
        choices=_REASON_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    reasons_requiring_photo = forms.MultipleChoiceField(
        choices=_REASON_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    auto_approve_excluded_reasons = forms.MultipleChoiceField(
        choices=_REASON_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ReturnPolicy
        fields = [
            "window_days",
            "transit_allowance_days",
            "allows_return_before_delivery",
            "excluded_product_tags",
            "excluded_product_types",
            "exclude_discounted_items",
            "allow_refund",
            "allow_store_credit",
            "allow_exchange",
            "restocking_fee_percent",
            "return_shipping_fee",
            "reasons",
            "reasons_requiring_note",
            "reasons_requiring_photo",
            "is_auto_approve",
            "auto_approve_max_value",
            "auto_approve_excluded_reasons",
            "high_return_ratio",
        ]
        widgets = {
            "excluded_product_tags": forms.TextInput(),
            "excluded_product_types": forms.TextInput(),
        }

    def clean_restocking_fee_percent(self):
        value = self.cleaned_data["restocking_fee_percent"]
        if not 0 <= value <= 100:
            raise forms.ValidationError("Between 0 and 100.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not any(
            cleaned.get(f) for f in ("allow_refund", "allow_store_credit", "allow_exchange")
        ):
            raise forms.ValidationError("Allow at least one way to settle a return.")
        return cleaned

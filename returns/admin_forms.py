"""Forms of the embedded admin's returns pages (the portal's are in returns.forms)."""

from decimal import Decimal
from typing import Any

from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from returns import images
from returns.models import Resolution, ReturnPolicy
from returns.policy import DECLINE_REASON_CHOICES, DEFAULT_REASONS, REASON_LABELS

# What a shopper may pick: Shopify's reasons less UNKNOWN (what Shopify records when nobody
# said why; never a choice), in the portal's words.
_REASON_CHOICES = [(r, REASON_LABELS[r]) for r in DEFAULT_REASONS]
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
            raise forms.ValidationError(gettext("The label is larger than 10 MB."))
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
                gettext("The label image is too large to open (at most %(count)s megapixels).")
                % {"count": images.max_pixels() // 1_000_000}
            ) from None
        raise forms.ValidationError(gettext("Upload the label as a PDF, PNG or JPEG.")) from None
    return SimpleUploadedFile(f"label.{clean.ext}", clean.content, content_type=clean.content_type)


class DeclineForm(forms.Form):
    reason = forms.ChoiceField(choices=DECLINE_REASON_CHOICES)
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea)


class ReceiveForm(forms.Form):
    """What became of the items that came back (the quantities are one field per line, read
    by the view). Shopify's ReverseFulfillmentOrderDispositionType values."""

    disposition = forms.ChoiceField(
        choices=[
            ("RESTOCKED", _("Restock them at the location that shipped them")),
            ("NOT_RESTOCKED", _("Don't restock them")),
        ],
        initial="RESTOCKED",
    )


class ProcessForm(forms.Form):
    # "Per item": each line as the shopper chose it (refund, store credit or exchange).
    resolution = forms.ChoiceField(
        choices=[(Resolution.MIXED.value, _("As the shopper chose, item by item"))]
        + [(c, label) for c, label in Resolution.choices if c != Resolution.MIXED]
    )


# A merchant's reasons-per-type lines: at most this many types, this many characters a line.
REASONS_BY_TYPE_MAX_LINES = 50
REASONS_BY_TYPE_MAX_LINE = 300


def reasons_by_type_text(mapping: dict[str, Any]) -> str:
    """{type: [reasons]} as the textarea shows it: "Beauty: DEFECTIVE, OTHER" per line."""
    return "\n".join(f"{kind}: {', '.join(reasons)}" for kind, reasons in mapping.items())


def reasons_by_type_parse(text: str) -> dict[str, list[str]]:
    """The textarea's lines as {type (lowercase): [reasons]}; ValidationError naming the line."""
    mapping: dict[str, list[str]] = {}
    rows = [row.strip() for row in (text or "").splitlines() if row.strip()]
    if len(rows) > REASONS_BY_TYPE_MAX_LINES:
        raise forms.ValidationError(
            gettext("At most %(count)s product types.") % {"count": REASONS_BY_TYPE_MAX_LINES}
        )
    known = {code.lower(): code for code in DEFAULT_REASONS}
    for number, row in enumerate(rows, start=1):
        kind, colon, listed = row.partition(":")
        kind = kind.strip().lower()
        if not colon or not kind or len(row) > REASONS_BY_TYPE_MAX_LINE:
            raise forms.ValidationError(
                gettext(
                    'Line %(number)s: write "Product type: REASON, REASON", e.g. '
                    '"Beauty: DEFECTIVE, WRONG_ITEM, OTHER".'
                )
                % {"number": number}
            )
        reasons = []
        for raw in listed.split(","):
            code = raw.strip().upper().replace("-", "_").replace(" ", "_").lower()
            if not code:
                continue
            if code not in known:
                raise forms.ValidationError(
                    gettext("Line %(number)s: %(reason)r is not a reason. Use: %(reasons)s.")
                    % {
                        "number": number,
                        "reason": raw.strip(),
                        "reasons": ", ".join(DEFAULT_REASONS),
                    }
                )
            reasons.append(known[code])
        if not reasons:
            raise forms.ValidationError(
                gettext("Line %(number)s: name at least one reason.") % {"number": number}
            )
        mapping[kind] = reasons
    return mapping


class BlocklistForm(forms.Form):
    email = forms.EmailField(max_length=255, label=_("Email"))
    note = forms.CharField(required=False, max_length=255, label=_("Note"))


class PolicyForm(forms.ModelForm):
    """The return policy as a merchant reads it: plain labels, a help line per field.

    Reasons: the portal offers exactly the ticked ones. A policy never saved here stores none,
    which the portal reads as "every reason" (returns.policy); the form shows that as all
    ticked, and refuses to save none ticked, so what the page shows is what shoppers get.
    """

    reasons = forms.MultipleChoiceField(
        choices=_REASON_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        label=_("Reasons shoppers can choose"),
        help_text=_("The portal offers exactly these. Tick at least one."),
        error_messages={"required": _("Tick at least one reason shoppers can choose.")},
    )
    reasons_requiring_note = forms.MultipleChoiceField(
        choices=_REASON_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Reasons that need a note"),
        help_text=_("The shopper must say a few words before sending the request."),
    )
    reasons_requiring_photo = forms.MultipleChoiceField(
        choices=_REASON_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Reasons that need a photo"),
        help_text=_("The shopper must attach at least one photo (e.g. of the damage)."),
    )
    reasons_by_product_type = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label=_("Reasons per product type"),
        help_text=_(
            'One product type a line: "Beauty: DEFECTIVE, NOT_AS_DESCRIBED, WRONG_ITEM, '
            'UNWANTED, OTHER". Items of a type listed are offered only those reasons (among '
            "the ones ticked above). Empty: no size, colour or style reasons for beauty, "
            "food, books and electronics."
        ),
    )
    auto_approve_excluded_reasons = forms.MultipleChoiceField(
        choices=_REASON_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Never approve automatically for"),
        help_text=_("Requests with these reasons always wait for you, whatever their value."),
    )

    SECTIONS = (
        (_("When shoppers can return"), ("window_days", "transit_allowance_days")),
        (
            _("What can't be returned"),
            ("excluded_product_tags", "excluded_product_types", "exclude_discounted_items"),
        ),
        (
            _("How shoppers are paid back"),
            (
                "allow_refund",
                "allow_store_credit",
                "allow_exchange",
                "allow_product_exchange",
                "store_credit_bonus_percent",
            ),
        ),
        (_("Fees"), ("restocking_fee_percent", "return_shipping_fee", "keep_items_max_value")),
        (
            _("Reasons"),
            (
                "reasons",
                "reasons_by_product_type",
                "reasons_requiring_note",
                "reasons_requiring_photo",
            ),
        ),
        (
            _("Automatic approval"),
            (
                "is_auto_approve",
                "auto_approve_max_value",
                "auto_approve_excluded_reasons",
                "high_return_ratio",
            ),
        ),
    )

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(str(title), [self[name] for name in names]) for title, names in self.SECTIONS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and not self.instance.reasons and not self.is_bound:
            self.initial["reasons"] = list(DEFAULT_REASONS)
        self.fields["store_credit_bonus_percent"].required = False
        self.fields["keep_items_max_value"].required = False
        if self.instance and not self.is_bound:
            self.initial["reasons_by_product_type"] = reasons_by_type_text(
                self.instance.reasons_by_product_type or {}
            )

    def clean_reasons_by_product_type(self) -> dict[str, list[str]]:
        return reasons_by_type_parse(self.cleaned_data.get("reasons_by_product_type") or "")

    def clean_keep_items_max_value(self):
        value = self.cleaned_data.get("keep_items_max_value") or Decimal("0")
        if value < 0:
            raise forms.ValidationError(gettext("0 or more, in your store's currency."))
        return value

    def clean_store_credit_bonus_percent(self):
        # Left empty (or posted by a page from before the field): no bonus.
        value = self.cleaned_data.get("store_credit_bonus_percent") or Decimal("0")
        if not 0 <= value <= 100:
            raise forms.ValidationError(gettext("Between 0 and 100, e.g. 10 for +10%."))
        return value

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
            "allow_product_exchange",
            "restocking_fee_percent",
            "return_shipping_fee",
            "store_credit_bonus_percent",
            "keep_items_max_value",
            "reasons",
            "reasons_by_product_type",
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
        labels = {
            "window_days": _("Return window (days)"),
            "transit_allowance_days": _("Days allowed for delivery"),
            "excluded_product_tags": _("Products tagged"),
            "excluded_product_types": _("Product types"),
            "exclude_discounted_items": _("Discounted items can't be returned"),
            "allow_refund": _("Refund to the original payment"),
            "allow_store_credit": _("Store credit"),
            "allow_exchange": _("Exchange for another variant"),
            "restocking_fee_percent": _("Restocking fee (%)"),
            "return_shipping_fee": _("Return shipping fee"),
            "store_credit_bonus_percent": _("Store credit bonus (%)"),
            "keep_items_max_value": _("Keep the items up to"),
            "is_auto_approve": _("Approve requests automatically"),
            "auto_approve_max_value": _("Up to this value"),
            "high_return_ratio": _("Flag customers who return this share of orders"),
        }
        help_texts = {
            "window_days": _("Counted from delivery. Requests after this are refused online."),
            "transit_allowance_days": _(
                "When the carrier never confirmed delivery, the window starts this many days "
                "after shipping."
            ),
            "excluded_product_tags": _(
                'Comma-separated, e.g. "final-sale, gift-card": products with any of these '
                "tags can't be returned."
            ),
            "excluded_product_types": _("Comma-separated product types that can't be returned."),
            "exclude_discounted_items": _("Items bought with a discount are final sale."),
            "allow_refund": _("Ways shoppers may ask to be paid back: keep at least one."),
            "restocking_fee_percent": _("Kept from refunds and store credit, not from exchanges."),
            "return_shipping_fee": _("Kept from every return, in your store's currency."),
            "keep_items_max_value": _(
                "Refunds and store credit worth at most this are settled without the items "
                "coming back (and without the return shipping fee). 0 turns it off."
            ),
            "store_credit_bonus_percent": _(
                "Added to what an item settled as store credit is worth, e.g. 10 for +10%. "
                "Shoppers see it in the portal; 0 for none."
            ),
            "is_auto_approve": _(
                "Approve without review when every rule below holds; the rest wait for you."
            ),
            "auto_approve_max_value": _("The items' value, in your store's currency."),
            "high_return_ratio": _(
                "Between 0 and 1: 0.5 flags a customer who returned from half their orders. "
                "Flagged requests are never approved automatically."
            ),
        }

    def clean_high_return_ratio(self):
        value = self.cleaned_data["high_return_ratio"]
        if not 0 < value <= 1:
            raise forms.ValidationError(
                gettext("Between 0 and 1, e.g. 0.5 for half of their orders.")
            )
        return value

    def clean_restocking_fee_percent(self):
        value = self.cleaned_data["restocking_fee_percent"]
        if not 0 <= value <= 100:
            raise forms.ValidationError(gettext("Between 0 and 100."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not any(
            cleaned.get(f) for f in ("allow_refund", "allow_store_credit", "allow_exchange")
        ):
            raise forms.ValidationError(gettext("Allow at least one way to settle a return."))
        if cleaned.get("allow_product_exchange") and not cleaned.get("allow_exchange"):
            self.add_error(
                "allow_product_exchange",
                gettext("Turn on exchanges to offer a different product."),
            )
        return cleaned

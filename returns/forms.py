"""The returns portal's forms: the guest lookup, and the item choices (quantities, reasons,
notes, photos, resolution).

Nothing here says whether an order exists or what is eligible: the lookup form only normalises
what was typed, and the items form checks the shopper's choices against the eligibility and
policy it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext_lazy as _

from returns import images, portal
from returns.catalogue import CatalogueProduct
from returns.models import Resolution
from shopapp.storefront.lookup import (
    MAX_ORDER_LENGTH,
    OrderNumber,
    Proof,
    order_number_parse,
    proof_parse,
)

# RFC 5321's longest forward path: more than any email or postal code.
MAX_CONTACT_LENGTH = 254


class ReturnLookupForm(forms.Form):
    order = forms.CharField(label=_("Order number"), max_length=MAX_ORDER_LENGTH)
    contact = forms.CharField(
        label=_("Email address or shipping postal code"), max_length=MAX_CONTACT_LENGTH
    )

    def clean_order(self) -> OrderNumber:
        number = order_number_parse(self.cleaned_data["order"])
        if number is None:
            raise forms.ValidationError(_("Enter your order number."))
        return number

    def clean_contact(self) -> Proof:
        proof = proof_parse(self.cleaned_data["contact"], kinds=("email", "postal"))
        if proof is None:
            raise forms.ValidationError(
                _("Enter the email address used for the order or its shipping postal code.")
            )
        return proof


@dataclass
class ItemChoice:
    """One eligible line item as the items form offers it."""

    line_item_id: int
    returnable_quantity: int
    # The other variants of its product available for sale: [(variant id, title)], read from
    # Shopify when the policy offers exchanges (returns.selectors).
    exchange_variants: list[tuple[int, str]] | None = None
    # The reasons offered for this item (its product type's, returns.policy); None: all.
    reasons: list[str] | None = None
    # The other products it may be exchanged for (returns.catalogue, the item's own product
    # left out) when the policy offers it; empty otherwise.
    exchange_products: list[CatalogueProduct] = field(default_factory=list)


@dataclass
class ItemsResult:
    items: list[portal.SelectedItem] = field(default_factory=list)
    resolution: str = ""
    # New photos per line item id, checked but not yet stashed.
    uploads: dict[int, list[images.CleanImage]] = field(default_factory=dict)
    # Field name → message; "__all__" for the form as a whole.
    errors: dict[str, Any] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        return not self.errors


class _Refused(Exception):
    """One field of one item is wrong: the message goes next to it."""

    def __init__(self, field: str, message: Any) -> None:
        super().__init__(str(message))
        self.field = field
        self.message = message


def _quantity(data: QueryDict, key: str, choice: ItemChoice) -> int:
    raw = data.get(f"quantity-{key}", "0").strip() or "0"
    if not raw.isdigit():
        raise _Refused("quantity", _("Choose a quantity."))
    quantity = int(raw)
    if quantity > choice.returnable_quantity:
        raise _Refused(
            "quantity",
            _("You can return at most %(count)s of this item.")
            % {"count": choice.returnable_quantity},
        )
    return quantity


def _reason_and_note(
    data: QueryDict, key: str, *, reasons: list[str], requires_note: Any
) -> tuple[str, str]:
    reason = data.get(f"reason-{key}", "")
    if reason not in reasons:
        raise _Refused("reason", _("Choose a reason for this item."))
    note = data.get(f"note-{key}", "").strip()
    if len(note) > portal.NOTE_MAX_CHARS:
        raise _Refused(
            "note",
            _("Keep the note under %(count)s characters.") % {"count": portal.NOTE_MAX_CHARS},
        )
    if requires_note(reason) and not note:
        raise _Refused("note", _("Tell us what's wrong with this item."))
    return reason, note


def _photos(
    files: MultiValueDict, key: str, *, earlier: portal.SelectedItem | None
) -> tuple[list[images.CleanImage], list[dict]]:
    """(new photos, decoded and encoded afresh; photos kept from before going back)."""
    uploads = [f for f in files.getlist(f"photos-{key}") if f.name or f.size]
    kept = earlier.photos if earlier is not None and not uploads else []
    if len(uploads) > portal.PHOTOS_MAX_PER_ITEM:
        raise _Refused(
            "photos",
            _("Attach at most %(count)s photos per item.") % {"count": portal.PHOTOS_MAX_PER_ITEM},
        )
    checked = []
    for upload in uploads:
        if (upload.size or 0) > portal.PHOTO_MAX_BYTES:
            raise _Refused(
                "photos",
                _("Each photo must be %(size)s MB or smaller.")
                % {"size": portal.PHOTO_MAX_BYTES // (1024 * 1024)},
            )
        upload.seek(0)
        try:
            checked.append(images.photo_clean(upload))
        except images.ImageRefused as refused:
            raise _Refused("photos", _photo_refusal(refused.code)) from None
    return checked, list(kept)


def _photo_refusal(code: str) -> Any:
    if code == "too_large":
        return _(
            "This photo is too large to open (at most %(megapixels)s megapixels). "
            "Try a smaller one."
        ) % {"megapixels": images.max_pixels() // 1_000_000}
    if code == "corrupt":
        return _("This photo couldn't be read. It may be damaged: try another one.")
    return _("Photos must be JPEG, PNG or WebP images.")


@dataclass(frozen=True)
class ExchangeChoice:
    variant_id: int
    title: str
    # A different product's id and unit price; None for another size or colour.
    product_id: int | None = None
    unit_price: str = ""


def _exchange_choice(data: QueryDict, key: str, choice: ItemChoice) -> ExchangeChoice:
    """What the item is exchanged for. "exchange-kind-<item>" says which: "variant" (another
    size or colour; the default, for pages and scripts from before the choice) or "product"
    (a different product, when offered)."""
    kind = data.get(f"exchange-kind-{key}", "variant")
    if kind != "product":
        return ExchangeChoice(*_exchange_variant(data, key, choice))
    # Only a variant of a product offered on the page (the shop's catalogue as kept, this
    # item's product left out) can be asked for: an id of another shop's product, of a
    # product not offered, or of this item's own product is refused, never sent.
    offered = {
        variant.variant_id: (product, variant)
        for product in choice.exchange_products
        for variant in product.variants
    }
    if not offered:
        raise _Refused("variant", _("No other product is available to exchange for."))
    raw = data.get(f"product-variant-{key}", "").strip()
    if not raw:
        raise _Refused("variant", _("Choose the product you'd like instead."))
    if not raw.isdigit() or int(raw) not in offered:
        raise _Refused("variant", _("That option isn't available. Choose one from the list."))
    product, variant = offered[int(raw)]
    return ExchangeChoice(
        variant_id=variant.variant_id,
        title=product.variant_label(variant),
        product_id=product.product_id,
        unit_price=str(variant.price),
    )


def _exchange_variant(data: QueryDict, key: str, choice: ItemChoice) -> tuple[int, str]:
    # Only a variant offered on the page (read from Shopify for this product) can be asked
    # for: a number typed or forged into the form is refused, never sent.
    offered = dict(choice.exchange_variants or [])
    raw = data.get(f"variant-{key}", "").strip()
    if not offered:
        raise _Refused(
            "variant", _("No other size or colour of this item is available to exchange for.")
        )
    if not raw:
        raise _Refused("variant", _("Choose what you'd like instead."))
    if not raw.isdigit() or int(raw) not in offered:
        raise _Refused("variant", _("That option isn't available. Choose one from the list."))
    return int(raw), offered[int(raw)]


def _item_clean(
    choice: ItemChoice,
    *,
    data: QueryDict,
    files: MultiValueDict,
    resolution: str,
    resolutions: list[str],
    reasons: list[str],
    requires_note: Any,
    requires_photo: Any,
    earlier: portal.SelectedItem | None,
) -> tuple[portal.SelectedItem | None, list[images.CleanImage]]:
    """One item of the form: None when it was not chosen; raises _Refused."""
    key = str(choice.line_item_id)
    quantity = _quantity(data, key, choice)
    if quantity == 0:
        return None, []
    reason, note = _reason_and_note(
        data, key, reasons=choice.reasons or reasons, requires_note=requires_note
    )
    checked, kept = _photos(files, key, earlier=earlier)
    if requires_photo(reason) and not (checked or kept):
        raise _Refused("photos", _("Add at least one photo of this item."))
    # Each item its own resolution; the form-wide one (an older page, a script) otherwise.
    resolution = data.get(f"resolution-{key}", "") or resolution
    if resolution not in resolutions:
        raise _Refused("resolution", _("Choose what you'd like for this item."))
    exchange = _exchange_choice(data, key, choice) if resolution == Resolution.EXCHANGE else None
    item = portal.SelectedItem(
        line_item_id=choice.line_item_id,
        quantity=quantity,
        reason=reason,
        note=note,
        exchange_variant_id=exchange.variant_id if exchange else None,
        exchange_variant_title=exchange.title if exchange else "",
        photos=kept,
        resolution=resolution,
        exchange_product_id=exchange.product_id if exchange else None,
        exchange_unit_price=exchange.unit_price if exchange else "",
    )
    return item, checked


def items_form_clean(
    *,
    data: QueryDict,
    files: MultiValueDict,
    choices: list[ItemChoice],
    reasons: list[str],
    resolutions: list[str],
    requires_note: Any,
    requires_photo: Any,
    previous: dict[int, portal.SelectedItem] | None = None,
) -> ItemsResult:
    """Check the items step. Only the ``choices`` given (the eligible items) can be chosen;
    anything else posted is ignored. ``requires_note`` / ``requires_photo`` are predicates on
    a reason. ``previous`` holds what the shopper chose before going back from the review, so
    photos already attached count."""
    result = ItemsResult()
    previous = previous or {}
    resolution = data.get("resolution", "")
    if resolution and resolution not in resolutions:
        result.errors["resolution"] = _("Choose how you'd like to be refunded.")
    for choice in choices:
        try:
            item, checked = _item_clean(
                choice,
                data=data,
                files=files,
                resolution=resolution,
                resolutions=resolutions,
                reasons=reasons,
                requires_note=requires_note,
                requires_photo=requires_photo,
                earlier=previous.get(choice.line_item_id),
            )
        except _Refused as refused:
            result.errors[f"{refused.field}-{choice.line_item_id}"] = refused.message
            continue
        if item is None:
            continue
        result.items.append(item)
        if checked:
            result.uploads[choice.line_item_id] = checked
    if not result.items and not any(
        k.startswith(("quantity-", "reason-", "resolution-")) for k in result.errors
    ):
        result.errors["__all__"] = _("Choose at least one item to return.")
    result.resolution = request_resolution([item.resolution for item in result.items])
    return result


def request_resolution(resolutions: list[str]) -> str:
    """The request's resolution: the items' one, else MIXED ("" for no items)."""
    kinds = set(resolutions)
    if not kinds:
        return ""
    return kinds.pop() if len(kinds) == 1 else Resolution.MIXED.value

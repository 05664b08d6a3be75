"""The branding screen's form: parse what the merchant sent; shopapp.branding.services checks
colours, contrast and the logo."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from shopapp.branding.logo import LOGO_MAX_BYTES
from shopapp.branding.look import FONT_STACKS
from shopapp.branding.services import FOOTER_MAX_CHARS

_PHONE = RegexValidator(
    r"^\+?[0-9][0-9 ()./-]{3,30}$", "Enter a phone number, for example +1 555 010 0199."
)


class BrandingForm(forms.Form):
    accent_color = forms.CharField(max_length=16)
    text_color = forms.CharField(max_length=16)
    background_color = forms.CharField(max_length=16)
    font = forms.ChoiceField(choices=[(key, label) for key, (label, _) in FONT_STACKS.items()])
    support_email = forms.EmailField(required=False, max_length=254)
    support_phone = forms.CharField(required=False, max_length=32, validators=[_PHONE])
    footer_text = forms.CharField(
        required=False, max_length=FOOTER_MAX_CHARS, widget=forms.Textarea
    )
    logo = forms.FileField(required=False)
    remove_logo = forms.BooleanField(required=False)
    follows_theme = forms.BooleanField(required=False)

    def clean_logo(self) -> bytes | None:
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        if upload.size > LOGO_MAX_BYTES:
            raise forms.ValidationError(
                f"The logo is too large: at most {LOGO_MAX_BYTES // (1024 * 1024)} MB."
            )
        return upload.read()

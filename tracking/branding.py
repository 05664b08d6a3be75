"""The storefront's look for a shop: the tracking page's settings made safe to render, shared
with the returns portal (through tracking.selectors.storefront_branding).

The shop's branding (shopapp.branding, set once for pages and emails) wins where the merchant
set it: colours, font, logo and support contact; the page's own choices (sections shown, its
message) stay here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from shopapp.branding.look import BrandLook
from tracking.models import TrackingSettings

DEFAULT_ACCENT = "#008060"
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Branding:
    accent: str
    accent_ink: str
    logo_url: str
    custom_message: str
    show_line_items: bool
    show_event_timeline: bool
    show_return_link: bool
    is_standalone_page: bool
    # From the shop's branding (shopapp.branding.look), else the page's defaults.
    text: str = "#1c1c1c"
    muted: str = "#595959"
    background: str = "#ffffff"
    soft: str = "#f6f6f7"
    line: str = "#d4d4d4"
    accent_text: str = ""
    font_stack: str = "inherit"
    support_email: str = ""
    support_phone: str = ""
    footer: str = ""


def tracking_branding(settings: TrackingSettings, look: BrandLook | None = None) -> Branding:
    accent = settings.accent_color if _HEX_COLOUR.fullmatch(settings.accent_color or "") else ""
    accent = (accent or DEFAULT_ACCENT).lower()
    logo_url = safe_url(settings.logo_url, https_only=True)
    brand: dict[str, str] = {}
    if look is not None:
        accent = look.accent
        logo_url = look.logo_url or logo_url
        brand = {
            "text": look.text,
            "muted": look.muted,
            "background": look.background,
            "soft": look.soft,
            "line": look.line,
            "accent_text": look.accent_text,
            "font_stack": look.font_stack,
            "support_email": look.support_email,
            "support_phone": look.support_phone,
            "footer": look.footer,
        }
    return Branding(
        accent=accent,
        accent_ink=_readable_ink(accent),
        logo_url=logo_url,
        custom_message=settings.custom_message.strip(),
        show_line_items=settings.show_line_items,
        show_event_timeline=settings.show_event_timeline,
        show_return_link=settings.show_return_link,
        is_standalone_page=settings.is_standalone_page,
        **brand,
    )


def _luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _readable_ink(background: str) -> str:
    """Black or white, whichever reads better on the merchant's accent (WCAG contrast)."""
    lum = _luminance(background)
    on_white = 1.05 / (lum + 0.05)
    on_black = (lum + 0.05) / 0.05
    return "#ffffff" if on_white >= on_black else "#000000"


def safe_url(url: str, *, https_only: bool = False) -> str:
    """A carrier or logo URL fit for href/src: http(s) only (never ``javascript:``)."""
    url = (url or "").strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    allowed = {"https"} if https_only else {"http", "https"}
    return url if scheme in allowed else ""

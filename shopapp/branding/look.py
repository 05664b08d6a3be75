"""The shop's look as every page and email uses it: colours checked for contrast, a font stack.

    ShopBranding row (or none) ─ brand_look ─▶ BrandLook: accent, the ink on it, a shade of it
        readable as text, text, muted text, background, font stack, logo URL, support contact

Contrast follows WCAG 2.2 (relative luminance, 1.4.3): body text against the background must
reach 4.5:1 (AA) or the merchant's choice is refused with the ratio; an accent too light (or
too dark) to be read as link text is darkened (or lightened) just enough, and the button's ink
is black or white, whichever reads better, so a merchant's brand colour is never refused.
Fonts are system and web-safe stacks only (nothing from a CDN: no request to a third party,
no layout shift while a font loads); names are unquoted CSS identifiers, safe inside a
``style`` attribute.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

DEFAULT_ACCENT = "#008060"
DEFAULT_TEXT = "#1c1c1c"
DEFAULT_BACKGROUND = "#ffffff"
# WCAG 2.2 AA for normal text (success criterion 1.4.3).
AA_TEXT_RATIO = 4.5

# The card colour of the emails' dark mode (notifications/default_templates/layout.html).
DARK_SURFACE = "#1c1c1e"

HEX_COLOUR = re.compile(r"^#[0-9a-f]{6}$")

# Labels are the admin's words (lazy: read in the staff member's language); stacks are CSS.
FONT_STACKS: dict[str, tuple[Any, str]] = {
    "system": (
        _("System (the shopper's own)"),
        "system-ui,-apple-system,BlinkMacSystemFont,Segoe UI,Roboto,Helvetica Neue,Arial,"
        "sans-serif",
    ),
    "helvetica": ("Helvetica / Arial", "Helvetica Neue,Helvetica,Arial,sans-serif"),
    "verdana": (_("Verdana (wide, very legible)"), "Verdana,Geneva,Tahoma,sans-serif"),
    "trebuchet": ("Trebuchet", "Trebuchet MS,Lucida Grande,Lucida Sans Unicode,sans-serif"),
    "georgia": (_("Georgia (serif)"), "Georgia,Times New Roman,Times,serif"),
    "palatino": (_("Palatino (serif)"), "Palatino Linotype,Palatino,Book Antiqua,Georgia,serif"),
    "mono": (_("Monospace"), "ui-monospace,Menlo,Consolas,Courier New,monospace"),
}
DEFAULT_FONT = "system"


class ColourInvalid(ValueError):
    """Not a ``#rrggbb`` colour."""


def colour_parse(value: str) -> str:
    """``#ABCDEF``/``abcdef``/``#abc`` → ``#abcdef``; anything else raises ColourInvalid."""
    text = (value or "").strip().lower()
    if text and not text.startswith("#"):
        text = "#" + text
    if re.fullmatch(r"#[0-9a-f]{3}", text):
        text = "#" + "".join(c * 2 for c in text[1:])
    if not HEX_COLOUR.fullmatch(text):
        raise ColourInvalid(value)
    return text


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    a, b = sorted((luminance(first), luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def readable_ink(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (always ≥ 4.58:1)."""
    on_white = contrast_ratio("#ffffff", background)
    on_black = contrast_ratio("#000000", background)
    return "#ffffff" if on_white >= on_black else "#000000"


def _mix(colour: str, toward: str, share: float) -> str:
    a, b = _rgb(colour), _rgb(toward)
    return _hex(tuple(x + (y - x) * share for x, y in zip(a, b, strict=True)))  # type: ignore[arg-type]


def readable_on(colour: str, background: str, *, ratio: float = AA_TEXT_RATIO) -> str:
    """``colour`` itself when it reads on ``background``, else the nearest shade of it (mixed
    toward black or white, whichever the background calls for) that does."""
    if contrast_ratio(colour, background) >= ratio:
        return colour
    toward = readable_ink(background)
    for step in range(1, 21):
        shade = _mix(colour, toward, step / 20)
        if contrast_ratio(shade, background) >= ratio:
            return shade
    return toward


@dataclass(frozen=True)
class BrandLook:
    accent: str
    # Black or white: text on an accent-coloured button.
    accent_ink: str
    # The accent, or a shade of it, readable as link text on the background.
    accent_text: str
    # The accent as text on a dark-mode email (mail clients that honour prefers-color-scheme).
    accent_on_dark: str
    text: str
    # Secondary text (dates, footers): between text and background, still AA.
    muted: str
    background: str
    # A soft surface (cards, bars' track) a step away from the background.
    soft: str
    line: str
    font: str
    font_stack: str
    logo_url: str
    logo_width: int
    logo_height: int
    support_email: str
    support_phone: str
    footer: str

    def as_context(self) -> dict[str, Any]:
        """Plain values for a template (the email's ``brand`` variable)."""
        return asdict(self)


def look_build(
    *,
    accent: str = DEFAULT_ACCENT,
    text: str = DEFAULT_TEXT,
    background: str = DEFAULT_BACKGROUND,
    font: str = DEFAULT_FONT,
    logo_url: str = "",
    logo_width: int = 0,
    logo_height: int = 0,
    support_email: str = "",
    support_phone: str = "",
    footer: str = "",
) -> BrandLook:
    """The look from stored choices; a value that is not (or no longer) valid falls back to
    the default, so nothing unchecked reaches CSS."""

    def safe(value: str, default: str) -> str:
        try:
            return colour_parse(value)
        except ColourInvalid:
            return default

    accent, text, background = (
        safe(accent, DEFAULT_ACCENT),
        safe(text, DEFAULT_TEXT),
        safe(background, DEFAULT_BACKGROUND),
    )
    if contrast_ratio(text, background) < AA_TEXT_RATIO:
        text = readable_on(text, background)
    font_key = font if font in FONT_STACKS else DEFAULT_FONT
    soft = _mix(background, text, 0.05)
    # Secondary text sits on the background and on the soft surface (an email's footer).
    muted = readable_on(readable_on(_mix(text, background, 0.4), background), soft)
    return BrandLook(
        accent=accent,
        accent_ink=readable_ink(accent),
        accent_text=readable_on(accent, background),
        accent_on_dark=readable_on(accent, DARK_SURFACE),
        text=text,
        muted=muted,
        background=background,
        soft=soft,
        line=_mix(background, text, 0.18),
        font=font_key,
        font_stack=FONT_STACKS[font_key][1],
        logo_url=logo_url,
        logo_width=logo_width,
        logo_height=logo_height,
        support_email=support_email,
        support_phone=support_phone,
        footer=footer.strip(),
    )

"""Changing the shop's branding: checked whole, then written in one statement."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shopapp.branding.logo import CleanLogo, LogoRefused, logo_clean
from shopapp.branding.look import (
    AA_TEXT_RATIO,
    FONT_STACKS,
    ColourInvalid,
    colour_parse,
    contrast_ratio,
)
from shopapp.models import Shop, ShopBranding

logger = logging.getLogger(__name__)

FOOTER_MAX_CHARS = 500


class BrandingInvalid(Exception):
    """``problems``: field → message for the merchant. Nothing was written."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class BrandingChange:
    accent_color: str
    text_color: str
    background_color: str
    font: str
    support_email: str = ""
    support_phone: str = ""
    footer_text: str = ""
    # New logo bytes as uploaded (cleaned here), or None to keep the current one.
    logo: bytes | None = None
    remove_logo: bool = False
    # Use the storefront theme's colours (shopapp.branding.theme) instead of the three above,
    # which are kept for when the merchant stops following it.
    follows_theme: bool = False


def contrast_problem(text: str, background: str) -> str:
    """The merchant-facing refusal when ``text`` on ``background`` is below WCAG AA, or ""."""
    ratio = contrast_ratio(text, background)
    if ratio >= AA_TEXT_RATIO:
        return ""
    return (
        f"Text in {text} on {background} has a contrast of {ratio:.2f}:1; WCAG AA needs at "
        f"least {AA_TEXT_RATIO}:1. Choose a darker text colour or a lighter background "
        "(or the reverse)."
    )


def branding_check(
    change: BrandingChange,
) -> tuple[dict[str, str], dict[str, str], CleanLogo | None]:
    """(problems, normalised colours, cleaned logo)."""
    problems: dict[str, str] = {}
    colours: dict[str, str] = {}
    for field in ("accent_color", "text_color", "background_color"):
        try:
            colours[field] = colour_parse(getattr(change, field))
        except ColourInvalid:
            problems[field] = "Enter a colour as #rrggbb, for example #008060."
    if "text_color" in colours and "background_color" in colours:
        problem = contrast_problem(colours["text_color"], colours["background_color"])
        if problem:
            problems["text_color"] = problem
    if change.font not in FONT_STACKS:
        problems["font"] = "Choose one of the listed fonts."
    if len(change.footer_text) > FOOTER_MAX_CHARS:
        problems["footer_text"] = f"At most {FOOTER_MAX_CHARS} characters."
    logo = None
    if change.logo is not None and not change.remove_logo:
        try:
            logo = logo_clean(change.logo)
        except LogoRefused as exc:
            problems["logo"] = str(exc)
    return problems, colours, logo


def branding_save(*, shop: Shop, change: BrandingChange) -> ShopBranding:
    """Store the shop's branding; raises BrandingInvalid (nothing written) on any problem."""
    problems, colours, logo = branding_check(change)
    if problems:
        raise BrandingInvalid(problems)
    values: dict[str, object] = {
        **colours,
        "font": change.font,
        "support_email": change.support_email.strip(),
        "support_phone": change.support_phone.strip(),
        "footer_text": change.footer_text.strip(),
        "follows_theme": change.follows_theme,
    }
    if change.remove_logo:
        values.update(logo=b"", logo_content_type="", logo_digest="", logo_width=0, logo_height=0)
    elif logo is not None:
        values.update(
            logo=logo.content,
            logo_content_type=logo.content_type,
            logo_digest=logo.digest,
            logo_width=logo.width,
            logo_height=logo.height,
        )
    branding, _ = ShopBranding.objects.update_or_create(shop=shop, defaults=values)
    logger.info(
        "shopapp.branding.saved",
        extra={"shop": shop.myshopify_domain, "has_logo": bool(branding.logo_digest)},
    )
    return branding

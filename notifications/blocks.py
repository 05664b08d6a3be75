"""Emails edited as blocks: the merchant writes the words, the design stays ours.

    EmailBlocks(subject, heading, text, button_label, accent_color)   per key and language
        ─ blocks_validate: each block parsed and rendered with the sample order (python-liquid,
                           the sandbox of notifications.rendering); a broken block is refused
                           with its name, line and message, and nothing is saved
        ─ blocks_compose:  the greeting, the text's paragraphs, the button to the message's
                           page, the parcels (or the return's details, or the items) inside the
                           designed layout (notifications.copy) ─▶ TemplateSource; the review
                           request keeps its one-click stars after the merchant's text

The composed HTML and text are stored in the shop's MessageTemplate row next to the blocks,
so sending renders exactly what the preview showed and notifications.rendering needs nothing
new. Liquid works in every block (``{{ order.name }}``, ``{% if shipment.carrier %}``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications.copy import (
    DELIVERY_ISSUE_KEY,
    _block_html,
    _block_text,
    _copy,
    _strings,
    email_layout_html,
    email_layout_text,
)
from notifications.models import Channel
from notifications.rendering import (
    SOURCE_MAX_CHARS,
    SUBJECT_MAX_CHARS,
    TemplateProblem,
    TemplateSource,
    template_validate,
)
from shopapp.branding.look import ColourInvalid, colour_parse, readable_ink

BLOCK_LABELS: dict[str, Any] = {
    "subject": _("Subject"),
    "heading": _("Heading"),
    "text": _("Text"),
    "button_label": _("Button label"),
    "accent_color": _("Button colour"),
}
BLOCK_MAX_CHARS: dict[str, int] = {
    "subject": SUBJECT_MAX_CHARS,
    "heading": 500,
    "text": SOURCE_MAX_CHARS // 10,
    "button_label": 100,
    "accent_color": 16,
}
_BUTTON = re.compile(r"^@button\s+(.+?)\s*\|\s*([^|]+)$")
_DETAILS = ("@shipments", "@return_details", "@items")


@dataclass(frozen=True)
class EmailBlocks:
    subject: str
    heading: str
    text: str
    button_label: str = ""
    # "" follows the shop's branding; else #rrggbb for this email's button and progress.
    accent_color: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EmailBlocks:
        return cls(**{name: str(data.get(name) or "") for name in BLOCK_LABELS})


def blocks_supported(key: str, channel: str) -> bool:
    """Emails only; the combined "attempted or problem" email picks its copy by stage, which
    two sets of blocks would not say: it is edited as HTML."""
    return channel == Channel.EMAIL and key != DELIVERY_ISSUE_KEY


def _language(locale: str) -> str:
    language = (locale or "en").split("-", 1)[0].lower()
    return language if language in ("en", "es", "fr", "de") else "en"


def _copy_for(key: str, language: str):
    try:
        return _copy(language, key)
    except FileNotFoundError:
        # A merchant's own template key: the order-confirmed structure (items, button).
        return _copy(language, "order_confirmed")


def blocks_default(key: str, locale: str) -> EmailBlocks:
    """The built-in copy as blocks: what the editor starts from."""
    copy = _copy_for(key, _language(locale))
    paragraphs = [b for b in copy.blocks if not b.startswith("@")]
    button = next((m.group(2).strip() for b in copy.blocks if (m := _BUTTON.match(b))), "")
    return EmailBlocks(
        subject=copy.subject,
        heading=copy.subject,
        text="\n\n".join(paragraphs),
        button_label=button,
    )


def _structure(key: str, language: str) -> tuple[str, str]:
    """(the button's URL, the details directive) of the key's built-in copy."""
    copy = _copy_for(key, language)
    url = next((m.group(1) for b in copy.blocks if (m := _BUTTON.match(b))), "{{ tracking_url }}")
    details = next((b for b in copy.blocks if b in _DETAILS), "@items")
    return url, details


def blocks_validate(blocks: EmailBlocks) -> list[TemplateProblem]:
    """Errors (and warnings) per block, named by the block: nothing is saved with an error."""
    problems: list[TemplateProblem] = []
    for name, label in BLOCK_LABELS.items():
        value = getattr(blocks, name)
        if len(value) > BLOCK_MAX_CHARS[name]:
            problems.append(
                TemplateProblem(name, None, gettext("%(block)s: too long.") % {"block": label})
            )
            continue
        if name == "accent_color":
            if value:
                try:
                    colour_parse(value)
                except ColourInvalid:
                    problems.append(
                        TemplateProblem(
                            name,
                            None,
                            gettext("%(block)s: enter a colour as #rrggbb.") % {"block": label},
                        )
                    )
            continue
        if name in ("subject", "heading") and not value.strip():
            problems.append(
                TemplateProblem(name, None, gettext("%(block)s: needed.") % {"block": label})
            )
            continue
        # Each block alone through the sandbox (parse, trial render with the sample order).
        for problem in template_validate(subject=value, channel=Channel.EMAIL):
            if problem.message == "An email needs a subject.":
                continue
            where = gettext(", line %(line)s") % {"line": problem.line} if problem.line else ""
            problems.append(
                TemplateProblem(
                    name, problem.line, f"{label}{where}: {problem.message}", problem.is_warning
                )
            )
    return sorted(problems, key=lambda p: p.is_warning)


def blocks_compose(*, key: str, locale: str, blocks: EmailBlocks) -> TemplateSource:
    """The email the blocks make: the built-in design around the merchant's words."""
    language = _language(locale)
    strings = _strings(language)
    url, details = _structure(key, language)
    parts = ["@greeting"]
    parts += [p.strip() for p in re.split(r"\n\s*\n", blocks.text) if p.strip()]
    if "@stars" in _copy_for(key, language).blocks:
        # The review request's rating is part of the design, not of the merchant's words.
        parts.append("@stars")
    if blocks.button_label.strip():
        label = " ".join(blocks.button_label.split()).replace("|", "/")
        parts.append(f"@button {url} | {label}")
    parts.append(details)
    html_content = "\n".join(_block_html(part, strings) for part in parts)
    text_content = "\n\n".join(_block_text(part, strings) for part in parts)
    html = email_layout_html(language, heading=blocks.heading, content=html_content)
    if blocks.accent_color:
        accent = colour_parse(blocks.accent_color)
        html = html.replace("{{ brand.accent_ink }}", readable_ink(accent))
        html = html.replace("{{ brand.accent }}", accent)
    text = email_layout_text(language, heading=blocks.heading, content=text_content)
    return TemplateSource(
        key=key,
        channel=Channel.EMAIL,
        locale=locale,
        subject=blocks.subject,
        html_body=html,
        text_body=text,
        is_default=False,
    )

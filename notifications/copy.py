"""The built-in copy: one file per message and language, turned into HTML and text emails.

    default_templates/<lang>/<key>.liquid   one message: subject, SMS body, then the email copy
    default_templates/<lang>/_strings.txt   greeting, footer, labels and date format
    default_templates/layout.html           the email layout the copy is poured into

A message's copy is written once and turned into both the HTML and the text email here, so
the two never drift apart. The copy is plain text with Liquid, one paragraph per blank-line
separated block, and directives on lines of their own:

    @greeting                       "Hi {{ customer.first_name }}," (or a nameless greeting)
    @button <url> | <label>         a button in HTML, "<label>: <url>" in text
    @items                          the items the message is about (``items``)
    @shipments                      each parcel: carrier, tracking number with its link, the
                                    estimate, its own items (a replacement says what it
                                    replaces); the message's items when it has no parcel
    @return_details                 the merchant's return instructions and the label link
    @stars                          the review request's one-click rating: five links to the
                                    rating page (``review_url``), one per star, each with its
                                    words ("4 stars"); in text, one line per star

Built-in templates are never copied into the database: a shop has a ``MessageTemplate`` row
only for what its merchant edited, so improvements to the defaults reach every other template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.templatetags.static import static

from notifications.context import brand_context
from notifications.models import Channel
from notifications.rendering import TemplateSource
from shopapp.branding.look import look_build
from shopapp.branding.selectors import brand_look
from shopapp.models import Shop

TEMPLATES_DIR = Path(__file__).resolve().parent / "default_templates"
LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de")
# The default "attempted delivery or problem" sequence has one step, so one template: it is
# composed from the two copies and picks its copy by the parcel's stage.
DELIVERY_ISSUE_KEY = "delivery_issue"

_SECTION = re.compile(r"^(subject|sms):\s*(.*)$")
_BUTTON = re.compile(r"^@button\s+(.+?)\s*\|\s*([^|]+)$")

# The shop's look (shopapp.branding.look via the ``brand`` variable): validated colours and a
# font stack of unquoted names, safe inside style attributes.
_FONT = "{{ brand.font_stack }}"
_P_STYLE = "margin:0 0 16px;"
_MUTED = "color:{{ brand.muted }};"
# A "bulletproof" button: the colour on the cell (bgcolor too, for Outlook's Word engine), the
# link padded inside it, real text (never an image of text).
_BUTTON_HTML = (
    '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
    'style="margin:8px 0 24px;">'
    '<tr><td bgcolor="{{{{ brand.accent }}}}" style="border-radius:8px;'
    'background-color:{{{{ brand.accent }}}};">'
    '<a href="{url}" style="display:inline-block;padding:13px 24px;font-family:{font};'
    "font-size:16px;font-weight:700;color:{{{{ brand.accent_ink }}}};text-decoration:none;"
    'border-radius:8px;">{label}</a></td></tr></table>'
)
_CELL = "border-bottom:1px solid {{ brand.line }};"
# Product images: 64 CSS px, decorative (alt="": the title is in the next cell).
_IMAGE_PX = 64


def _range(estimate: str, date: str) -> str:
    """A predicted estimate's days: "March 5 – March 8", or the one day."""
    return (
        f'{{% if {estimate}.is_range %}}{{{{ {estimate}.earliest | date: "{date}" }}}} – '
        f'{{% endif %}}{{{{ {estimate}.latest | date: "{date}" }}}}'
    )


def _basis(estimate: str, strings: dict[str, str]) -> str:
    """How a predicted estimate was made, in the message's language (the strings name the
    estimate ``estimate``)."""
    return (
        f"{{% assign estimate = {estimate} %}}{{% if estimate.carrier %}}"
        f"{strings['estimate_basis_carrier']}{{% else %}}{strings['estimate_basis']}{{% endif %}}"
    )


def _items_html(source: str, strings: dict[str, str]) -> str:
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'class="em-line" style="margin:0 0 24px;border-top:1px solid {{ brand.line }};">'
        f"{{% for item in {source} %}}<tr>"
        f'<td class="em-line" width="{_IMAGE_PX + 12}" valign="top" '
        f'style="padding:10px 12px 10px 0;{_CELL}">'
        "{% if item.image_url %}"
        f'<img src="{{{{ item.image_url }}}}" width="{_IMAGE_PX}" height="{_IMAGE_PX}" alt="" '
        'style="display:block;border:0;border-radius:6px;object-fit:cover;">'
        "{% endif %}</td>"
        f'<td class="em-line em-text" valign="top" style="padding:10px 0;{_CELL}font-size:15px;">'
        "{{ item.title }}{% if item.variant_title %}"
        f'<br><span class="em-muted" style="{_MUTED}font-size:13px;">{{{{ item.variant_title }}}}'
        "</span>{% endif %}"
        f'{{% if item.replaces %}}<br><span class="em-muted" style="{_MUTED}font-size:13px;">'
        f"{strings['replaces']} {{{{ item.replaces }}}}</span>{{% endif %}}</td>"
        f'<td class="em-line em-muted" align="right" valign="top" '
        f'style="padding:10px 0;{_CELL}font-size:14px;{_MUTED}white-space:nowrap;">'
        "× {{ item.quantity }}</td></tr>"
        "{% endfor %}</table>"
    )


def _items_text(source: str, strings: dict[str, str]) -> str:
    return (
        f"{{% for item in {source} %}}- {{{{ item.quantity }}}} × {{{{ item.title }}}}"
        "{% if item.variant_title %} ({{ item.variant_title }}){% endif %}"
        f"{{% if item.replaces %}}, {strings['replaces']} {{{{ item.replaces }}}}{{% endif %}}"
        "\n{% endfor %}"
    )


def _parcel_facts_html(strings: dict[str, str]) -> str:
    date = strings["date_format"]
    return (
        f'<p class="em-muted" style="margin:0 0 8px;font-size:14px;{_MUTED}">'
        '{% if shipments.size > 1 %}<strong class="em-text" style="color:{{ brand.text }};">'
        f"{strings['parcel_heading']}</strong><br>{{% endif %}}"
        '{% if parcel.is_replacement %}<strong class="em-text" style="color:{{ brand.text }};">'
        f"{strings['replacement']}</strong><br>{{% endif %}}"
        "{% if parcel.carrier %}{{ parcel.carrier }}<br>{% endif %}"
        "{% for number in parcel.tracking_numbers %}"
        f"{strings['tracking_number']}: {{% if number.url %}}"
        '<a href="{{ number.url }}" class="em-accent" style="color:{{ brand.accent_text }};">'
        "{{ number.number }}</a>"
        "{% else %}{{ number.number }}{% endif %}<br>{% endfor %}"
        "{% if parcel.delivered_at %}"
        f'{strings["delivered_on"]}: {{{{ parcel.delivered_at | date: "{date}" }}}}'
        "{% elsif parcel.estimate %}"
        f"{strings['estimated_delivery']}: "
        '<strong class="em-text" style="color:{{ brand.text }};">'
        f"{_range('parcel.estimate', date)}</strong><br>"
        f'<span style="font-size:13px;">{_basis("parcel.estimate", strings)}</span>'
        "{% elsif parcel.estimated_delivery_at %}"
        f"{strings['estimated_delivery']}: "
        '<strong class="em-text" style="color:{{ brand.text }};">'
        f'{{{{ parcel.estimated_delivery_at | date: "{date}" }}}}'
        "</strong>{% endif %}</p>"
    )


def _parcel_facts_text(strings: dict[str, str]) -> str:
    date = strings["date_format"]
    return (
        f"{{% if shipments.size > 1 %}}{strings['parcel_heading']}\n{{% endif %}}"
        f"{{% if parcel.is_replacement %}}{strings['replacement']}\n{{% endif %}}"
        "{% if parcel.carrier %}{{ parcel.carrier }}\n{% endif %}"
        "{% for number in parcel.tracking_numbers %}"
        f"{strings['tracking_number']}: {{{{ number.number }}}}"
        "{% if number.url %} ({{ number.url }}){% endif %}\n{% endfor %}"
        "{% if parcel.delivered_at %}"
        f'{strings["delivered_on"]}: {{{{ parcel.delivered_at | date: "{date}" }}}}\n'
        "{% elsif parcel.estimate %}"
        f"{strings['estimated_delivery']}: {_range('parcel.estimate', date)}\n"
        f"({_basis('parcel.estimate', strings)})\n"
        "{% elsif parcel.estimated_delivery_at %}"
        f"{strings['estimated_delivery']}: "
        f'{{{{ parcel.estimated_delivery_at | date: "{date}" }}}}\n{{% endif %}}'
    )


def _shipments_html(strings: dict[str, str]) -> str:
    return (
        "{% if shipments.size > 0 %}{% for parcel in shipments %}"
        + _parcel_facts_html(strings)
        + _items_html("parcel.items", strings)
        + "{% endfor %}{% else %}"
        + _items_html("items", strings)
        + "{% endif %}"
    )


def _shipments_text(strings: dict[str, str]) -> str:
    return (
        "{% if shipments.size > 0 %}{% for parcel in shipments %}"
        + _parcel_facts_text(strings)
        + _items_text("parcel.items", strings)
        + "{% unless forloop.last %}\n{% endunless %}{% endfor %}{% else %}"
        + _items_text("items", strings)
        + "{% endif %}"
    )


def _return_details_html(strings: dict[str, str]) -> str:
    return (
        "{% if return.instructions %}"
        f'<p style="{_P_STYLE}"><strong>{strings["instructions_heading"]}</strong></p>'
        f'<p style="{_P_STYLE}white-space:pre-line;">{{{{ return.instructions }}}}</p>'
        "{% endif %}{% if return.label_url %}"
        + _BUTTON_HTML.format(
            url="{{ return.label_url }}", label=strings["label_button"], font=_FONT
        )
        + "{% endif %}"
    )


def _return_details_text(strings: dict[str, str]) -> str:
    return (
        f"{{% if return.instructions %}}{strings['instructions_heading']}:\n"
        "{{ return.instructions }}\n\n{% endif %}"
        f"{{% if return.label_url %}}{strings['label_button']}: {{{{ return.label_url }}}}\n"
        "{% endif %}"
    )


# The stars' row is no wider than this on a desktop (each star a fifth of it), so the five stay
# together; on a phone the row takes the width there is.
_STARS_MAX_WIDTH_PX = 420


def _stars_html(strings: dict[str, str]) -> str:
    """Five links, one per star, in a table (Outlook's Word engine has no flexbox): a large
    star and its words under it ("4 stars"), real text, so a screen reader reads the words
    (the glyph is hidden from it) and the row survives images off and dark mode (the classes
    switch the colours, as the rest of the layout)."""
    cells = []
    for n in range(1, 6):
        words = f"{n} {strings['rating_star'] if n == 1 else strings['rating_stars']}"
        cells.append(
            '<td width="20%" align="center" valign="top" '
            'style="padding:0 2px;">'
            f'<a href="{{{{ review_url }}}}?rating={n}" class="em-accent" '
            f'style="display:block;padding:8px 0;font-family:{_FONT};font-size:30px;'
            'line-height:1;color:{{ brand.accent_text }};text-decoration:none;">'
            '<span aria-hidden="true">&#9733;</span>'
            f'<span class="em-muted" style="display:block;padding-top:6px;font-size:12px;'
            f'line-height:1.3;{_MUTED}text-decoration:underline;">{words}</span></a></td>'
        )
    return (
        "{% if review_url %}"
        f'<p style="margin:0 0 8px;font-weight:700;">{strings["rating_question"]}</p>'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="margin:0 0 8px;max-width:{_STARS_MAX_WIDTH_PX}px;">'
        f"<tr>{''.join(cells)}</tr></table>"
        f'<p class="em-muted" style="margin:0 0 24px;font-size:13px;{_MUTED}">'
        f"{strings['rating_hint']}</p>"
        "{% endif %}"
    )


def _stars_text(strings: dict[str, str]) -> str:
    lines = "\n".join(
        f"{n} {strings['rating_star'] if n == 1 else strings['rating_stars']}: "
        f"{{{{ review_url }}}}?rating={n}"
        for n in range(1, 6)
    )
    return (
        f"{{% if review_url %}}{strings['rating_question']}\n{lines}\n"
        f"{strings['rating_hint']}{{% endif %}}"
    )


@dataclass(frozen=True)
class _Copy:
    subject: str
    sms: str
    blocks: tuple[str, ...]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def _strings(language: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in _read(TEMPLATES_DIR / language / "_strings.txt").splitlines():
        if ":" in line and not line.startswith("#"):
            name, value = line.split(":", 1)
            values[name.strip()] = value.strip()
    return values


@cache
def _copy(language: str, key: str) -> _Copy:
    text = _read(TEMPLATES_DIR / language / f"{key}.liquid")
    header, _, body = text.partition("\n---\n")
    fields = {"subject": "", "sms": ""}
    for line in header.splitlines():
        match = _SECTION.match(line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    blocks = tuple(block.strip() for block in re.split(r"\n\s*\n", body) if block.strip())
    return _Copy(subject=fields["subject"], sms=fields["sms"], blocks=blocks)


def _greeting(strings: dict[str, str]) -> str:
    return (
        f"{{% if customer.first_name %}}{strings['greeting']}"
        f"{{% else %}}{strings['greeting_anonymous']}{{% endif %}}"
    )


def _block_html(block: str, strings: dict[str, str]) -> str:
    if block == "@greeting":
        return f'<p style="{_P_STYLE}">{_greeting(strings)}</p>'
    if block == "@items":
        return _items_html("items", strings)
    if block == "@shipments":
        return _shipments_html(strings)
    if block == "@return_details":
        return _return_details_html(strings)
    if block == "@stars":
        return _stars_html(strings)
    match = _BUTTON.match(block)
    if match:
        return _BUTTON_HTML.format(url=match.group(1), label=match.group(2), font=_FONT)
    return f'<p style="{_P_STYLE}">{"<br>".join(block.splitlines())}</p>'


def _block_text(block: str, strings: dict[str, str]) -> str:
    if block == "@greeting":
        return _greeting(strings)
    if block == "@items":
        return _items_text("items", strings)
    if block == "@shipments":
        return _shipments_text(strings)
    if block == "@return_details":
        return _return_details_text(strings)
    if block == "@stars":
        return _stars_text(strings)
    match = _BUTTON.match(block)
    if match:
        return f"{match.group(2)}: {match.group(1)}"
    return block


def _html_content(copy: _Copy, strings: dict[str, str]) -> str:
    return "\n".join(_block_html(block, strings) for block in copy.blocks)


# Directives whose text ends each line with its own newline.
_LINE_DIRECTIVES = frozenset({"@items", "@shipments", "@return_details"})


def _text_content(copy: _Copy, strings: dict[str, str]) -> str:
    parts: list[str] = []
    previous = ""
    for block in copy.blocks:
        if parts:
            parts.append("\n" if previous in _LINE_DIRECTIVES else "\n\n")
        parts.append(_block_text(block, strings))
        previous = block
    return "".join(parts)


_STAGES: tuple[str, ...] = ("ordered", "shipped", "in_transit", "out_for_delivery", "delivered")


def _progress_html(strings: dict[str, str]) -> str:
    """The main line as five segments with their names (real text: it reads with images off
    and in dark mode); the step the slowest parcel reached is bold."""
    cells = []
    for rank, stage in enumerate(_STAGES):
        colour = (
            f"{{% if progress.rank >= {rank} %}}{{{{ brand.accent }}}}"
            "{% else %}{{ brand.line }}{% endif %}"
        )
        weight = f"{{% if progress.rank == {rank} %}}700{{% else %}}400{{% endif %}}"
        cells.append(
            f'<td class="em-stage em-muted" width="20%" valign="top" style="padding:8px 4px 0 0;'
            f"border-top:6px solid {colour};font-family:{_FONT};font-size:12px;"
            f'line-height:1.3;color:{{{{ brand.muted }}}};font-weight:{weight};">'
            f"{strings['stage_' + stage]}</td>"
        )
    return (
        '{% if progress %}<table role="presentation" width="100%" cellpadding="0" '
        'cellspacing="0" border="0" style="margin:0 0 24px;" '
        f'aria-label="{strings["progress_label"]}">'
        f"<tr>{''.join(cells)}</tr></table>{{% endif %}}"
    )


def _progress_text(strings: dict[str, str]) -> str:
    marks = " ".join(
        f"{{% if progress.rank >= {rank} %}}[x]{{% else %}}[ ]{{% endif %}} "
        f"{strings['stage_' + stage]}"
        for rank, stage in enumerate(_STAGES)
    )
    return f"{{% if progress %}}{strings['progress_label']}: {marks}\n\n{{% endif %}}"


_ESTIMATE_SHOWN = "{% if shipment.estimated_delivery_at %}{% unless shipment.delivered_at %}"
_ESTIMATE_END = "{% endunless %}{% endif %}"


def _estimate_html(strings: dict[str, str]) -> str:
    """The delivery estimate as the headline, the way shoppers look for it first: Shopify's
    date, or the predicted range of days with the sentence saying how it was made (as the
    tracking page shows it)."""
    date = strings["date_format"]
    headline = (
        '<p class="em-accent" style="margin:0 0 {margin};font-size:24px;line-height:1.25;'
        'font-weight:700;color:{{{{ brand.accent_text }}}};">{value}</p>'
    )
    return (
        f"{_ESTIMATE_SHOWN}"
        f'<p class="em-muted" style="margin:0;font-size:13px;letter-spacing:.04em;'
        f'text-transform:uppercase;{_MUTED}">{strings["estimated_delivery"]}</p>'
        "{% if shipment.estimate %}"
        + headline.format(margin="4px", value=_range("shipment.estimate", date))
        + f'<p class="em-muted" style="margin:0 0 20px;font-size:13px;{_MUTED}">'
        f"{_basis('shipment.estimate', strings)}</p>"
        "{% else %}"
        + headline.format(
            margin="20px", value=f'{{{{ shipment.estimated_delivery_at | date: "{date}" }}}}'
        )
        + f"{{% endif %}}{_ESTIMATE_END}"
    )


def _estimate_text(strings: dict[str, str]) -> str:
    date = strings["date_format"]
    return (
        f"{_ESTIMATE_SHOWN}{strings['estimated_delivery']}: "
        "{% if shipment.estimate %}"
        f"{_range('shipment.estimate', date)}\n{_basis('shipment.estimate', strings)}\n"
        f'{{% else %}}{{{{ shipment.estimated_delivery_at | date: "{date}" }}}}\n{{% endif %}}'
        f"{_ESTIMATE_END}"
    )


def _contact_html(strings: dict[str, str]) -> str:
    link = "color:{{ brand.muted }};text-decoration:underline;"
    return (
        "{% if brand.support_email or brand.support_phone %}"
        f"{strings['contact']}: "
        "{% if brand.support_email %}"
        f'<a href="mailto:{{{{ brand.support_email }}}}" class="em-muted" style="{link}">'
        "{{ brand.support_email }}</a>{% endif %}"
        "{% if brand.support_email and brand.support_phone %} · {% endif %}"
        "{% if brand.support_phone %}{{ brand.support_phone }}{% endif %}<br>"
        f"{{% elsif shop.email %}}{strings['contact']}: "
        f'<a href="mailto:{{{{ shop.email }}}}" class="em-muted" style="{link}">'
        "{{ shop.email }}</a><br>{% endif %}"
    )


def _contact_text(strings: dict[str, str]) -> str:
    return (
        "{% if brand.support_email or brand.support_phone %}"
        f"{strings['contact']}: "
        "{{ brand.support_email }}{% if brand.support_email and brand.support_phone %} · "
        "{% endif %}{{ brand.support_phone }}\n"
        f"{{% elsif shop.email %}}{strings['contact']}: {{{{ shop.email }}}}\n{{% endif %}}"
    )


def email_layout_html(language: str, *, heading: str, content: str) -> str:
    """The designed email around ``content``: logo, heading, the estimate as the headline,
    the progress, the content, then contact, footer and unsubscribe."""
    strings = _strings(language)
    return (
        _read(TEMPLATES_DIR / "layout.html")
        .replace("[[lang]]", language)
        .replace("[[heading]]", heading)
        .replace("[[estimate]]", _estimate_html(strings))
        .replace("[[progress]]", _progress_html(strings))
        .replace("[[contact]]", _contact_html(strings))
        .replace("[[footer]]", strings["footer"])
        .replace("[[unsubscribe]]", strings["unsubscribe"])
        .replace("[[content]]", content)
    )


def email_layout_text(language: str, *, heading: str, content: str) -> str:
    """The plain-text part: the same facts in the same order as the HTML."""
    strings = _strings(language)
    return (
        f"{heading}\n\n{_estimate_text(strings)}{_progress_text(strings)}{content}\n\n--\n"
        f"{{{{ shop.name }}}}\n{_contact_text(strings)}"
        "{% if brand.footer %}{{ brand.footer }}\n{% endif %}"
        f"{strings['footer']}\n"
        f"{strings['unsubscribe']}: {{{{ unsubscribe_url }}}}\n"
    )


def _branch(problem: str, attempted: str) -> str:
    return f'{{% if shipment.stage == "problem" %}}{problem}{{% else %}}{attempted}{{% endif %}}'


@cache
def default_source(key: str, channel: str, language: str) -> TemplateSource:
    strings = _strings(language)
    if key == DELIVERY_ISSUE_KEY:
        problem, attempted = _copy(language, "problem"), _copy(language, "attempted_delivery")
        subject = _branch(problem.subject, attempted.subject)
        sms = _branch(problem.sms, attempted.sms)
        html = _branch(_html_content(problem, strings), _html_content(attempted, strings))
        text = _branch(_text_content(problem, strings), _text_content(attempted, strings))
    else:
        copy = _copy(language, key)
        subject, sms = copy.subject, copy.sms
        html, text = _html_content(copy, strings), _text_content(copy, strings)
    if channel == Channel.SMS:
        return TemplateSource(key=key, channel=channel, locale=language, sms_body=sms)
    return TemplateSource(
        key=key,
        channel=channel,
        locale=language,
        subject=subject,
        html_body=email_layout_html(language, heading=subject, content=html),
        text_body=email_layout_text(language, heading=subject, content=text),
    )


def _sample_image(name: str) -> str:
    # Served by the app itself: a preview never depends on a third party being reachable.
    return settings.APP_URL + static(f"notifications/sample/{name}.png")


def _sample_item(
    title: str, variant: str, quantity: int, replaces: str = "", image: str = ""
) -> dict[str, Any]:
    return {
        "title": title,
        "variant_title": variant,
        "quantity": quantity,
        "image_url": _sample_image(image) if image else "",
        "replaces": replaces,
    }


def sample_context(*, shop: Shop | None = None) -> dict[str, Any]:
    """A made-up order, following the context contract, for previews and save-time checks:
    two parcels, a return approved with instructions and a label."""
    domain = shop.myshopify_domain if shop else "example.myshopify.com"
    base = f"https://{domain}/{settings.SHOPIFY_APP_PROXY_PREFIX}/"
    base += settings.SHOPIFY_APP_PROXY_SUBPATH
    created = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    currency = (shop.currency if shop else "") or "EUR"
    shirt = _sample_item("Linen shirt", "Sand / M", 1, image="linen-shirt")
    tote = _sample_item("Canvas tote", "", 2, image="canvas-tote")
    dhl = "https://www.dhl.com/track?id=JD014600006543210987"
    parcels = [
        {
            "carrier": "DHL Express",
            "tracking_number": "JD014600006543210987",
            "tracking_url": dhl,
            "tracking_numbers": [{"number": "JD014600006543210987", "url": dhl}],
            "stage": "in_transit",
            "estimated_delivery_at": created + timedelta(days=3),
            "delivered_at": None,
            # Predicted from the shop's deliveries (Shopify gave none): a range and its basis.
            "estimate": {
                "earliest": (created + timedelta(days=1)).date(),
                "latest": (created + timedelta(days=3)).date(),
                "is_range": True,
                "deliveries": 240,
                "carrier": "DHL Express",
                "place": "Ontario",
            },
            "items": [shirt],
            "is_replacement": False,
        },
        {
            "carrier": "UPS",
            "tracking_number": "1Z999AA10123456784",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
            "tracking_numbers": [
                {
                    "number": "1Z999AA10123456784",
                    "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
                }
            ],
            "stage": "in_transit",
            "estimated_delivery_at": created + timedelta(days=4),
            "delivered_at": None,
            "estimate": None,
            "items": [tote],
            "is_replacement": False,
        },
    ]
    return {
        "shop": {
            "name": (shop.name if shop else "") or "Your Store",
            "email": (shop.email if shop else "") or "hello@example.com",
            "domain": domain,
        },
        "order": {
            "name": "#1001",
            "number": 1001,
            "created_at": created,
            "total_price": Decimal("84.90"),
            "currency": currency,
            "line_items": [shirt, tote],
        },
        "customer": {"first_name": "Ada"},
        "items": [shirt, tote],
        "shipment": parcels[0],
        "shipments": parcels,
        "delay": None,
        "return": {
            "name": "#1001-R1",
            "status": "open",
            "status_url": f"{base}/returns/status/SAMPLE-TOKEN",
            "instructions": "Pack the items in their original bag and drop the parcel at any "
            "DHL point within 14 days.",
            "label_url": f"{base}/returns/label/SAMPLE-TOKEN",
            "resolution": "refund",
            "refund_amount": "39.90",
            "store_credit_amount": "",
            "currency": currency,
            "decline_reason": "",
            "items": [shirt],
        },
        "problem": {
            "kind": "damaged",
            "description": "The box was crushed and the shirt is torn at the collar.",
            "carrier": "DHL Express",
            "tracking_numbers": ["JD014600006543210987"],
        },
        "tracking_url": f"{base}/track/SAMPLE-TOKEN",
        "review_url": f"{base}/review/SAMPLE-TOKEN",
        "return_url": f"{base}/returns/status/SAMPLE-TOKEN",
        "unsubscribe_url": f"https://{domain}/unsubscribe/SAMPLE",
        "brand": brand_context((brand_look(shop=shop) if shop else None) or look_build()),
        "progress": {"rank": 2, "stage": "in_transit", "is_issue": False},
    }

"""The store's themes: the one every store starts with, publishing another, and saving its
colours in the theme editor; each change fires the webhook Shopify fires.

    new store ─ dev_theme_main ─▶ "Dawn" (MAIN), Dawn's default colour scheme
    control API: publish {name, colours} ─▶ new MAIN theme (old one UNPUBLISHED) ─ themes/publish
    control API: colours {…} ────────────▶ MAIN theme's settings_data.json saved ─ themes/update

``settings_data.json`` is written the way Shopify's theme editor writes it: a comment block,
then JSON whose ``current`` holds the settings, colours in ``color_schemes`` (Dawn ≥ 9, OS 2.0
themes); the app must cope with that comment, and with older themes' flat colour settings.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from devshop.models import DevShop, DevTheme
from devshop.orders import dev_now
from devshop.webhooks import dev_webhook_emit

SETTINGS_DATA = "config/settings_data.json"

EDITOR_COMMENT = (
    "/*\n"
    " * ------------------------------------------------------------\n"
    " * IMPORTANT: The contents of this file are auto-generated.\n"
    " *\n"
    " * This file may be updated by the Shopify admin theme editor\n"
    " * or related systems. Please exercise caution as any changes\n"
    " * made to this file may be overwritten.\n"
    " * ------------------------------------------------------------\n"
    " */\n"
)

# Dawn's first colour scheme as it ships.
DAWN_COLOURS = {"background": "#FFFFFF", "text": "#121212", "button": "#121212"}
COLOUR_KEYS = ("background", "text", "button")


def settings_data_text(colours: dict[str, str]) -> str:
    scheme = {
        "background": colours["background"],
        "background_gradient": "",
        "text": colours["text"],
        "button": colours["button"],
        "button_label": "#FFFFFF",
        "secondary_button_label": colours["button"],
        "shadow": colours["text"],
    }
    data = {
        "current": {
            "logo_width": 90,
            "type_header_font": "assistant_n4",
            "type_body_font": "assistant_n4",
            "color_schemes": {
                "scheme-1": {"settings": scheme},
                "scheme-2": {"settings": {**scheme, "background": "#F3F3F3", "text": "#121212"}},
            },
            "sections": {},
            "content_for_index": [],
        },
        "presets": {"Default": {"color_schemes": {"scheme-1": {"settings": scheme}}}},
    }
    return EDITOR_COMMENT + json.dumps(data, indent=2)


def dev_theme_main(shop: DevShop) -> DevTheme:
    """The store's published theme, Dawn with its defaults when the store never had one."""
    with transaction.atomic():
        theme = DevTheme.objects.filter(shop=shop, role=DevTheme.Role.MAIN).first()
        if theme is None:
            now = dev_now()
            theme = DevTheme.objects.create(
                shop=shop,
                name="Dawn",
                role=DevTheme.Role.MAIN,
                settings_data=settings_data_text(DAWN_COLOURS),
                created_at=now,
                updated_at=now,
            )
    return theme


def theme_as_rest(theme: DevTheme) -> dict[str, Any]:
    """The theme as the REST Admin API (and so the themes/* webhooks) spell it."""
    return {
        "id": theme.shopify_id,
        "name": theme.name,
        "created_at": theme.created_at.isoformat(),
        "updated_at": theme.updated_at.isoformat(),
        "role": theme.role.lower(),
        "theme_store_id": 887 if theme.name == "Dawn" else None,
        "previewable": True,
        "processing": False,
        "admin_graphql_api_id": f"gid://shopify/OnlineStoreTheme/{theme.shopify_id}",
    }


def colours_checked(data: dict[str, Any], *, base: dict[str, str]) -> dict[str, str]:
    """``base`` with the colours ``data`` gives, each ``#rrggbb``; ValueError otherwise."""
    colours = dict(base)
    for key in COLOUR_KEYS:
        if key in data:
            value = data[key]
            if not (
                isinstance(value, str)
                and len(value) == 7
                and value.startswith("#")
                and all(c in "0123456789abcdefABCDEF" for c in value[1:])
            ):
                raise ValueError(f"{key} must be a #rrggbb colour")
            colours[key] = value.upper()
    return colours


def dev_theme_publish(*, shop: DevShop, name: str, colours: dict[str, str]) -> DevTheme:
    """Add a theme with these colours and publish it, as a merchant would from the theme
    library: the previous main theme becomes unpublished; themes/publish fires."""
    now = dev_now()
    with transaction.atomic():
        dev_theme_main(shop)
        DevTheme.objects.filter(shop=shop, role=DevTheme.Role.MAIN).update(
            role=DevTheme.Role.UNPUBLISHED, updated_at=now
        )
        theme = DevTheme.objects.create(
            shop=shop,
            name=name,
            role=DevTheme.Role.MAIN,
            settings_data=settings_data_text(colours),
            created_at=now,
            updated_at=now,
        )
        dev_webhook_emit(shop=shop, topic="themes/publish", payload=theme_as_rest(theme))
    return theme


def dev_theme_colours_save(*, shop: DevShop, colours: dict[str, str]) -> DevTheme:
    """Save new colours in the main theme's editor: settings_data.json changes; themes/update
    fires."""
    with transaction.atomic():
        theme = dev_theme_main(shop)
        theme.settings_data = settings_data_text(colours)
        theme.updated_at = dev_now()
        theme.save(update_fields=["settings_data", "updated_at"])
        dev_webhook_emit(shop=shop, topic="themes/update", payload=theme_as_rest(theme))
    return theme


def theme_colours(theme: DevTheme) -> dict[str, str]:
    text = theme.settings_data
    data = json.loads(text[text.index("*/") + 2 :] if text.startswith("/*") else text)
    scheme = data["current"]["color_schemes"]["scheme-1"]["settings"]
    return {key: scheme[key] for key in COLOUR_KEYS}

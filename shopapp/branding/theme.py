"""The storefront theme's colours, read from Shopify, which the shop's branding follows until
the merchant sets their own.

    install ─────────────────┐
    themes/publish webhook ──┼─ branding_theme_read_defer ─▶ job (syncs queue) ─▶
    themes/update (main) ────┘      branding_theme_refresh: themes(roles: MAIN) →
                                    config/settings_data.json → colours → ShopBranding.theme_*

The Admin API has no "brand colours" of a shop (``shop.brand`` is the Storefront API's, behind
unauthenticated scopes); the published theme's ``config/settings_data.json`` holds what the
merchant chose in the theme editor (``read_themes``). Shopify's editor writes a comment block
before the JSON; Online Store 2.0 themes (Dawn ≥ 9 and its kin) keep colours in
``color_schemes`` (the first scheme is the page's), older ones as flat ``colors_*`` settings,
and ``current`` may name a preset instead of holding the settings. What cannot be read as
``#rrggbb`` is left out, never guessed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.branding.look import ColourInvalid, colour_parse
from shopapp.models import Shop, ShopBranding

logger = logging.getLogger(__name__)

SETTINGS_DATA = "config/settings_data.json"

THEME_SETTINGS_QUERY = """
query ThemeSettings($filenames: [String!]) {
  themes(first: 1, roles: [MAIN]) {
    nodes {
      id
      name
      files(filenames: $filenames, first: 1) {
        nodes {
          filename
          body {
            ... on OnlineStoreThemeFileBodyText { content }
            ... on OnlineStoreThemeFileBodyBase64 { contentBase64 }
          }
        }
      }
    }
  }
}
"""

# Flat colour settings of themes before colour schemes, most telling first.
_FLAT_ACCENT = (
    "colors_accent_1",
    "colors_solid_button_background",
    "color_button",
    "color_accent",
    "color_primary",
)
_FLAT_TEXT = ("colors_text", "color_text", "color_body_text")
_FLAT_BACKGROUND = ("colors_background_1", "color_background", "color_body_bg")


@dataclass(frozen=True)
class ThemeColours:
    accent: str
    text: str  # "" when the theme does not say
    background: str


def _without_comments(text: str) -> str:
    rest = text.lstrip()
    while rest.startswith("/*"):
        end = rest.find("*/")
        if end < 0:
            return ""
        rest = rest[end + 2 :].lstrip()
    return rest


def _colour(settings: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = settings.get(key)
        if isinstance(value, str):
            try:
                return colour_parse(value)
            except ColourInvalid:
                continue
    return ""


def theme_colours_parse(settings_data: str) -> ThemeColours | None:
    """The page colours ``config/settings_data.json`` holds, or None when it names no accent."""
    try:
        data = json.loads(_without_comments(settings_data))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    current = data.get("current")
    if isinstance(current, str):  # the name of a preset
        presets = data.get("presets")
        current = presets.get(current) if isinstance(presets, dict) else None
    if not isinstance(current, dict):
        return None
    schemes = current.get("color_schemes")
    if isinstance(schemes, dict) and schemes:
        scheme = schemes.get("scheme-1") or next(iter(schemes.values()))
        settings = scheme.get("settings") if isinstance(scheme, dict) else None
        if isinstance(settings, dict):
            accent = _colour(settings, ("button",))
            if accent:
                return ThemeColours(
                    accent=accent,
                    text=_colour(settings, ("text",)),
                    background=_colour(settings, ("background",)),
                )
    accent = _colour(current, _FLAT_ACCENT)
    if not accent:
        return None
    return ThemeColours(
        accent=accent,
        text=_colour(current, _FLAT_TEXT),
        background=_colour(current, _FLAT_BACKGROUND),
    )


def _settings_text(theme: dict[str, Any]) -> str:
    for node in ((theme.get("files") or {}).get("nodes")) or []:
        if node.get("filename") != SETTINGS_DATA:
            continue
        body = node.get("body") or {}
        if isinstance(body.get("content"), str):
            return body["content"]
        if isinstance(body.get("contentBase64"), str):
            try:
                return base64.b64decode(body["contentBase64"]).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return ""
        # A body served by URL (very large files): not fetched; no colours from it.
    return ""


def branding_theme_refresh(*, shop: Shop) -> ThemeColours | None:
    """Read the published theme's colours and keep them on the shop's branding (a row is made
    for them when the merchant has none yet, following the theme). Returns what was read."""
    from shopapp.admin_api.client import admin_client_for_shop

    data = admin_client_for_shop(shop).execute(THEME_SETTINGS_QUERY, {"filenames": [SETTINGS_DATA]})
    nodes = ((data.get("themes") or {}).get("nodes")) or []
    theme = nodes[0] if nodes else {}
    colours = theme_colours_parse(_settings_text(theme)) if theme else None
    now = timezone.now()
    with transaction.atomic():
        row = ShopBranding.objects.select_for_update().filter(shop=shop).first()
        if row is None:
            if colours is None:
                return None
            row = ShopBranding(shop=shop, support_email=shop.email or "")
        row.theme_name = str(theme.get("name") or "")[:255]
        row.theme_read_at = now
        row.theme_accent_color = colours.accent if colours else ""
        row.theme_text_color = colours.text if colours else ""
        row.theme_background_color = colours.background if colours else ""
        row.save()
    logger.info(
        "shopapp.branding.theme_read",
        extra={
            "shop": shop.myshopify_domain,
            "theme": row.theme_name,
            "colours": bool(colours),
        },
    )
    return colours


def branding_theme_read_defer(*, shop: Shop) -> None:
    """Read the theme's colours in the background, once however often it is asked."""
    from shopapp.branding.jobs import branding_theme_read_job

    task_defer(
        branding_theme_read_job,
        shop=shop,
        kwargs={"shop_id": shop.pk},
        key=f"branding.theme_read:{shop.pk}",
        queue=Queues.SYNCS,
        retry_intervals_s=(10, 60, 300),
    )

"""Dates in the embedded admin, written the way the staff member's language writes them.

    {% load admin_dates %}{{ event.occurred_at|admin_when:"datetime_tz" }}

Django's named formats (DATETIME_FORMAT…) are shared with the storefront's pages, so the
admin's own shapes live here, one per language the admin speaks, English as it always read.
Month names come from Django's translations ("déc", "Dez"; lower case where the
language writes them so); times are in the shop's zone
(the request's active time zone), as Django's ``date`` filter does.
"""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils.translation import get_language

register = template.Library()

FORMATS: dict[str, dict[str, str]] = {
    "en": {
        "date": "M j, Y",
        "datetime": "M j, Y, g:i A",
        "datetime_tz": "M j, Y, g:i A T",
        "short": "M j, g:i A",
        "short_tz": "M j, g:i A T",
    },
    "es": {
        "date": "j b Y",
        "datetime": "j b Y, H:i",
        "datetime_tz": "j b Y, H:i T",
        "short": "j b, H:i",
        "short_tz": "j b, H:i T",
    },
    "fr": {
        "date": "j b Y",
        "datetime": "j b Y, H:i",
        "datetime_tz": "j b Y, H:i T",
        "short": "j b, H:i",
        "short_tz": "j b, H:i T",
    },
    "de": {
        "date": "j. M Y",
        "datetime": "j. M Y, H:i",
        "datetime_tz": "j. M Y, H:i T",
        "short": "j. M, H:i",
        "short_tz": "j. M, H:i T",
    },
}


def admin_format(shape: str, language: str | None = None) -> str:
    """The format of ``shape`` in ``language`` (the active one by default; English otherwise)."""
    base = (language or get_language() or "en").split("-")[0].lower()
    formats = FORMATS.get(base, FORMATS["en"])
    if shape not in formats:
        raise ValueError(f"unknown date shape {shape!r}: one of {sorted(formats)}")
    return formats[shape]


@register.filter(expects_localtime=True)
def admin_when(value: date | datetime | None, shape: str = "datetime") -> str:
    if value in (None, ""):
        return ""
    return date_filter(value, admin_format(shape))

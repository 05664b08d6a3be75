"""Runtime knobs: a ``DevSetting`` row wins over the settings default."""

from typing import Any

from django.conf import settings

from devshop.models import DevSetting

DEFAULTS = {
    "access_token_ttl": lambda: settings.DEVSHOP_ACCESS_TOKEN_TTL,
    "refresh_token_ttl": lambda: settings.DEVSHOP_REFRESH_TOKEN_TTL,
    "refresh_retry_window": lambda: settings.DEVSHOP_REFRESH_RETRY_WINDOW,
    "auto_approve": lambda: settings.DEVSHOP_AUTO_APPROVE,
}


def knob_get(key: str, default: Any = None) -> Any:
    row = DevSetting.objects.filter(key=key).first()
    if row is not None:
        return row.value
    if key in DEFAULTS:
        return DEFAULTS[key]()
    return default


def knob_set(key: str, value: Any) -> None:
    DevSetting.objects.update_or_create(key=key, defaults={"value": value})

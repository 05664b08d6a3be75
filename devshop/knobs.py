"""Runtime knobs: a ``DevSetting`` row wins over the settings default."""

from typing import Any

from django.conf import settings

from devshop.models import DevSetting

DEFAULTS = {
    "access_token_ttl": lambda: settings.DEVSHOP_ACCESS_TOKEN_TTL,
    "refresh_token_ttl": lambda: settings.DEVSHOP_REFRESH_TOKEN_TTL,
    "refresh_retry_window": lambda: settings.DEVSHOP_REFRESH_RETRY_WINDOW,
    "auto_approve": lambda: settings.DEVSHOP_AUTO_APPROVE,
    # Webhook delivery (devshop.webhooks): retry schedule and chaos switches.
    "webhook_retry_base_seconds": lambda: settings.DEVSHOP_WEBHOOK_RETRY_BASE_SECONDS,
    "webhook_max_retries": lambda: settings.DEVSHOP_WEBHOOK_MAX_RETRIES,
    "webhook_delivery_paused": lambda: False,
    "webhook_chaos_duplicate": lambda: 0.0,
    "webhook_chaos_reorder": lambda: False,
    "webhook_chaos_hold_seconds": lambda: 2.0,
    "webhook_chaos_delay_seconds": lambda: 0.0,
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

"""Runtime knobs: a ``DevSetting`` row wins over the settings default.

The simulated clock lives here too: ``clock_speed`` (simulated seconds per real second) and
``clock_offset_seconds`` (how far the simulated now is ahead of the real one when set), with
``clock_anchor`` (real Unix time the two were last set) so that a change of speed never makes
the clock jump: simulated = real + offset + (real - anchor) * (speed - 1).
"""

import threading
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

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
    # Forced failures (forced_failure_take): {"count": n, "status": 503, "retry_after": s}.
    "admin_api_fail_next": lambda: None,
    "oauth_fail_next": lambda: None,
    # Simulated clock (devshop.orders.dev_now): 1.0 real time; 3600 = one hour a second.
    "clock_speed": lambda: 1.0,
    "clock_offset_seconds": lambda: 0.0,
}
CLOCK_KEYS = ("clock_speed", "clock_offset_seconds", "clock_anchor")


def knob_get(key: str, default: Any = None) -> Any:
    row = DevSetting.objects.filter(key=key).first()
    if row is not None:
        return row.value
    if key in DEFAULTS:
        return DEFAULTS[key]()
    return default


_forced_failure_lock = threading.Lock()


def forced_failure_take(key: str) -> dict[str, Any] | None:
    """Spend one of the failures a ``*_fail_next`` knob asks for, e.g.
    ``admin_api_fail_next`` / ``oauth_fail_next`` = {"count": n, "status": 503, "retry_after": s}:
    the next n calls answer that status, so client retry tests run against the real server."""
    with _forced_failure_lock, transaction.atomic():
        plan = knob_get(key)
        if not plan or int(plan.get("count", 0)) <= 0:
            return None
        knob_set(key, {**plan, "count": int(plan["count"]) - 1})
    return plan


def _clock_values() -> tuple[float, float, float | None]:
    rows = dict(DevSetting.objects.filter(key__in=CLOCK_KEYS).values_list("key", "value"))
    anchor = rows.get("clock_anchor")
    return (
        float(rows.get("clock_speed") or 1.0),
        float(rows.get("clock_offset_seconds") or 0.0),
        float(anchor) if anchor is not None else None,
    )


def clock_now() -> datetime:
    """The simulated now (microseconds kept; callers round to Shopify's whole seconds)."""
    real = timezone.now()
    speed, offset, anchor = _clock_values()
    elapsed = real.timestamp() - anchor if anchor is not None else 0.0
    return real + timedelta(seconds=offset + max(0.0, elapsed) * (speed - 1.0))


def knob_set(key: str, value: Any) -> None:
    if key in {"clock_speed", "clock_offset_seconds"}:
        _clock_set(key, value)
        return
    DevSetting.objects.update_or_create(key=key, defaults={"value": value})


@transaction.atomic
def _clock_set(key: str, value: Any) -> None:
    """Re-anchor the clock. A new speed starts from the simulated now (no jump); a new
    offset puts the simulated now that many seconds ahead of the real one."""
    real = timezone.now()
    if key == "clock_speed":
        speed = float(value)
        if speed <= 0:
            raise ValueError("clock_speed must be positive")
        offset = (clock_now() - real).total_seconds()
    else:
        speed = _clock_values()[0]
        offset = float(value)
    for name, stored in (
        ("clock_speed", speed),
        ("clock_offset_seconds", offset),
        ("clock_anchor", real.timestamp()),
    ):
        DevSetting.objects.update_or_create(key=name, defaults={"value": stored})

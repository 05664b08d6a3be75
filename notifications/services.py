"""Notifications' entry points for the other apps.

``notification_trigger`` is how tracking and returns tell notifications that something happened
to an order (an explicit call, never a Django signal). Until the notifications issue lands it
records nothing and sends nothing.
"""

from typing import Any


def notification_trigger(
    *, shop: Any, order: Any, trigger: str, context: dict | None = None
) -> None:
    """Start, advance or cancel the sequences that ``trigger`` concerns (no-op for now)."""
    return None


def suppression_add(*, shop: Any, channel: str, address: str, reason: str) -> Any:
    """Record that ``address`` must not be messaged on ``channel`` (idempotent)."""
    from notifications.models import Suppression

    suppression, _ = Suppression.objects.get_or_create(
        shop=shop, channel=channel, address=address.strip().lower(), defaults={"reason": reason}
    )
    return suppression

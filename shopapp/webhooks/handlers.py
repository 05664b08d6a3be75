"""TOPIC_HANDLERS: one table, Shopify topic → the service that handles its payload.

Every handler has the same shape and is idempotent (Shopify delivers at least once, in no
particular order):

    def handler(*, shop: Shop, event: WebhookEvent, payload: dict) -> None
"""

from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]

TOPIC_HANDLERS: dict[str, Handler] = {}

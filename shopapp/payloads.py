"""Reading values out of Shopify's REST-shaped payloads (webhooks, and GraphQL converted to
that shape), where ids may arrive as JSON numbers or as digit strings."""

from typing import Any


def payload_int(value: Any) -> int | None:
    """An id or count as an int, or None. Booleans are not numbers here (``True`` is an int in
    Python), and Shopify's ids above 2**53 stay exact because ``json`` parses them as ints."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None

"""Reading values out of Shopify's REST-shaped payloads (webhooks, and GraphQL converted to
that shape), where ids may arrive as JSON numbers or as digit strings."""

import codecs
import json
import math
import re
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


# Characters PostgreSQL cannot store in text or jsonb: NUL, and lone surrogates (a JSON
# "\ud800" parses into a str that is not valid UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def json_storable(value: Any) -> Any:
    """``value`` (parsed JSON) with every string, keys included, made storable: NUL and lone
    surrogates become U+FFFD. Shopify's payloads carry what shoppers typed; one stray
    character must not make a delivery impossible to store, and so lost."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [json_storable(item) for item in value]
    if isinstance(value, dict):
        return {json_storable(key): json_storable(item) for key, item in value.items()}
    return value


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number out of range: {text[:20]}")
    return number


def _no_constant(name: str) -> float:
    raise ValueError(f"not JSON: {name}")


# In JSON text, the only ways to write NUL or a surrogate are these escapes (a raw control
# character is not valid JSON): without one, the parsed value has nothing to replace.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def json_parse(body: bytes) -> Any:
    """Strict JSON as Shopify sends it, storable as it comes out: NaN, Infinity and numbers
    beyond a double (1e400) are refused (ValueError) rather than stored as what PostgreSQL's
    jsonb refuses; nesting too deep for Python's parser is a ValueError too, not a crash."""
    try:
        parsed = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
        # The walk costs as much as the parse: only when an escape calls for it.
        return json_storable(parsed) if _UNSTORABLE_ESCAPE.search(body) else parsed
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_storable_text(body: bytes) -> str | None:
    """``body``, which ``json_parse`` accepted, as text to store as it is; None when only the
    parsed value is storable: an escape the parse replaced (NUL, a lone surrogate), or bytes
    that are not plain UTF-8 (Python's parser also reads UTF-16, UTF-32 and a BOM)."""
    if b"\x00" in body or body.startswith(codecs.BOM_UTF8) or _UNSTORABLE_ESCAPE.search(body):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Python's parser lets an encoded surrogate through ("surrogatepass").
        return None

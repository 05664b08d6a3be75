"""Redis for what the storefront pages keep between requests (rendered pages, suggested
products, the exchange catalogue): one client per process, and keys named for the database.

One client per Redis URL and process: Django's Redis cache builds a client per call (~0.5 ms
of CPU, as much as the rest of a cached page). Every client answers within
``REDIS_TIMEOUT_S`` or raises: the callers treat a slow Redis as a missing entry. Keys carry a
prefix naming the database, so databases behind one Redis (tests, benches) never share them.
"""

from __future__ import annotations

import hashlib
import threading

import redis
from django.conf import settings
from django.db import connection

# A Redis that does not answer within this is skipped: each caller has its fallback.
REDIS_TIMEOUT_S = 0.5

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def storefront_redis() -> redis.Redis:
    """This process's client for REDIS_URL."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url) or redis.Redis.from_url(
                url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            )
            _clients[url] = client
    return client


def storefront_key_prefix() -> str:
    """This database's prefix for storefront keys in Redis."""
    db = connection.settings_dict
    named = f"{db.get('HOST', '')}:{db.get('PORT', '')}:{db.get('NAME', '')}"
    return "storefront:" + hashlib.sha256(named.encode()).hexdigest()[:12] + ":"

"""Views that belong to no sub-area: the health check.

``GET /healthz`` answers 200 when the database and Redis both answer, 503 otherwise, so a load
balancer or uptime check takes the process out of rotation while either is down. It reports
reachability and latency only: never a URL, a host or an error message, which could carry
credentials (``REDIS_URL`` and ``DATABASE_URL`` hold passwords).
"""

import logging
import time

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# A health check that hangs is worse than one that fails: load balancers probe every few
# seconds with their own timeout (often 5 s), so each dependency gets at most 1 s.
REDIS_TIMEOUT_SECONDS = 1.0


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _database_check() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("health.database.unreachable", extra={"error": type(exc).__name__})
        return {"ok": False, "latency_ms": _elapsed_ms(started), "error": type(exc).__name__}
    return {"ok": True, "latency_ms": _elapsed_ms(started)}


def _redis_check() -> dict:
    started = time.perf_counter()
    # Its own client, not RQ's pooled one: that one has no timeouts and would hang the probe.
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry_on_timeout=False,
        # redis-py retries failed connects three times by default: one try keeps the 1 s bound.
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        logger.warning("health.redis.unreachable", extra={"error": type(exc).__name__})
        return {"ok": False, "latency_ms": _elapsed_ms(started), "error": type(exc).__name__}
    finally:
        client.close()
    return {"ok": True, "latency_ms": _elapsed_ms(started)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = _database_check()
    redis_state = _redis_check()
    healthy = database["ok"] and redis_state["ok"]
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "database": database, "redis": redis_state},
        status=200 if healthy else 503,
    )

"""The one hand-over to RQ: every job the app starts goes through ``rq_enqueue``.

Redis is only the hand-over. Each piece of background work is first a database row that says
it must happen (a ``WebhookEvent``, a ``notifications.Message``, a ``shopapp.Task``); the row is
committed, then handed to RQ here. When Redis is down or loses the job, nothing is lost: the
row's sweep (shopapp.cron, every minute) hands it over again. So this function never raises:
it logs one line and answers False, and the caller leaves the row for its sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import django_rq
import redis
from django.conf import settings
from rq import Callback, Retry
from rq.queue import Queue

logger = logging.getLogger(__name__)


class Queues:
    """The RQ queues, one per kind of work, so that a flood of one kind cannot hold the others
    (workers take them round robin: shopapp.background.worker)."""

    # Processing of stored webhook deliveries, and the pump that hands them out.
    WEBHOOKS = "webhooks"
    # Notification sends (one job per message).
    SENDS = "sends"
    # Reads from and writes to Shopify's Admin API: reconciliation, refreshes, return sends.
    SYNCS = "syncs"
    # The periodic rounds (sweeps, due-message dispatch, fan-outs) and local housekeeping.
    MAINTENANCE = "maintenance"
    # Nothing is enqueued here any more: workers still drain jobs an earlier release queued.
    LEGACY = "default"

    KINDS = (WEBHOOKS, SENDS, SYNCS, MAINTENANCE)
    # What every worker listens to, in its starting order.
    WORKER = (*KINDS, LEGACY)


# An unreachable Redis must not hold a webhook request or a shopper's page near Shopify's 5 s
# limit: connect and read timeouts in seconds, for every hand-over.
REDIS_CONNECT_TIMEOUT_S = 1.0
REDIS_SOCKET_TIMEOUT_S = 2.0

# One client per Redis URL and process: the connection pool is reused across requests
# (django_rq.get_connection builds a new pool per call).
_clients: dict[str, redis.Redis] = {}


@dataclass(frozen=True)
class JobSpec:
    """One RQ job to start: the function, its arguments and how RQ should treat it."""

    func: Callable[..., Any]
    # One of Queues.KINDS: which kind of work this is.
    queue: str
    args: tuple[Any, ...] = ()
    timeout_s: int = 300
    # RQ retries after these many seconds each; empty: no retry.
    retry_intervals_s: tuple[int, ...] = ()
    on_failure: Callable[..., Any] | None = None
    # A stable job id makes a second hand-over of the same work replace the first in Redis.
    job_id: str | None = None
    # Run no sooner than this (RQ's scheduler holds it meanwhile).
    delay: timedelta | None = None
    description: str = field(default="")


def queue_get(name: str) -> Queue:
    """The named queue on a client with short timeouts (see above)."""
    url = str(settings.RQ_QUEUES[name]["URL"])
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        )
        _clients[url] = client
    # commit_mode "auto": every caller hands over after its transaction committed.
    return django_rq.get_queue(name, connection=client, commit_mode="auto")


def _options(spec: JobSpec) -> dict[str, Any]:
    intervals = list(spec.retry_intervals_s)
    return {
        "timeout": spec.timeout_s,
        "retry": Retry(max=len(intervals), interval=intervals) if intervals else None,
        "on_failure": Callback(spec.on_failure) if spec.on_failure else None,
        "job_id": spec.job_id,
        "description": spec.description or None,
    }


def rq_enqueue(specs: Sequence[JobSpec]) -> bool:
    """Hand jobs to RQ; True when every one was handed over. Never raises.

    Jobs due now go in one round trip per queue; delayed ones go to RQ's scheduler.
    """
    if not specs:
        return True
    by_queue: dict[str, list[JobSpec]] = {}
    for spec in specs:
        if spec.queue not in Queues.WORKER:
            # A programming error, not an outage: raised, never logged away. (The legacy
            # queue is accepted for task rows an earlier release stored with it.)
            raise ValueError(f"unknown queue {spec.queue!r}: one of {Queues.KINDS}")
        by_queue.setdefault(spec.queue, []).append(spec)
    try:
        for name, group in by_queue.items():
            queue = queue_get(name)
            now = [s for s in group if not s.delay]
            if now:
                queue.enqueue_many(
                    [Queue.prepare_data(s.func, args=s.args, **_options(s)) for s in now]
                )
            for spec in group:
                if spec.delay:
                    options = _options(spec)
                    queue.enqueue_in(
                        spec.delay,
                        spec.func,
                        *spec.args,
                        job_timeout=options["timeout"],
                        retry=options["retry"],
                        on_failure=options["on_failure"],
                        job_id=options["job_id"],
                        description=options["description"],
                    )
    except (redis.RedisError, OSError) as exc:
        logger.warning(
            "background.enqueue.redis_unavailable",
            extra={"count": len(specs), "error": type(exc).__name__},
        )
        return False
    return True

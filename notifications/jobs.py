"""RQ entry points for notifications: thin, they take ids and call services.

``messages_dispatch_due_job`` runs from cron every minute (shopapp.cron); it enqueues one
``message_send_job`` per due message, each with a Retry and ``message_send_failed``.
"""

import logging
from types import TracebackType
from typing import Any

from rq.job import Job

from notifications import services

logger = logging.getLogger(__name__)


def messages_dispatch_due_job() -> int:
    return services.messages_dispatch_due()


def message_send_job(message_id: int) -> str:
    return services.message_send(message_id=message_id)


def message_send_failed(
    job: Job,
    connection: Any,
    exc_type: type[BaseException] | None = None,
    exc_value: BaseException | None = None,
    traceback: TracebackType | None = None,
) -> None:
    """RQ's on_failure callback. It runs after every failed attempt, retries included (before
    RQ decrements ``retries_left``), so the row is marked failed only when none is left."""
    message_id = int(job.args[0] if job.args else job.kwargs["message_id"])
    retries_left = job.retries_left or 0
    retry_in_s = job.get_retry_interval() if retries_left > 0 else None
    error = getattr(exc_value, "code", "") or (exc_type.__name__ if exc_type else "error")
    services.message_send_attempt_failed(
        message_id=message_id, retries_left=retries_left, retry_in_s=retry_in_s, error=str(error)
    )

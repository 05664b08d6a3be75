"""RQ entry points for webhook processing: thin, they take ids and call services."""

import logging
from types import TracebackType
from typing import Any

from rq.job import Job

from shopapp.webhooks import services

logger = logging.getLogger(__name__)


def webhook_event_process_job(event_id: int) -> str | None:
    return services.webhook_event_process(event_id=event_id)


def webhook_event_process_failed(
    job: Job,
    connection: Any,
    exc_type: type[BaseException] | None = None,
    exc_value: BaseException | None = None,
    traceback: TracebackType | None = None,
) -> None:
    """RQ's on_failure callback: it runs after every failed attempt, retries included, so the
    event is marked failed only when the job has no retry left (rq docs, "Retrying failed jobs").
    """
    event_id = int(job.args[0] if job.args else job.kwargs["event_id"])
    retries_left = job.retries_left or 0
    retry_in_s = job.get_retry_interval() if retries_left > 0 else None
    services.webhook_event_attempt_failed(
        event_id=event_id, retries_left=retries_left, retry_in_s=retry_in_s
    )


def webhook_events_pump_job() -> int:
    return services.webhook_events_pump()


def webhook_event_sweep_job() -> int:
    return services.webhook_event_sweep()

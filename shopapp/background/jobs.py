"""RQ entry points for tasks: thin, they take ids and call services."""

from types import TracebackType
from typing import Any

from rq.job import Job, get_current_job

from shopapp.background import services


def task_run_job(task_id: int) -> Any:
    job = get_current_job()
    return services.task_run(task_id=task_id, job_id=job.id if job is not None else "")


def task_attempt_failed_job(
    job: Job,
    connection: Any,
    exc_type: type[BaseException] | None = None,
    exc_value: BaseException | None = None,
    traceback: TracebackType | None = None,
) -> None:
    """RQ's on_failure callback. It runs after every failed attempt, retries included (before
    RQ decrements ``retries_left``), so the task fails only when no retry is left."""
    task_id = int(job.args[0] if job.args else job.kwargs["task_id"])
    retries_left = job.retries_left or 0
    retry_in_s = job.get_retry_interval() if retries_left > 0 else None
    services.task_attempt_failed(task_id=task_id, retries_left=retries_left, retry_in_s=retry_in_s)


def tasks_sweep_job() -> int:
    return services.tasks_sweep()

"""One way to start background work: a row first, RQ on commit, a sweep for what Redis lost.

    producer (in its transaction) ─ task_defer(job, key=…) ─▶ Task row (pending)
        └─ on commit ─ rq_enqueue(task_run_job(task id)) ─▶ RQ
                       Redis down: enqueued_at cleared, the row waits for the sweep
    cron, every minute ─ tasks_sweep ─ pending, due, not handed over lately ─▶ RQ again
    worker ─ task_run ─ claim (lease) ─ job(**kwargs) ─ done
                      raised: RQ retries with backoff; none left: failed, on_give_up(task)

Three kinds of rows carry background work, each with its sweep in shopapp.cron, all handed
to RQ by ``shopapp.background.queue.rq_enqueue``:

    WebhookEvent  a delivery to process (shopapp.webhooks.services: one INSERT at intake)
    Message       a message due at a time (notifications.services: the dispatcher is its sweep)
    Task          everything else: return submissions and their refreshes, shipment reads,
                  reconciliation, shop syncs

A job may run more than once (a sweep after a slow worker, a retry after a lost answer): jobs
are idempotent, and the claim keeps two workers from running the same task at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from shopapp.background.queue import JobSpec, Queues, rq_enqueue
from shopapp.models import Shop, Task

logger = logging.getLogger(__name__)

# Shopify outages and throttling pass within minutes: three more tries over ~12 minutes, and
# the sweep or the next cron round starts over after that.
DEFAULT_RETRY_INTERVALS_S = (30, 120, 600)
DEFAULT_TIMEOUT_S = 300
# The sweep leaves a task handed over this recently to RQ (it is queued or running); after
# that it assumes Redis lost the job and hands it over again (the claim stops a double run).
REENQUEUE_AFTER = timedelta(minutes=10)
# A claimed task's worker may overrun RQ's timeout by this much before its lease expires.
LEASE_MARGIN = timedelta(seconds=60)
SWEEP_BATCH_SIZE = 500


def job_path(job: Callable[..., Any] | str) -> str:
    """The dotted path a task row stores for ``job``; checked to import."""
    path = job if isinstance(job, str) else f"{job.__module__}.{job.__qualname__}"
    import_string(path)
    return path


def task_defer(
    job: Callable[..., Any] | str,
    *,
    shop: Shop | None,
    kwargs: dict[str, Any] | None = None,
    key: str | None = None,
    queue: str,
    delay: timedelta | None = None,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    retry_intervals_s: Iterable[int] = DEFAULT_RETRY_INTERVALS_S,
    on_give_up: Callable[..., Any] | str | None = None,
) -> Task:
    """Promise that ``job(**kwargs)`` runs after the current transaction commits.

    The row commits with the caller's work or not at all. With ``key``, a pending task of the
    same key is returned instead of a second one. ``kwargs`` must be JSON (ids, not rows).
    ``queue`` is the kind of work (``Queues.KINDS``): Shopify calls go to ``Queues.SYNCS``,
    local rounds to ``Queues.MAINTENANCE``.
    """
    if queue not in Queues.KINDS:
        raise ValueError(f"unknown queue {queue!r}: one of {Queues.KINDS}")
    now = timezone.now()
    task = Task(
        shop=shop,
        job=job_path(job),
        kwargs=kwargs or {},
        key=key,
        queue=queue,
        run_after=now + (delay or timedelta()),
        # Counted as handed over from now (or from when it is due): the sweep leaves it to the
        # on-commit hand-over below.
        enqueued_at=now + (delay or timedelta()),
        timeout_s=timeout_s,
        retry_intervals_s=list(retry_intervals_s),
        on_give_up=job_path(on_give_up) if on_give_up else "",
    )
    try:
        with transaction.atomic():
            task.save(force_insert=True)
    except IntegrityError:
        existing = Task.objects.filter(key=key, status=Task.Status.PENDING).first()
        if existing is None:
            raise
        return existing
    transaction.on_commit(lambda: _hand_over_or_leave([task]))
    return task


def _spec(task: Task, *, delay: timedelta | None = None) -> JobSpec:
    from shopapp.background.jobs import task_attempt_failed_job, task_run_job

    retries = list(task.retry_intervals_s or [])[task.attempts :]
    return JobSpec(
        func=task_run_job,
        args=(task.pk,),
        queue=task.queue,
        timeout_s=task.timeout_s,
        retry_intervals_s=tuple(int(s) for s in retries),
        on_failure=task_attempt_failed_job,
        delay=delay,
        description=f"{task.job} (task {task.pk})",
    )


def _hand_over(tasks: list[Task]) -> bool:
    now = timezone.now()
    return rq_enqueue(
        [_spec(t, delay=t.run_after - now if t.run_after > now else None) for t in tasks]
    )


def _hand_over_or_leave(tasks: list[Task]) -> None:
    if not _hand_over(tasks):
        # Redis was down: the sweep hands these over at its next round.
        Task.objects.filter(pk__in=[t.pk for t in tasks], status=Task.Status.PENDING).update(
            enqueued_at=None
        )


def tasks_sweep(*, now: datetime | None = None) -> int:
    """Hand over due tasks that RQ does not have (Redis was down, or lost the job)."""
    now = now or timezone.now()
    with transaction.atomic():
        tasks = list(
            Task.objects.select_for_update(skip_locked=True)
            .filter(status=Task.Status.PENDING, run_after__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - REENQUEUE_AFTER))
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
            .order_by("run_after", "id")[:SWEEP_BATCH_SIZE]
        )
        if not tasks:
            return 0
        pks = [t.pk for t in tasks]
        # A lease found expired is ended here, not judged again by the worker that gets the
        # job: the sweep decided its holder is gone (killed, or died with the database before
        # it could release it), and the next claim must not depend on that worker's clock.
        Task.objects.filter(pk__in=pks).update(
            enqueued_at=now, claimed_at=None, lease_expires_at=None, claimed_by_job=""
        )
        transaction.on_commit(lambda: _hand_over_or_leave(tasks))
    logger.info("background.sweep.enqueued", extra={"count": len(pks)})
    return len(pks)


def _claim(task_id: int, *, job_id: str) -> Task | None:
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.status != Task.Status.PENDING:
            return None
        if task.run_after > now:
            # Handed over early (a sweep of a rescheduled task): the sweep brings it back.
            Task.objects.filter(pk=task_id).update(enqueued_at=None)
            return None
        lease_live = task.lease_expires_at is not None and task.lease_expires_at > now
        if lease_live and not (job_id and task.claimed_by_job == job_id):
            # Another worker runs it (a duplicate hand-over): leave it.
            return None
        if lease_live:
            # RQ's retry of the very job whose attempt holds the claim: that attempt ended
            # without releasing it (the database went away under it, and with it the release
            # and the failure callback). Waiting out the lease would make this retry a no-op
            # and leave the task to the sweep minutes later.
            logger.info("background.task.claim_taken_over", extra={"task": task_id})
        task.claimed_at = now
        task.lease_expires_at = now + timedelta(seconds=task.timeout_s) + LEASE_MARGIN
        task.claimed_by_job = job_id
        task.attempts += 1
        task.save(update_fields=["claimed_at", "lease_expires_at", "claimed_by_job", "attempts"])
    return task


def task_run(*, task_id: int, job_id: str = "") -> Any:
    """Run one task's job under a claim. Exceptions propagate for RQ to retry.

    ``job_id``: the RQ job running this attempt (its retries keep the id), so that a retry
    can take over a claim its own earlier attempt could not release.
    """
    task = _claim(task_id, job_id=job_id)
    if task is None:
        logger.info("background.task.not_claimed", extra={"task": task_id})
        return None
    ours = Q(pk=task.pk, claimed_at=task.claimed_at)
    try:
        result = import_string(task.job)(**(task.kwargs or {}))
    except Exception as exc:
        # The class and message stay with the row for staff; the log line names only the class.
        Task.objects.filter(ours).update(
            claimed_at=None,
            lease_expires_at=None,
            claimed_by_job="",
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        logger.warning(
            "background.task.error",
            extra={"task": task.pk, "job": task.job, "error": type(exc).__name__},
        )
        raise
    Task.objects.filter(ours).update(
        status=Task.Status.DONE,
        claimed_at=None,
        lease_expires_at=None,
        claimed_by_job="",
        finished_at=timezone.now(),
        last_error="",
    )
    return result


def task_attempt_failed(*, task_id: int, retries_left: int, retry_in_s: float | None) -> None:
    """After a failed attempt: wait for RQ's retry, or mark the task failed and give up."""
    now = timezone.now()
    if retries_left > 0:
        Task.objects.filter(pk=task_id, status=Task.Status.PENDING).update(
            enqueued_at=now + timedelta(seconds=retry_in_s or 0)
        )
        return
    with transaction.atomic():
        task = (
            Task.objects.select_for_update().filter(pk=task_id, status=Task.Status.PENDING).first()
        )
        if task is None:
            return
        Task.objects.filter(pk=task_id).update(
            status=Task.Status.FAILED,
            finished_at=now,
            claimed_at=None,
            lease_expires_at=None,
            claimed_by_job="",
        )
        logger.error("background.task.failed", extra={"task": task_id, "job": task.job})
        if task.on_give_up:
            import_string(task.on_give_up)(**(task.kwargs or {}))


def task_retry(*, task_id: int) -> bool:
    """Run a failed task again (staff, from the Django admin). False unless it failed."""
    try:
        with transaction.atomic():
            updated = Task.objects.filter(pk=task_id, status=Task.Status.FAILED).update(
                status=Task.Status.PENDING,
                run_after=timezone.now(),
                enqueued_at=None,
                attempts=0,
                last_error="",
                finished_at=None,
            )
    except IntegrityError:
        # The same work is pending again already (its key is taken): nothing to do.
        return False
    return bool(updated)

"""Task rows whose attempt died with the database: the claim it could not release must not hold
the task back, from RQ's retry or from the sweep (the fault suite's PostgreSQL crash left one
pending: its claim outlived the crash, and every later hand-over was refused by the worker's
clock until the lease ran out, minutes later).

The attempt's database session is ended from the server (``pg_terminate_backend``, what a
crash does to every backend), so the job fails, its release fails and RQ's failure callback
fails, as they do when PostgreSQL goes down mid-job. The worker is the Procfile's class,
running in this process in burst mode.
"""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from shopapp.background.queue import Queues
from shopapp.background.services import task_defer, tasks_sweep
from shopapp.background.worker import AppWorker
from shopapp.models import Task

pytestmark = pytest.mark.django_db(transaction=True)

CRASHED = "tests:background:crashed"
RAN = "tests:background:ran"


def crash_once_job() -> None:
    """The first attempt loses its database session mid-job; later ones run."""
    redis = django_rq.get_connection(Queues.MAINTENANCE)
    if redis.set(CRASHED, "1", nx=True):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    redis.incr(RAN)


def work() -> None:
    """The Procfile's worker, in burst mode, in this process."""
    worker = AppWorker(
        [django_rq.get_queue(name) for name in settings.RQ_WORKER_QUEUES],
        connection=django_rq.get_connection(Queues.MAINTENANCE),
    )
    worker.reexec_enabled = False
    worker.work(burst=True, with_scheduler=True)


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("ends a PostgreSQL session from the server")


def _task(*, retries: tuple[int, ...]) -> Task:
    task = task_defer(
        crash_once_job,
        shop=None,
        queue=Queues.MAINTENANCE,
        timeout_s=60,
        retry_intervals_s=retries,
    )
    return task


def test_rqs_retry_takes_over_the_claim_its_crashed_attempt_left(postgresql, redis_conn):
    # given a task whose first attempt dies with its database session (one retry, at once)
    task = _task(retries=(0,))

    # when the worker runs it and then RQ's retry
    work()

    # then the retry ran it under the claim its own earlier attempt left behind
    task.refresh_from_db()
    assert redis_conn.get(CRASHED) == b"1"
    assert int(redis_conn.get(RAN)) == 1
    assert task.status == Task.Status.DONE
    assert task.attempts == 2
    assert (task.claimed_at, task.lease_expires_at, task.claimed_by_job) == (None, None, "")


def test_a_duplicate_job_still_leaves_a_live_claim_alone(postgresql, redis_conn):
    # given a task whose only attempt died with its database session: its claim is live
    task = _task(retries=())
    work()
    task.refresh_from_db()
    assert task.status == Task.Status.PENDING
    assert task.lease_expires_at > timezone.now()
    assert task.claimed_by_job

    # when another job for it arrives (a second hand-over, not RQ's retry of the first)
    django_rq.get_queue(Queues.MAINTENANCE).enqueue("shopapp.background.jobs.task_run_job", task.pk)
    work()

    # then it does not run the task: a live claim of another job may be a running attempt
    task.refresh_from_db()
    assert redis_conn.get(RAN) is None
    assert (task.status, task.attempts) == (Task.Status.PENDING, 1)


def test_the_sweep_ends_an_expired_claim_for_the_worker_that_gets_the_task(postgresql, redis_conn):
    # given a task whose only attempt died with its database session, no retry left
    task = _task(retries=())
    work()
    task.refresh_from_db()
    assert (task.status, redis_conn.get(RAN)) == (Task.Status.PENDING, None)

    # when the sweep runs once the lease has expired by its clock (an hour later), and a
    # worker whose clock is behind the sweep's gets the job
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        assert tasks_sweep() == 1
    task.refresh_from_db()
    assert (task.claimed_at, task.lease_expires_at, task.claimed_by_job) == (None, None, "")
    work()

    # then the task ran, once more, and is done
    task.refresh_from_db()
    assert int(redis_conn.get(RAN)) == 1
    assert (task.status, task.attempts) == (Task.Status.DONE, 2)

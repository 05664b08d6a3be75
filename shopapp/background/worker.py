"""The RQ worker the Procfile runs: one process that runs jobs itself, one after another.

    rqworker webhooks sends syncs maintenance default --with-scheduler   (RQ["WORKER_CLASS"])
        └─ AppWorker: RQ's SimpleWorker (no fork per job) ─ round robin over the queues
              ├─ job timeout: RQ's SIGALRM in the main thread raises JobTimeoutException
              ├─ watchdog: a job still running TIMEOUT + grace later (stuck where no signal
              │            reaches: a C call holding the GIL) ─▶ the process re-executes itself
              ├─ after each job: database connection dropped if unusable, memory checked;
              │            past WORKER_MAX_RSS_MB ─▶ finish, re-execute with a fresh memory
              └─ SIGKILL / OOM mid-job: the row's lease expires and its sweep hands it out again

Why not fork per job: RQ's default worker forks a "work horse" per job, which cost more than a
notification send itself (a fresh database connection, Django's lazy imports, the SMTP
connection) and capped the no-op rate at ~45 jobs/s on 2 cores. A job here runs in the
worker's own process and reuses its database, Redis and SMTP connections.

What forking gave and how it is made up for:
- a job that never ends was SIGKILLed with its horse: here RQ's timeout raises in the job, and
  the watchdog re-executes the worker if even that does not end it;
- memory a job leaked died with its horse: here the worker re-executes itself past a ceiling;
- a crash killed only the horse, the worker recorded the failure: here it kills the worker,
  and the job is recovered from the database (every job is a row with a lease and a sweep:
  WebhookEvent, Message, Task; DESIGN "All background work starts one way").
Re-executing keeps the PID (a process manager sees no exit) and drops every socket (they are
close-on-exec), so PostgreSQL rolls back whatever the stuck job held.

Why round robin: with one queue per kind (shopapp.background.queue.Queues) RQ's default order
serves the first queue until it is empty, so a flood of webhooks would hold every send behind
it. Round robin takes the next job from the queue after the one last served: a job of another
kind waits for at most one job per other queue, whatever is piled up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import sys
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue

logger = logging.getLogger(__name__)

# How long past a job's own timeout the watchdog waits before re-executing the worker: RQ's
# SIGALRM normally ends the job first, and its failure handling (the row's retry) runs here.
WATCHDOG_GRACE_S = 30
DEFAULT_MAX_RSS_MB = 400
# The scheduler process gets this long to release its locks before it is killed.
SCHEDULER_STOP_TIMEOUT_S = 5


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident set size now, in MB."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def reexec() -> None:
    """Replace this process with a fresh copy of itself (same PID, same arguments)."""
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 - ourselves, same argv


class AppWorker(SimpleWorker):
    """SimpleWorker with round-robin dequeue, a hard watchdog and a memory ceiling."""

    # Tests run the worker in their own process: no re-exec there, only the flag.
    reexec_enabled = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.restart_requested = False
        self.max_rss_mb = float(getattr(settings, "WORKER_MAX_RSS_MB", DEFAULT_MAX_RSS_MB))
        self.watchdog_grace_s = float(
            getattr(settings, "WORKER_WATCHDOG_GRACE_S", WATCHDOG_GRACE_S)
        )

    def reorder_queues(self, reference_queue: Queue) -> None:
        # Whatever strategy work() was given: the next dequeue starts after the queue just
        # served (RQ's round_robin strategy, which django-rq's rqworker cannot pass).
        pos = self._ordered_queues.index(reference_queue)
        self._ordered_queues = self._ordered_queues[pos + 1 :] + self._ordered_queues[: pos + 1]

    def execute_job(self, job: Job, queue: Queue) -> None:
        timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
        watchdog = None
        if timeout and int(timeout) > 0:
            watchdog = threading.Timer(
                int(timeout) + self.watchdog_grace_s, self._job_stuck, [job.id]
            )
            watchdog.daemon = True
            watchdog.start()
        try:
            super().execute_job(job, queue)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            self._after_job()

    def _job_stuck(self, job_id: str) -> None:
        logger.error("background.worker.job_stuck", extra={"job": job_id, "worker": self.name})
        if self.reexec_enabled:
            # The scheduler is a child process: exec keeps it (same PID, still our child) and
            # the fresh image starts its own, so each stuck job left one more scheduler running
            # past the worker's own shutdown. RQ's teardown stops it on the other way out.
            self._scheduler_stop()
            reexec()

    def _scheduler_stop(self) -> None:
        process = self.scheduler._process if self.scheduler else None
        if process is None or not process.pid:
            return
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
        process.join(SCHEDULER_STOP_TIMEOUT_S)
        if process.is_alive():
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGKILL)
            process.join(SCHEDULER_STOP_TIMEOUT_S)

    def _after_job(self) -> None:
        # Between jobs as Django does between requests: a connection left broken (a timeout
        # raised mid-query) or past CONN_MAX_AGE is closed; the next job opens a new one.
        for conn in connections.all(initialized_only=True):
            if conn.in_atomic_block:
                # A job that returned inside a transaction it did not close: never carry it on.
                with contextlib.suppress(Exception):
                    conn.close()
        close_old_connections()
        if current_rss_mb() > self.max_rss_mb:
            logger.warning(
                "background.worker.memory_ceiling",
                extra={
                    "worker": self.name,
                    "rss_mb": round(current_rss_mb()),
                    "max_mb": self.max_rss_mb,
                },
            )
            self.restart_requested = True
            # Finish the loop after this job, like a warm shutdown.
            self._stop_requested = True

    def work(self, *args: Any, **kwargs: Any) -> bool:
        worked = super().work(*args, **kwargs)
        if self.restart_requested and self.reexec_enabled:
            reexec()
        return worked

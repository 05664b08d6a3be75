"""The worker the Procfile runs, as a real process on the test Redis: no fork per job, queues
by kind taken round robin, job timeouts, the watchdog and the memory ceiling.

Jobs here touch only Redis: the worker process is the Procfile's command, with its own Django
and none of the test's database transaction.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rq import Queue, get_current_job
from rq.registry import FailedJobRegistry

from shopapp.background.queue import Queues
from tests.conftest import REPO
from tests.faults.stack import _descendants, procfile_worker_argv, wait_for

FLOOD = 3000


def flood_job() -> None:
    """One of the flood: a webhook that takes a little work."""
    time.sleep(0.001)


def mark_job(key: str) -> int:
    """Note when it ran, and in which process."""
    job = get_current_job()
    assert job is not None
    job.connection.set(key, f"{time.time()} {os.getpid()}")
    return os.getpid()


def sleep_job(seconds: float) -> None:
    time.sleep(seconds)


def deaf_sleep_job(seconds: float) -> None:
    """Stuck where RQ's timeout signal does not reach (as a C call holding the GIL would be)."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    time.sleep(seconds)


def grow_job() -> None:
    """Keeps 160 MB alive in the process, as a leak would."""
    global _leak
    _leak = bytearray(160 * 1024 * 1024)
    _leak[::4096] = b"x" * len(_leak[::4096])


_leak: bytearray | None = None


@pytest.fixture
def start_worker(redis_conn, tmp_path):
    """Start the Procfile's worker command with extra environment; stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")  # noqa: SIM115 - the worker's
        process = subprocess.Popen(
            procfile_worker_argv(),
            cwd=REPO,
            env={**os.environ, "LOCAL_DEV": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        # Its scheduler too, even if the worker left it behind (a test that fails that).
        for pid in _descendants(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def worker_log(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker-*.log")))


def test_a_flood_of_webhooks_does_not_hold_a_send_back(redis_conn, start_worker):
    # given thousands of webhook jobs queued, then one send
    webhooks = Queue(Queues.WEBHOOKS, connection=redis_conn)
    for start in range(0, FLOOD, 500):
        webhooks.enqueue_many(
            [Queue.prepare_data(flood_job, result_ttl=0) for _ in range(min(500, FLOOD - start))]
        )
    Queue(Queues.SENDS, connection=redis_conn).enqueue(mark_job, "send-ran")
    Queue(Queues.MAINTENANCE, connection=redis_conn).enqueue(mark_job, "sweep-ran")
    queued_at = time.time()

    # when one worker, as the Procfile runs it, starts on them
    worker = start_worker()

    # then the send and the sweep run while the flood is still mostly queued: the worker took
    # them between two webhooks, not after the last one
    wait_for(lambda: redis_conn.get("sweep-ran"), timeout=90, what="the sweep to run")
    send_ran_at, pid = redis_conn.get("send-ran").decode().split()
    assert webhooks.count > FLOOD * 0.9
    # and in the worker's own process (no fork per job)
    assert int(pid) == worker.pid
    # (the time from enqueue is mostly the worker's start-up on a busy machine)
    assert float(send_ran_at) - queued_at < 60


def test_a_job_past_its_timeout_is_stopped_and_the_worker_goes_on(
    redis_conn, start_worker, tmp_path
):
    sends = Queue(Queues.SENDS, connection=redis_conn)
    slow = sends.enqueue(sleep_job, 60, job_timeout=1)
    sends.enqueue(mark_job, "after-timeout")
    started = time.time()

    worker = start_worker()

    wait_for(lambda: redis_conn.get("after-timeout"), timeout=60, what="the next job")
    assert time.time() - started < 55
    assert slow.id in FailedJobRegistry(queue=sends).get_job_ids()
    result = slow.fetch(slow.id, connection=redis_conn).latest_result()
    assert result is not None
    assert "JobTimeoutException" in (result.exc_string or "")
    assert worker.poll() is None


def test_a_job_deaf_to_its_timeout_is_ended_by_the_watchdog(redis_conn, start_worker, tmp_path):
    sends = Queue(Queues.SENDS, connection=redis_conn)
    sends.enqueue(deaf_sleep_job, 300, job_timeout=1)
    sends.enqueue(mark_job, "after-stuck")

    worker = start_worker(WORKER_WATCHDOG_GRACE_S="1")

    # the stuck job is abandoned: the worker re-executes itself (same PID, as a process
    # manager sees it) and takes the next job
    ran = wait_for(lambda: redis_conn.get("after-stuck"), timeout=90, what="the next job")
    assert int(ran.decode().split()[1]) == worker.pid
    assert worker.poll() is None
    assert "background.worker.job_stuck" in worker_log(tmp_path)
    # Stopped as a process manager stops it, nothing of it is left running: the scheduler
    # process of the image that was replaced did not outlive the exec (it held the scheduler
    # locks, so the fresh image never started its own, and nothing stopped it at shutdown).
    children = _descendants(worker.pid)
    worker.terminate()
    worker.wait(timeout=30)
    time.sleep(1)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []


def test_a_worker_past_its_memory_ceiling_starts_afresh(redis_conn, start_worker, tmp_path):
    maintenance = Queue(Queues.MAINTENANCE, connection=redis_conn)
    maintenance.enqueue(grow_job)
    maintenance.enqueue(mark_job, "after-growth")

    worker = start_worker(WORKER_MAX_RSS_MB="150")

    ran = wait_for(lambda: redis_conn.get("after-growth"), timeout=90, what="the next job")
    assert int(ran.decode().split()[1]) == worker.pid
    assert "background.worker.memory_ceiling" in worker_log(tmp_path)
    # the job after the growth ran in a fresh process image: nothing of the leak is left
    status = Path(f"/proc/{worker.pid}/status").read_text()
    rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
    assert rss_kb < 150 * 1024


def test_every_producer_routes_its_jobs_to_a_kind():
    from django.conf import settings

    from shopapp.background.queue import JobSpec, rq_enqueue

    assert set(Queues.KINDS) <= set(settings.RQ_QUEUES)
    assert list(settings.RQ_WORKER_QUEUES) == list(Queues.WORKER)
    with pytest.raises(ValueError, match="unknown queue"):
        rq_enqueue([JobSpec(func=flood_job, queue="everything")])
    # no module of the app names a queue by string: each uses Queues
    sources = [
        path
        for app in ("shopapp", "tracking", "returns", "notifications")
        for path in (REPO / app).rglob("*.py")
        if "migrations" not in path.parts
    ]
    offenders = [
        str(path.relative_to(REPO))
        for path in sources
        if 'queue="' in path.read_text() or 'queue_name="' in path.read_text()
    ]
    assert offenders == []

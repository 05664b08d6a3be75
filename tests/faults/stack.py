"""The app as it runs in production, as real processes on 127.0.0.1, each of which a test can
kill, stop or restart:

    devshop ── signed webhooks (retried as Shopify does) ──▶ gunicorn (2 workers) ──▶ PostgreSQL
       ▲                                                        │ pump flag / jobs    (own cluster)
       └──── Admin GraphQL, OAuth ◀── RQ workers (the Procfile's) ◀── Redis (own server)
                                          │
                                          ▼
                                  SMTP server (aiosmtpd, in this process)

PostgreSQL and Redis are servers of the suite's own (a private data directory and port), so
that killing them disturbs nothing else on the machine. The cron is ``ops.py cron``, run when a
test says, with the clock moved on (the sweeps and leases wait minutes, a test does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from aiosmtpd.controller import Controller

from tests.conftest import REPO, Devshop, free_port, need, start_devshop

API_KEY = "faults-api-key"
API_SECRET = "faults-api-secret"  # noqa: S105 - a test app's secret
HTTP_TIMEOUT_S = 15


def procfile_worker_argv() -> list[str]:
    """The Procfile's ``worker`` command, run with this interpreter."""
    line = next(
        line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("worker:")
    )
    argv = shlex.split(line.split(":", 1)[1])
    assert argv[:2] == ["python", "manage.py"], argv
    return [sys.executable, str(REPO / "manage.py"), *argv[2:]]


def wait_for(predicate, *, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (children first)."""
    parents: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    return _descendants_of(pid, parents)


def _descendants_of(pid: int, parents: dict[int, list[int]]) -> list[int]:
    found: list[int] = []
    for child in parents.get(pid, []):
        found.extend([*_descendants_of(child, parents), child])
    return found


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        need(f"PostgreSQL's {name} is not installed")
    return str(found)


class Postgres:
    """A PostgreSQL cluster of the suite's own. As root it runs as the ``postgres`` user
    (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        # Not under pytest's temporary folders: those are private to root, and the server
        # runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/app"

    def init(self) -> None:
        if self.as_user:
            shutil.chown(self.root, user="postgres")
        subprocess.run(
            [*self.as_user, _postgres_bin("initdb"), "-D", str(self.data), "-A", "trust"]
            + ["-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True,
            capture_output=True,
        )
        self.start()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE app")

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - the server's life
        self.process = subprocess.Popen(
            [*self.as_user, _postgres_bin("postgres"), "-D", str(self.data)]
            + ["-p", str(self.port), "-c", "listen_addresses=127.0.0.1"]
            + ["-c", f"unix_socket_directories={self.root}", "-c", "fsync=off"]
            + ["-c", "max_connections=100"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, timeout=30, what="PostgreSQL to accept connections")

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn, connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def crash(self) -> None:
        """Immediate shutdown (SIGQUIT to the postmaster): every backend dies mid-transaction
        and the next start replays the WAL, as after a crash."""
        assert self.process is not None
        self._signal(signal.SIGQUIT)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGINT)
            self.process.wait(timeout=30)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _signal(self, sig: int) -> None:
        # Under runuser the postmaster is runuser's child: signal the real server.
        pid_file = self.data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else self.process.pid
        os.kill(pid, sig)


class RedisServer:
    """A Redis of the suite's own that keeps nothing on disk: killed, it comes back empty."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not shutil.which("redis-server"):
            need("redis-server is not installed")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=15, what="Redis to answer")

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@dataclass
class Sink:
    """The SMTP server: what it accepted, and a gate that holds senders inside MAIL FROM (a
    send in progress, before the server has the message)."""

    port: int = field(default_factory=free_port)
    accepted: list[tuple[str, str, str]] = field(default_factory=list)  # (id, to, subject)
    hold: threading.Event = field(default_factory=threading.Event)
    held: int = 0
    # Down: every MAIL FROM refused with 421 (a server shutting down or overloaded), counted.
    down: threading.Event = field(default_factory=threading.Event)
    refused: int = 0
    controller: Controller | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.down.is_set():
            with self.lock:
                self.refused += 1
            return "421 Service not available, closing transmission channel"
        if self.hold.is_set():
            with self.lock:
                self.held += 1
            while self.hold.is_set():
                await asyncio.sleep(0.05)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.accepted.append(
                (str(parsed["Message-ID"]), str(parsed["To"]), str(parsed["Subject"]))
            )
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class Stack:
    """Every process of the app and its services, for one test module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.postgres = Postgres()
        self.redis = RedisServer(root)
        self.sink = Sink()
        self.app_port = free_port()
        self.devshop_port = free_port()
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.devshop: Devshop | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def devshop_url(self) -> str:
        return f"http://127.0.0.1:{self.devshop_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "shopapp.settings",
                "DATABASE_URL": self.postgres.url,
                "REDIS_URL": self.redis.url,
                "APP_URL": self.app_url,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SHOPIFY_API_KEY": API_KEY,
                "SHOPIFY_API_SECRET": API_SECRET,
                "SHOPIFY_ADMIN_URL_TEMPLATE": f"{self.devshop_url}/store/{{shop}}",
                "SHOPIFY_EMBEDDED_APP_URL_TEMPLATE": (
                    f"{self.devshop_url}/store/{{shop}}/admin/apps/app"
                ),
                "SHOPIFY_STOREFRONT_URL_TEMPLATE": f"{self.devshop_url}/store/{{shop}}",
                "SHOPIFY_EXTRA_FRAME_ANCESTORS": self.devshop_url,
                "EMAIL_URL": f"smtp://127.0.0.1:{self.sink.port}",
                "DEFAULT_FROM_EMAIL": "notifications@faults.example",
                "RUN_DIR": str(self.root / "run"),
                "LOCAL_DEV": "1",
                "DEVSHOP_ENABLED": "0",
                "DB_CONN_MAX_AGE": "60",
                "LOG_LEVEL": "INFO",
                # Transient send errors retried in seconds, not minutes; the read-back of a
                # fulfillment two seconds after its webhook, not twenty.
                "NOTIFICATIONS_RETRY_INTERVALS": "1,2,4,8,16",
                "TRACKING_REFRESH_DELAY_SECONDS": "2",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise AssertionError(f"manage.py {' '.join(args)}: {done.stderr[-3000:]}")
        return done.stdout

    def ops(self, *args: str) -> Any:
        done = subprocess.run(
            [sys.executable, str(REPO / "tests" / "faults" / "ops.py"), *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise AssertionError(f"ops {' '.join(args)}: {done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self) -> None:
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        self.postgres.init()
        self.redis.start()
        self.sink.start()
        self.manage("migrate", "--noinput")
        self.web_start()
        for _ in range(2):
            self.worker_start()
        self.devshop = start_devshop(
            self.root,
            {
                "APP_URL": self.app_url,
                "SHOPIFY_API_KEY": API_KEY,
                "SHOPIFY_API_SECRET": API_SECRET,
                "DEVSHOP_URL": self.devshop_url,
                "DEVSHOP_AUTO_APPROVE": "1",
            },
            port=self.devshop_port,
        )

    def stop(self) -> None:
        for worker in self.workers_alive():
            self.worker_kill(worker)
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGKILL)
            self.web.wait(timeout=10)
        if self.devshop is not None:
            self.devshop.process.terminate()
            try:
                self.devshop.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.devshop.process.kill()
        self.sink.stop()
        self.redis.stop()
        self.postgres.remove()

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.root / log_name, "ab")  # noqa: SIM115 - the process's life
        return subprocess.Popen(
            args,
            cwd=REPO,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes its children too
        )

    def web_start(self) -> None:
        self.web = self._spawn(
            [sys.executable, "-m", "gunicorn", "shopapp.wsgi:application"]
            + ["--bind", f"127.0.0.1:{self.app_port}", "--workers", "2", "--threads", "4"]
            + ["--timeout", "30"],
            "web.log",
        )
        wait_for(self._web_answers, timeout=60, what="gunicorn to answer")

    def _web_answers(self) -> bool:
        try:
            requests.get(f"{self.app_url}/healthz", timeout=1)
            return True
        except requests.RequestException:
            return False

    def worker_start(self) -> subprocess.Popen:
        """One RQ worker as the Procfile runs it: every queue, no fork per job (the jobs run in
        the worker's own process: shopapp.background.worker), with the scheduler."""
        worker = self._spawn(
            procfile_worker_argv(),
            f"worker-{len(self.workers)}.log",
        )
        self.workers.append(worker)
        return worker

    def workers_alive(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def worker_kill(self, worker: subprocess.Popen) -> None:
        """SIGKILL the worker and anything it started (its scheduler process): no handler
        runs, nothing is cleaned up."""
        for pid in [*_descendants(worker.pid), worker.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def workers_keep(self, count: int = 2) -> None:
        """What a process manager does: bring the worker count back after deaths."""
        while len(self.workers_alive()) < count:
            self.worker_start()

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, socket_timeout=5)

    def sql(self, query: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.postgres.url.replace("postgres://", "postgresql://")) as conn:
            return conn.execute(query, params).fetchall()


def busy_workers(stack: Stack, *, job_func: str | None = None) -> list[subprocess.Popen]:
    """The stack's worker processes that RQ says are running a job (``job_func``: only those
    running that function)."""
    from rq import Worker

    pids = set()
    for worker in Worker.all(connection=stack.redis_client()):
        job = worker.get_current_job()
        if job is None or (job_func and job.func_name != job_func):
            continue
        pids.add(worker.pid)
    return [w for w in stack.workers_alive() if w.pid in pids]


class TableLock:
    """Holds an EXCLUSIVE lock on a table from outside the app (reads go on, writes wait): a
    job that writes to it stops in the middle of its transaction, where a test can kill it."""

    def __init__(self, stack: Stack, table: str) -> None:
        self.stack = stack
        self.table = table
        self.conn: psycopg.Connection | None = None

    def take(self) -> None:
        self.conn = psycopg.connect(self.stack.postgres.url.replace("postgres://", "postgresql://"))
        self.conn.execute(f"LOCK TABLE {self.table} IN EXCLUSIVE MODE")  # noqa: S608

    def waiting(self) -> int:
        rows = self.stack.sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = 'app' AND wait_event_type = 'Lock'"
        )
        return int(rows[0][0])

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None

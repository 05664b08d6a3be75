"""Shared fixtures: a real Redis, a burst RQ worker, and the devshop as a real HTTP server.

Services: in CI (``CI=true``) nothing skips, a missing service is an error. Outside CI a test
that needs a service it cannot reach is skipped with the reason.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(reason: str) -> None:
    """Fail in CI, skip elsewhere: a test that cannot reach its service."""
    if IN_CI:
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_conn():
    """The Redis behind RQ, emptied for the test."""
    import django_rq

    from shopapp.webhooks.services import webhook_pump_arm_forget

    conn = django_rq.get_connection("default")
    try:
        conn.ping()
    except redis.RedisError as exc:
        need(f"Redis unreachable: {exc}")
    conn.flushdb()
    # The pump flag is gone with the rest: the process must not remember it set.
    webhook_pump_arm_forget()
    yield conn
    conn.flushdb()


@pytest.fixture
def rq_worker(redis_conn):
    """Run every queued job in this process, as a real RQ worker in burst mode would."""
    import django_rq
    from django.conf import settings
    from rq import SimpleWorker

    def run(queues: tuple[str, ...] | None = None) -> None:
        names = queues or tuple(settings.RQ_WORKER_QUEUES)
        worker = SimpleWorker([django_rq.get_queue(name) for name in names], connection=redis_conn)
        worker.work(burst=True, with_scheduler=True)

    return run


class Devshop:
    def __init__(self, base_url: str, process: subprocess.Popen, log_path: Path) -> None:
        from devshop.client import DevshopClient

        self.base_url = base_url
        self.process = process
        self.log_path = log_path
        self.client = DevshopClient(base_url)

    @property
    def admin_url_template(self) -> str:
        return self.client.admin_url_template


def start_devshop(
    tmp_dir: Path, extra_env: dict[str, str] | None = None, *, port: int | None = None
) -> Devshop:
    from django.conf import settings

    port = port or free_port()
    env = dict(os.environ)
    env.update(
        {
            "DEVSHOP_DATABASE_URL": f"sqlite:///{tmp_dir / 'devshop.sqlite3'}",
            "RUN_DIR": str(tmp_dir),
            "SHOPIFY_API_KEY": settings.SHOPIFY_API_KEY,
            "SHOPIFY_API_SECRET": settings.SHOPIFY_API_SECRET,
            "APP_URL": settings.APP_URL,
            "DEVSHOP_URL": f"http://127.0.0.1:{port}",
            "LOCAL_DEV": "1",
        }
    )
    env.update(extra_env or {})
    log_path = tmp_dir / "devshop.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "devshop", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devshop exited: {log_path.read_text()[-2000:]}")
        try:
            requests.get(f"{base_url}/_devshop/knobs", timeout=1)
            return Devshop(base_url, process, log_path)
        except (requests.ConnectionError, requests.Timeout):
            # gunicorn opens the port before its worker has loaded Django: a late answer
            # means "still booting", like a refused connection.
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"devshop did not start: {log_path.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def devshop_server(tmp_path_factory):
    """The development store, running as its own server for the whole test session."""
    server = start_devshop(tmp_path_factory.mktemp("devshop"))
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def devshop(devshop_server, settings):
    """The devshop, with the app pointed at it for this test."""
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = devshop_server.admin_url_template
    # Each test starts from the store's default knobs.
    devshop_server.client.knobs_set(
        access_token_ttl=3600,
        refresh_token_ttl=90 * 86400,
        refresh_retry_window=30,
        auto_approve=True,
    )
    return devshop_server

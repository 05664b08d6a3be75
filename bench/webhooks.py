"""Webhook intake throughput and latency, against a bare Django view on the same server.

    bench ─ migrate + shop row ─> gunicorn (bench.settings, as the Procfile runs it)
          ─ N signed POSTs ─> /bench/bare      (baseline: Django answering 200)
          ─ N signed POSTs ─> /webhooks/       (verify HMAC, parse, INSERT, enqueue on commit)
          ─> requests/s, p50, p99 for both and their ratio

Both targets run in the same run on the same server with the same body and headers, so the
ratio is the intake's own cost, whatever the machine. Exits 1 if any webhook request failed or
a 200 was answered for a delivery that was not stored.

    .venv/bin/python bench/webhooks.py [--requests 2000] [--concurrency 16]

Database: ``DATABASE_URL`` when set (rows the bench wrote are deleted afterwards), else a
temporary SQLite file. Redis: ``REDIS_URL`` when set, else the embedded one, started in a
temporary directory and shut down afterwards. No RQ worker runs: jobs only pile up, and the
ones the bench enqueued are removed at the end.
"""

import argparse
import base64
import contextlib
import hashlib
import hmac
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "shopify" / "webhooks" / "orders__create.json"
SHOP_DOMAIN = "bench-shop.myshopify.com"
# Requests per target before measuring: imports, connection pools and SQLite's WAL warm up.
WARMUP_REQUESTS = 50
# Generous: a request slower than this is a failure, not a data point.
REQUEST_TIMEOUT_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per target (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    # The Procfile's web process: WEB_CONCURRENCY (2) workers of 4 threads.
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=4)
    return parser.parse_args()


def configure_environment(run_dir: Path) -> None:
    """The bench process and gunicorn share this environment: same database, same Redis."""
    os.environ["LOCAL_DEV"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    # The default SQLite file and the embedded Redis live in RUN_DIR: both temporary.
    os.environ["RUN_DIR"] = str(run_dir)
    os.environ.setdefault("LOG_LEVEL", "INFO")
    sys.path.insert(0, str(REPO))


def prepare_database() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from django.utils import timezone

    from shopapp.models import Shop

    Shop.objects.update_or_create(
        myshopify_domain=SHOP_DOMAIN,
        defaults={"is_active": True, "name": "Bench shop", "installed_at": timezone.now()},
    )


def start_server(port: int, args: argparse.Namespace, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "shopapp.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--timeout",
            "30",
            "--env",
            "DJANGO_SETTINGS_MODULE=bench.settings",
        ],
        cwd=REPO,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    import requests

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    return process
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer /healthz:\n{log_path.read_text()[-3000:]}")
    except BaseException:
        stop_server(process)
        raise


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def signed_headers(body: bytes, secret: str) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Triggered-At": "2026-01-15T12:00:00.000000000Z",
    }


def run_load(url: str, body: bytes, headers: dict, total: int, concurrency: int) -> dict:
    """POST ``total`` times from ``concurrency`` threads; each delivery gets its own ids."""
    import requests

    local = threading.local()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        delivery = {
            **headers,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
        }
        started = time.perf_counter()
        try:
            response = session.post(url, data=body, headers=delivery, timeout=REQUEST_TIMEOUT_S)
            status = response.status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        elapsed = time.perf_counter() - started
        with lock:
            if status == 200:
                latencies.append(elapsed)
            else:
                failures.append(str(status))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(total)))
    wall = time.perf_counter() - started
    return {"wall": wall, "latencies": latencies, "failures": failures, "total": total}


def summarise(result: dict) -> dict:
    latencies = sorted(result["latencies"])
    if len(latencies) >= 2:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p99 = cuts[49], cuts[98]
    else:
        p50 = p99 = latencies[0] if latencies else float("nan")
    return {
        "rps": len(latencies) / result["wall"],
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "ok": len(latencies),
        "failed": len(result["failures"]),
    }


def cleanup(redis_url: str, embedded: bool, event_ids: set[int]) -> None:
    import redis
    from rq import Queue

    connection = redis.Redis.from_url(redis_url)
    if embedded:
        # Our own server in a temporary directory: stop it, nothing else uses it.
        # The server drops the connection as it stops: that is the expected answer.
        with contextlib.suppress(redis.RedisError):
            connection.shutdown(nosave=True)
        return
    # A shared Redis: remove only the jobs this run enqueued, never anyone else's.
    queue = Queue("webhooks", connection=connection)
    for job in queue.get_jobs():
        if (
            job.func_name.endswith("webhook_event_process_job")
            and job.args[:1]
            and (job.args[0] in event_ids)
        ):
            job.delete()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        run_dir = Path(tmp)
        configure_environment(run_dir)
        embedded_redis = not os.environ.get("REDIS_URL")
        prepare_database()

        from django.conf import settings
        from django.db import connection

        from shopapp.models import Shop, WebhookEvent

        if embedded_redis:
            # Make gunicorn's workers use the server this process started, by its URL.
            os.environ["REDIS_URL"] = settings.REDIS_URL
        database = (
            f"{connection.vendor} (DATABASE_URL)"
            if os.environ.get("DATABASE_URL")
            else "temporary SQLite"
        )
        body = FIXTURE.read_bytes()
        headers = signed_headers(body, settings.SHOPIFY_API_SECRET)
        stored_before = WebhookEvent.objects.filter(shop_domain=SHOP_DOMAIN).count()
        try:
            port = free_port()
            server = start_server(port, args, run_dir / "gunicorn.log")
            base = f"http://127.0.0.1:{port}"
            try:
                for path in ("/bench/bare", "/webhooks/"):
                    run_load(base + path, body, headers, WARMUP_REQUESTS, args.concurrency)
                bare = summarise(
                    run_load(base + "/bench/bare", body, headers, args.requests, args.concurrency)
                )
                intake = summarise(
                    run_load(base + "/webhooks/", body, headers, args.requests, args.concurrency)
                )
            finally:
                stop_server(server)
            stored = WebhookEvent.objects.filter(shop_domain=SHOP_DOMAIN).count() - stored_before
        finally:
            event_ids = set(
                WebhookEvent.objects.filter(shop_domain=SHOP_DOMAIN).values_list("pk", flat=True)
            )
            cleanup(settings.REDIS_URL, embedded_redis, event_ids)
            if os.environ.get("DATABASE_URL"):
                # A real database: leave it as found.
                WebhookEvent.objects.filter(shop_domain=SHOP_DOMAIN).delete()
                Shop.objects.filter(myshopify_domain=SHOP_DOMAIN).delete()
            connection.close()

    expected = WARMUP_REQUESTS + intake["ok"]
    print(
        f"bench/webhooks: gunicorn {args.workers} workers x {args.threads} threads on 127.0.0.1, "
        f"database {database}, redis {'embedded' if embedded_redis else 'REDIS_URL'}; "
        f"{args.requests} requests per target, concurrency {args.concurrency}, "
        f"body {len(body)} bytes (orders/create)"
    )
    print(f"{'target':<16}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    for name, row in (("bare view", bare), ("webhook intake", intake)):
        print(
            f"{name:<16}{row['rps']:>12.1f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['failed']:>8}"
        )
    print(
        f"ratio intake/bare: throughput {intake['rps'] / bare['rps']:.2f}x, "
        f"p50 {intake['p50_ms'] / bare['p50_ms']:.2f}x, "
        f"p99 {intake['p99_ms'] / bare['p99_ms']:.2f}x"
    )
    print(f"stored events: {stored} of {expected} answered 200 (warm-up included)")
    if intake["failed"] or stored != expected:
        print("FAIL: webhook requests failed or were answered 200 without being stored")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

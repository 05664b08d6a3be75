"""Webhook intake throughput and latency under wrk, against two baselines on the same server.

    bench ─ migrate + shop row ─> gunicorn (bench.settings, as the Procfile runs it)
          ─ wrk ─> /bench/bare     Django answering 200 after reading the body
          ─ wrk ─> /bench/insert   the same plus one committed INSERT of the body: the floor
                                   for anything that stores a row
          ─ wrk ─> /webhooks/      verify HMAC, parse, store the delivery, answer 200
          ─> requests/s, p50, p99 of each, and the intake's ratios to both; CPU ms per
             request of gunicorn and of PostgreSQL (/proc), each gunicorn worker's peak RSS

All three run in the same run on the same server with the same signed body; each delivery has
its own X-Shopify-Webhook-Id, so none is a duplicate. Exits 1 if any request failed, or if the
number of stored deliveries differs from the number answered 200.

    .venv/bin/python bench/webhooks.py [--seconds 10] [--connections 16] [--json out.json]

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import figure, figures_write, wrk_row  # noqa: E402
from bench.rss import peak_rss_mb, process_children  # noqa: E402
from bench.wrk import WrkRequest, process_cpu_seconds, wrk_run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "shopify" / "webhooks" / "orders__create.json"
SHOP_DOMAIN = "bench-shop.myshopify.com"
# Seconds of load per target before measuring: imports, connection pools, WAL warm up.
WARMUP_SECONDS = 2
# Issue 12: peak RSS of a web worker, MB.
WEB_RSS_TARGET_MB = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="of load per target (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
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


def measure(
    base: str, body: bytes, headers: dict, args: argparse.Namespace, server_pid: int, database: str
) -> tuple[dict, dict[str, dict[str, float]]]:
    """Warm each target up, then measure it: the bare view, the INSERT floor, the intake.
    Also (wrk's results, CPU seconds of gunicorn and of ``database``'s backends per target)."""
    from bench.urls import floor_table_create

    floor_table_create()
    unique = ("X-Shopify-Webhook-Id", "X-Shopify-Event-Id")
    targets = {
        "bare view": WrkRequest("POST", "/bench/bare", headers, body),
        "one INSERT": WrkRequest("POST", "/bench/insert", headers, body),
        "webhook intake": WrkRequest("POST", "/webhooks/", headers, body, unique_headers=unique),
    }
    rows = {}
    cpu = {}
    for name, request in targets.items():
        warm = wrk_run(base, request, seconds=WARMUP_SECONDS, connections=args.connections)
        before = process_cpu_seconds({"gunicorn": server_pid}, database=database)
        rows[name] = wrk_run(base, request, seconds=args.seconds, connections=args.connections)
        after = process_cpu_seconds({"gunicorn": server_pid}, database=database)
        cpu[name] = {key: after[key] - before[key] for key in after}
        rows[name + " (warm-up)"] = warm
    return rows, cpu


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
                results, cpu = measure(
                    base, body, headers, args, server.pid, connection.settings_dict["NAME"]
                )
                # gunicorn's workers' high-water marks, before they exit.
                web_rss = [peak_rss_mb(pid) for pid in process_children(server.pid)]
            finally:
                stop_server(server)
            stored = WebhookEvent.objects.filter(shop_domain=SHOP_DOMAIN).count() - stored_before
        finally:
            event_ids = set(
                WebhookEvent.objects.filter(shop_domain=SHOP_DOMAIN).values_list("pk", flat=True)
            )
            cleanup(settings.REDIS_URL, embedded_redis, event_ids)
            from bench.urls import floor_table_drop

            floor_table_drop()
            if os.environ.get("DATABASE_URL"):
                # A real database: leave it as found.
                WebhookEvent.objects.filter(shop_domain=SHOP_DOMAIN).delete()
                Shop.objects.filter(myshopify_domain=SHOP_DOMAIN).delete()
            connection.close()

    warm_intake = results.pop("webhook intake (warm-up)")
    results = {k: v for k, v in results.items() if not k.endswith("(warm-up)")}
    bare, floor, intake = (results[k] for k in ("bare view", "one INSERT", "webhook intake"))
    print(
        f"bench/webhooks: wrk -t2 -c{args.connections} -d{args.seconds:g}s against gunicorn "
        f"{args.workers} workers x {args.threads} threads on 127.0.0.1, database {database}, "
        f"redis {'embedded' if embedded_redis else 'REDIS_URL'}; body {len(body)} bytes "
        "(orders/create)"
    )
    print(
        f"{'target':<16}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}"
        f"{'CPU ms/request: gunicorn':>26}{'PostgreSQL':>12}"
    )
    per_request = {}
    for name, row in results.items():
        done = max(1, row.requests)
        per_request[name] = {k: 1000 * v / done for k, v in cpu[name].items()}
        print(
            f"{name:<16}{row.rps:>12.1f}{row.p50_ms:>10.2f}{row.p99_ms:>10.2f}{row.failed:>8}"
            f"{per_request[name]['gunicorn']:>26.2f}{per_request[name]['PostgreSQL']:>12.2f}"
        )
    ratios = {
        "intake/bare throughput": intake.rps / bare.rps,
        "intake/insert throughput": intake.rps / floor.rps,
        "intake/bare p99": intake.p99_ms / bare.p99_ms,
    }
    print("ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    answered = warm_intake.ok + intake.ok
    # wrk stops counting at the end of its run; the requests then in flight (at most one per
    # connection and run) are still answered and stored, uncounted.
    in_flight = 2 * args.connections
    print(f"deliveries answered 200 (warm-up included): {answered}; stored: {stored}")
    print(
        "peak RSS MB of gunicorn's workers: "
        + ", ".join(f"{mb:.0f}" for mb in web_rss)
        + f" (target ≤ {WEB_RSS_TARGET_MB})"
    )
    failed = any(row.failed for row in results.values()) or not (
        answered <= stored <= answered + in_flight
    )
    figures_write(
        args.json,
        bench="webhooks",
        unit="req/s",
        setup=(
            f"{database}; wrk -t2 -c{args.connections} -d{args.seconds:g}s; gunicorn "
            f"{args.workers}x{args.threads}; orders/create body {len(body)} bytes"
        ),
        rows=[
            wrk_row(name, row, baseline=name != "webhook intake") for name, row in results.items()
        ],
        ok=not failed,
        notes=[
            f"deliveries answered 200 (warm-up included): {answered}; stored: {stored}",
            "CPU ms per request, gunicorn / PostgreSQL: "
            + "; ".join(
                f"{name} {cost['gunicorn']:.2f} / {cost['PostgreSQL']:.2f}"
                for name, cost in per_request.items()
            ),
        ],
        figures=[
            figure(
                f"peak RSS, gunicorn worker {i + 1}",
                mb,
                "MB",
                goal=f"≤ {WEB_RSS_TARGET_MB}",
                met=mb <= WEB_RSS_TARGET_MB,
            )
            for i, mb in enumerate(web_rss)
        ],
    )
    if failed:
        print("FAIL: requests failed, or a delivery was answered 200 without being stored")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

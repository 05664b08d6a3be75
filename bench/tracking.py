"""The storefront tracking page under gunicorn on a big PostgreSQL dataset, against a bare view.

    bench ─ CREATE DATABASE bench_tracking ─ migrate ─ COPY 50 shops, 100k orders, 200k line
          items, 200k shipments (+ their line items), 1M tracking events   (--scale 1.0)
          ─ SQL queries per page: an order with 1 event vs one with 400 (must be equal)
          ─ gunicorn (bench.settings) ─ wrk: signed app-proxy GETs ─▶ /bench/bare (baseline)
                                      ─ wrk: signed app-proxy GETs ─▶ /proxy/track/<token>
          ─ requests/s, p50, p99 for both and their ratio ─ DROP DATABASE bench_tracking

The page requests are what Shopify's proxy sends for an email link: a fresh signed query
(shop, logged_in_customer_id, path_prefix, timestamp, signature) on /proxy/track/<token>, cycling
through orders sampled across every shop, so the database works as it would.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/tracking.py
        [--scale 1.0] [--seconds 10] [--connections 16] [--json out.json] [--keep]

DATABASE_URL names the server (its own database is left alone): the bench creates and drops
``bench_tracking`` there (``<database>_bench_tracking`` when DATABASE_URL names a database other
than ``postgres``). Redis: ``REDIS_URL`` when set, else the embedded one (the GET page
does not touch Redis; the settings need one).
"""

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dataset import (  # noqa: E402
    HEAVY_EVENTS,
    SHOPS,
    build_dataset,
    configure_environment,
    recreate_database,
    scratch_urls,
    signed_path,
)
from bench.report import figures_write, wrk_row  # noqa: E402
from bench.webhooks import free_port, start_server, stop_server  # noqa: E402
from bench.wrk import WrkRequest, wrk_run  # noqa: E402

SCRATCH_DB = "bench_tracking"
# Orders the load picks from: enough to spread over every shop and defeat any warm row.
SAMPLE_ORDERS = 2000
WARMUP_SECONDS = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size (1.0 = 100k orders)")
    parser.add_argument("--seconds", type=float, default=10, help="of load per target (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    return parser.parse_args()


def queries_per_page(order_id: int) -> tuple[int, int]:
    """(SQL queries, status) for one page of ``order_id``, served in this process."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from shopapp.models import Order
    from shopapp.storefront.links import tracking_link_token

    order = Order.objects.select_related("shop").get(pk=order_id)
    url = signed_path(
        f"/proxy/track/{tracking_link_token(order)}",
        order.shop.myshopify_domain,
        settings.SHOPIFY_API_SECRET,
    )
    client = Client(HTTP_X_FORWARDED_FOR="203.0.113.9")
    client.get(url)  # warm: the view counter's row now exists, as for a returning shopper
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    return len(captured.captured_queries), response.status_code


def signed_request(targets: list[tuple[str, str]]) -> WrkRequest:
    """GETs cycling through ``targets`` (path, shop), each signed now as Shopify's proxy signs
    (its timestamps stay fresh for the 90 s a run takes)."""
    from django.conf import settings

    secret = settings.SHOPIFY_API_SECRET
    paths = tuple(signed_path(path, domain, secret) for path, domain in targets)
    # Any answer but a 200 (a 404 for a link that did not verify, a redirect) is a failure.
    return WrkRequest("GET", paths[0], {"X-Forwarded-For": "203.0.113.9"}, paths=paths, expect=())


def measure(base: str, targets: list[tuple[str, str]], args: argparse.Namespace):
    wrk_run(base, signed_request(targets), seconds=WARMUP_SECONDS, connections=args.connections)
    return wrk_run(
        base, signed_request(targets), seconds=args.seconds, connections=args.connections
    )


def main() -> int:
    args = parse_args()
    admin_url, scratch_db, scratch_url = scratch_urls(SCRATCH_DB, script="bench/tracking.py")
    recreate_database(admin_url, scratch_db)
    embedded_redis = not os.environ.get("REDIS_URL")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
            run_dir = Path(tmp)
            configure_environment(run_dir, scratch_url)
            import django
            from django.core.management import call_command

            django.setup()
            from django.conf import settings
            from django.db import connection

            if embedded_redis:
                os.environ["REDIS_URL"] = settings.REDIS_URL
            started = time.perf_counter()
            call_command("migrate", interactive=False, verbosity=0)
            migrate_s = time.perf_counter() - started
            counts = build_dataset(args.scale)

            few_queries, few_status = queries_per_page(1)
            many_queries, many_status = queries_per_page(2)

            from shopapp.models import Order
            from shopapp.storefront.links import tracking_link_token

            rng = random.Random(3)
            sample_ids = rng.sample(
                range(3, counts["orders_total"] + 1), min(SAMPLE_ORDERS, counts["orders_total"] - 2)
            )
            targets = [
                (f"/proxy/track/{tracking_link_token(order)}", order.shop.myshopify_domain)
                for order in Order.objects.select_related("shop").filter(pk__in=sample_ids)
            ]
            bare_targets = [("/bench/bare", domain) for _, domain in targets]
            connection.close()

            port = free_port()
            server = start_server(port, args, run_dir / "gunicorn.log")
            base = f"http://127.0.0.1:{port}"
            try:
                bare = measure(base, bare_targets, args)
                page = measure(base, targets, args)
            finally:
                stop_server(server)
            connection.close()
            if embedded_redis:
                import redis

                with contextlib.suppress(redis.RedisError):
                    redis.Redis.from_url(settings.REDIS_URL).shutdown(nosave=True)
    finally:
        if not args.keep:
            recreate_database(admin_url, scratch_db, drop_only=True)

    print(
        f"bench/tracking: PostgreSQL scratch database {scratch_db}, scale {args.scale}: "
        f"{counts['shops']} shops, {counts['orders']} orders, {counts['line_items']} line items, "
        f"{counts['shipments']} shipments, {counts['shipment_line_items']} shipment items, "
        f"{counts['events']} tracking events; migrate {migrate_s:.1f} s, "
        f"load {counts['seconds']:.1f} s (COPY + ANALYZE)"
    )
    print(
        f"SQL queries per tracking page: {few_queries} for an order with 1 event, "
        f"{many_queries} for one with {HEAVY_EVENTS} events "
        f"({'constant' if few_queries == many_queries else 'NOT CONSTANT'})"
    )
    print(
        f"wrk -t2 -c{args.connections} -d{args.seconds:g}s against gunicorn {args.workers} "
        f"workers x {args.threads} threads on 127.0.0.1; signed app-proxy GETs cycling through "
        f"{len(targets)} orders sampled across {SHOPS} shops"
    )
    print(f"{'target':<22}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    for name, row in (("bare view", bare), ("tracking page", page)):
        print(f"{name:<22}{row.rps:>12.1f}{row.p50_ms:>10.2f}{row.p99_ms:>10.2f}{row.failed:>8}")
    print(
        f"ratio page/bare: throughput {page.rps / bare.rps:.2f}x, "
        f"p50 {page.p50_ms / bare.p50_ms:.2f}x, p99 {page.p99_ms / bare.p99_ms:.2f}x"
    )
    ok = (
        few_queries == many_queries
        and few_status == many_status == 200
        and not page.failed
        and not bare.failed
    )
    figures_write(
        args.json,
        bench="tracking",
        unit="req/s",
        setup=(
            f"scale {args.scale} ({counts['orders']} orders, {counts['events']} events), "
            f"{len(targets)} sampled orders; wrk -t2 -c{args.connections} -d{args.seconds:g}s; "
            f"gunicorn {args.workers}x{args.threads}"
        ),
        rows=[wrk_row("bare view", bare, baseline=True), wrk_row("tracking page", page)],
        ok=ok,
    )
    if not ok:
        print("FAIL: queries per page not constant, or requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

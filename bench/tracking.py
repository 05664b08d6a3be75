"""The storefront tracking page under gunicorn on a big PostgreSQL dataset, against a bare view.

    bench ─ CREATE DATABASE bench_tracking ─ migrate ─ COPY 50 shops, 100k orders, 200k line
          items, 200k shipments (+ their line items), 1M tracking events   (--scale 1.0)
          ─ SQL queries per page: an order with 1 event vs one with 400 (must be equal)
          ─ gunicorn (bench.settings) ─ N signed app-proxy GETs ─▶ /bench/bare   (baseline)
                                      ─ N signed app-proxy GETs ─▶ /proxy/track/<token>
          ─ requests/s, p50, p99 for both and their ratio ─ DROP DATABASE bench_tracking

The page requests are what Shopify's proxy sends for an email link: a fresh signed query
(shop, logged_in_customer_id, path_prefix, timestamp, signature) on /proxy/track/<token>, each
for a random order among a sample spread over every shop, so the database works as it would.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/tracking.py
        [--scale 1.0] [--requests 2000] [--concurrency 16] [--keep]

DATABASE_URL names the server (its own database is left alone): the bench creates and drops
``bench_tracking`` there. Redis: ``REDIS_URL`` when set, else the embedded one (the GET page
does not touch Redis; the settings need one).
"""

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.webhooks import free_port, start_server, stop_server, summarise  # noqa: E402

SCRATCH_DB = "bench_tracking"
SHOPS = 50
ORDERS = 100_000
SHIPMENTS_PER_ORDER = 2
EVENTS = 1_000_000
# The "many events" order for the query count: far more than any real parcel gets.
HEAVY_EVENTS = 400
# Orders the load picks from: enough to spread over every shop and defeat any warm row.
SAMPLE_ORDERS = 2000
WARMUP_REQUESTS = 50
REQUEST_TIMEOUT_S = 10
STAGES = ["shipped", "in_transit", "out_for_delivery", "delivered", "delayed"]
CITIES = ["Lyon", "Paris", "Berlin", "Madrid", "Boston", "Toronto", "Leeds", "Porto"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size (1.0 = 100k orders)")
    parser.add_argument("--requests", type=int, default=2000, help="per target (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep bench_tracking afterwards")
    return parser.parse_args()


def scratch_urls() -> tuple[str, str]:
    """(the server's maintenance database URL, the scratch database URL)."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "bench/tracking.py needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/"
            "postgres (the bench creates and drops its own database there)"
        )
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres"))
    return admin, urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))


def recreate_database(admin_url: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {SCRATCH_DB}")


def configure_environment(run_dir: Path, scratch_url: str) -> None:
    os.environ["LOCAL_DEV"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["RUN_DIR"] = str(run_dir)
    os.environ["DATABASE_URL"] = scratch_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")


# ---------------------------------------------------------------------------------------------
# Dataset, by COPY


def _column_defaults(model) -> tuple[list[str], dict[str, object]]:
    """Every concrete column of ``model`` (id first) with a value fit for COPY when a row does
    not give one: the field's default, ``now`` for auto timestamps, JSON as text."""
    from django.db import models

    now = datetime.now(UTC)
    columns, defaults = [], {}
    for field in model._meta.concrete_fields:
        columns.append(field.column)
        if isinstance(field, models.DateTimeField) and (field.auto_now or field.auto_now_add):
            value = now
        else:
            # The declared default, or "" for a non-null text field, or None.
            value = field.get_default()
        if isinstance(field, models.JSONField):
            value = json.dumps(value if value is not None else None)
        defaults[field.column] = value
    return columns, defaults


def _copy(cursor, model, rows) -> int:
    """COPY ``rows`` (dicts of column → value) into ``model``'s table; returns the count."""
    columns, defaults = _column_defaults(model)
    table = model._meta.db_table
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row.get(c, defaults[c]) for c in columns])
            count += 1
    return count


def build_dataset(scale: float) -> dict:
    from django.db import connection, transaction

    from shopapp.models import LineItem, Order, Shop
    from tracking.models import Shipment, ShipmentLineItem, TrackingEvent

    rng = random.Random(42)
    orders = max(SHOPS * 2, int(ORDERS * scale))
    shipments = orders * SHIPMENTS_PER_ORDER
    events_total = max(shipments, int(EVENTS * scale))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    counts = {}
    started = time.perf_counter()

    # Events per shipment: 1..9 around the mean that gives the total, then the heavy one.
    mean = events_total / shipments
    per_shipment = [max(1, min(9, round(rng.gauss(mean, 2)))) for _ in range(shipments)]
    per_shipment[0] = 1  # order 1's first shipment: the "few events" page
    per_shipment[1] = 0
    per_shipment[2] = HEAVY_EVENTS  # order 2's first shipment: the "many events" page
    per_shipment[3] = 0

    with transaction.atomic(), connection.cursor() as cursor:
        counts["shops"] = _copy(
            cursor,
            Shop,
            (
                {
                    "id": s,
                    "myshopify_domain": f"bench-{s:02d}.myshopify.com",
                    "name": f"Bench shop {s}",
                    "is_active": True,
                    "installed_at": base,
                    "timezone": rng.choice(["Europe/Paris", "America/New_York", "UTC"]),
                    "primary_locale": rng.choice(["en", "fr", "de", "es"]),
                }
                for s in range(1, SHOPS + 1)
            ),
        )

        def order_rows():
            for o in range(1, orders + 1):
                shop = (o - 1) % SHOPS + 1
                number = 1000 + (o - 1) // SHOPS + 1
                yield {
                    "id": o,
                    "shop_id": shop,
                    "shopify_id": 4_000_000_000 + o,
                    "name": f"#{number}",
                    "order_number": number,
                    "email": f"shopper{o}@example.com",
                    "phone": f"+3361{o:07d}",
                    "customer_id": 9_000_000 + o // 3,
                    "locale": "",
                    "fulfillment_status": "fulfilled",
                    "shopify_created_at": base + timedelta(minutes=o),
                }

        counts["orders"] = _copy(cursor, Order, order_rows())

        def line_rows():
            for o in range(1, orders + 1):
                for k in range(2):
                    yield {
                        "id": 2 * (o - 1) + k + 1,
                        "shop_id": (o - 1) % SHOPS + 1,
                        "order_id": o,
                        "shopify_id": 2 * o + k,
                        "title": ["Trail shoe", "Merino socks"][k],
                        "quantity": 1 + k,
                        "current_quantity": 1 + k,
                    }

        counts["line_items"] = _copy(cursor, LineItem, line_rows())

        def shipment_rows():
            for sid in range(1, shipments + 1):
                o = (sid - 1) // SHIPMENTS_PER_ORDER + 1
                stage = rng.choice(STAGES)
                number = f"1Z999AA1{sid:010d}"
                yield {
                    "id": sid,
                    "shop_id": (o - 1) % SHOPS + 1,
                    "order_id": o,
                    "fulfillment_id": 3_000_000_000 + sid,
                    "name": f"#{o}.{sid}",
                    "status": "success",
                    "shipment_status": stage,
                    "stage": stage,
                    "tracking_company": "UPS",
                    "tracking_numbers": json.dumps([number]),
                    "tracking_urls": json.dumps([f"https://www.ups.com/track?tracknum={number}"]),
                    "estimated_delivery_at": base + timedelta(days=3, minutes=o),
                    "shopify_created_at": base + timedelta(hours=6, minutes=o),
                }

        counts["shipments"] = _copy(cursor, Shipment, shipment_rows())

        def shipment_line_rows():
            for sid in range(1, shipments + 1):
                o = (sid - 1) // SHIPMENTS_PER_ORDER + 1
                k = (sid - 1) % SHIPMENTS_PER_ORDER
                yield {
                    "id": sid,
                    "shop_id": (o - 1) % SHOPS + 1,
                    "shipment_id": sid,
                    "line_item_shopify_id": 2 * o + k,
                    "quantity": 1 + k,
                }

        counts["shipment_line_items"] = _copy(cursor, ShipmentLineItem, shipment_line_rows())

        def event_rows():
            eid = 0
            for sid, n in enumerate(per_shipment, start=1):
                o = (sid - 1) // SHIPMENTS_PER_ORDER + 1
                shop = (o - 1) % SHOPS + 1
                start = base + timedelta(hours=8, minutes=o)
                for i in range(n):
                    eid += 1
                    yield {
                        "id": eid,
                        "shop_id": shop,
                        "shipment_id": sid,
                        "shopify_id": 2_000_000_000 + eid,
                        "status": "in_transit",
                        "stage": "in_transit",
                        "happened_at": start + timedelta(hours=3 * i),
                        "message": "Departed facility",
                        "city": CITIES[eid % len(CITIES)],
                        "country": "France",
                    }

        counts["events"] = _copy(cursor, TrackingEvent, event_rows())

        for model in (Shop, Order, LineItem, Shipment, ShipmentLineItem, TrackingEvent):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT MAX(id) FROM {table}))"
            )
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE shopapp_shop, shopapp_order, shopapp_lineitem, tracking_shipment, "
            "tracking_shipmentlineitem, tracking_trackingevent"
        )
    counts["seconds"] = time.perf_counter() - started
    counts["orders_total"] = orders
    return counts


# ---------------------------------------------------------------------------------------------
# Requests


def signed_path(path: str, domain: str, secret: str) -> str:
    from shopapp.proxy import app_proxy_signature

    pairs = [
        ("shop", domain),
        ("logged_in_customer_id", ""),
        ("path_prefix", "/apps/postpurchase"),
        ("timestamp", str(int(time.time()))),
    ]
    pairs.append(("signature", app_proxy_signature(pairs, secret=secret)))
    return f"{path}?{urlencode(pairs)}"


def queries_per_page(order_id: int) -> tuple[int, int]:
    """(SQL queries, status) for one page of ``order_id``, served in this process."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from shopapp.models import Order
    from tracking.tokens import tracking_link_token

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


def run_load(base: str, targets: list[tuple[str, str]], total: int, concurrency: int) -> dict:
    """GET ``total`` signed requests, each to a random (path, shop) of ``targets``."""
    import requests
    from django.conf import settings

    secret = settings.SHOPIFY_API_SECRET
    local = threading.local()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    rng = random.Random(7)
    picks = [rng.choice(targets) for _ in range(total)]

    def one(i: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        path, domain = picks[i]
        url = base + signed_path(path, domain, secret)
        started = time.perf_counter()
        try:
            response = session.get(url, timeout=REQUEST_TIMEOUT_S)
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
    return {
        "wall": time.perf_counter() - started,
        "latencies": latencies,
        "failures": failures,
        "total": total,
    }


def main() -> int:
    args = parse_args()
    admin_url, scratch_url = scratch_urls()
    recreate_database(admin_url)
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
            from tracking.tokens import tracking_link_token

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
                run_load(base, bare_targets, WARMUP_REQUESTS, args.concurrency)
                run_load(base, targets, WARMUP_REQUESTS, args.concurrency)
                bare = summarise(run_load(base, bare_targets, args.requests, args.concurrency))
                page = summarise(run_load(base, targets, args.requests, args.concurrency))
            finally:
                stop_server(server)
            connection.close()
            if embedded_redis:
                import redis

                with contextlib.suppress(redis.RedisError):
                    redis.Redis.from_url(settings.REDIS_URL).shutdown(nosave=True)
    finally:
        if not args.keep:
            recreate_database(admin_url, drop_only=True)

    print(
        f"bench/tracking: PostgreSQL scratch database {SCRATCH_DB}, scale {args.scale}: "
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
        f"gunicorn {args.workers} workers x {args.threads} threads on 127.0.0.1; "
        f"{args.requests} signed app-proxy GETs per target, concurrency {args.concurrency}, "
        f"{len(targets)} orders sampled across {SHOPS} shops"
    )
    print(f"{'target':<22}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    for name, row in (("bare view", bare), ("tracking page", page)):
        print(
            f"{name:<22}{row['rps']:>12.1f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['failed']:>8}"
        )
    print(
        f"ratio page/bare: throughput {page['rps'] / bare['rps']:.2f}x, "
        f"p50 {page['p50_ms'] / bare['p50_ms']:.2f}x, p99 {page['p99_ms'] / bare['p99_ms']:.2f}x"
    )
    ok = (
        few_queries == many_queries
        and few_status == many_status == 200
        and not page["failed"]
        and not bare["failed"]
    )
    if not ok:
        print("FAIL: queries per page not constant, or requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

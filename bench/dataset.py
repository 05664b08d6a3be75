"""What the storefront benches share: a scratch PostgreSQL database, the tracking dataset
loaded by COPY, and signed app-proxy requests sent from a pool of client threads.

    scratch_urls(name) ─ recreate_database ─ configure_environment ─ django.setup, migrate
      ─ build_dataset(scale): 50 shops, 100k orders, 200k line items, 200k shipments
        (+ their line items), 1M tracking events   (scale 1.0)
      ─ load_run(total, concurrency, send): ``send`` each request from its thread's session;
        a 200 is a latency, anything else a failure (bench.webhooks.summarise reads the result)

bench/tracking.py measures the tracking page on this dataset, bench/returns.py the returns
portal. Each bench names its own scratch database, so the two never drop each other's.
"""

import json
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

SHOPS = 50
ORDERS = 100_000
SHIPMENTS_PER_ORDER = 2
EVENTS = 1_000_000
# The "many events" order for the query count: far more than any real parcel gets.
HEAVY_EVENTS = 400
STAGES = ["shipped", "in_transit", "out_for_delivery", "delivered", "delayed"]
CITIES = ["Lyon", "Paris", "Berlin", "Madrid", "Boston", "Toronto", "Leeds", "Porto"]


def scratch_urls(name: str, *, script: str) -> tuple[str, str, str]:
    """(the server's maintenance database URL, the scratch database's name, its URL).

    The scratch database is named after the one DATABASE_URL names (``wta`` → ``wta_<name>``;
    ``postgres`` leaves ``name`` alone): checkouts sharing one server, each with its own
    database, never drop each other's scratch database."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            f"{script} needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/"
            "postgres (the bench creates and drops its own database there)"
        )
    parts = urlsplit(base)
    named = parts.path.lstrip("/")
    if named and named != "postgres":
        name = f"{named}_{name}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    return admin, name, urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {name}")


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


def copy_rows(cursor, model, rows) -> int:
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
        # No row triggers during the load: Order.version's (shopapp 0007, tracking 0003) would
        # UPDATE an order for every shipment and event copied.
        cursor.execute("SET LOCAL session_replication_role = replica")
        counts["shops"] = copy_rows(
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

        counts["orders"] = copy_rows(cursor, Order, order_rows())

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

        counts["line_items"] = copy_rows(cursor, LineItem, line_rows())

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

        counts["shipments"] = copy_rows(cursor, Shipment, shipment_rows())

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

        counts["shipment_line_items"] = copy_rows(cursor, ShipmentLineItem, shipment_line_rows())

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

        counts["events"] = copy_rows(cursor, TrackingEvent, event_rows())

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


def signed_path(
    path: str, domain: str, secret: str, *, extra: Iterable[tuple[str, str]] = ()
) -> str:
    """``path`` with the query Shopify's app proxy forwards: the shopper's own parameters
    (``extra``) followed by the ones Shopify adds, all covered by the signature."""
    from shopapp.proxy import app_proxy_signature

    pairs = [
        *extra,
        ("shop", domain),
        ("logged_in_customer_id", ""),
        ("path_prefix", "/apps/postpurchase"),
        ("timestamp", str(int(time.time()))),
    ]
    pairs.append(("signature", app_proxy_signature(pairs, secret=secret)))
    return f"{path}?{urlencode(pairs)}"


def load_run(total: int, concurrency: int, send: Callable[[object, int], object]) -> dict:
    """Call ``send(session, i)`` for i in range(total) from ``concurrency`` threads, each with
    its own ``requests.Session``; ``send`` returns the answer's status (200 counts as a
    success, timed) or any other value naming the failure."""
    import requests

    local = threading.local()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        try:
            status = send(session, i)
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


def summarise(result: dict) -> dict:
    """requests/s, p50 and p99 (ms), successes and failures of a ``load_run``."""
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

"""The storefront returns portal under gunicorn on the tracking dataset, against a bare view.

    bench ─ CREATE DATABASE bench_returns ─ migrate ─ COPY the tracking dataset (bench.dataset)
          ─ devshop (manage.py devshop, its own SQLite): the 50 shops, the app installed by
            token, the tokens on the app's Shop rows, a ReturnPolicy each (defaults: 30 days)
          ─ the sampled orders made there (2 line items, paid), shipped one parcel per item;
            the app's rows for them take the devshop's order ids and are mirrored by the app's
            own reconciliation (line items, products, variants), keep their dataset names,
            and get one shipment per parcel, delivered 1-20 days ago
          ─ SQL queries per item-selection page: an order with 1 line item vs one with 20
          ─ gunicorn (bench.settings; its Admin API is the devshop's), lookup limits lifted
              warm-up: one item-selection page per sampled order (fills the product cache)
              wrk: signed GETs  ─▶ /bench/bare                                      (baseline)
              wrk: signed GETs  ─▶ /proxy/returns                                (lookup form)
              wrk: signed POSTs ─▶ /proxy/returns  step=lookup, order number + email  (lookup)
              wrk: signed GETs  ─▶ /proxy/returns?order=…&token=…             (item selection)
          ─ the pages' two Admin API calls straight to the devshop, as many at once as gunicorn
            has threads: the floor the devshop on this machine sets       (Admin API alone)
          ─ requests/s, p50, p99, ratios, Admin API calls and throttles ─ DROP DATABASE

The load comes from wrk (bench.wrk): a Python client on two cores measures itself. Its requests
are what Shopify's proxy forwards from a shopper's browser (signed query: shop,
logged_in_customer_id, path_prefix, timestamp, signature; the shopper's IP in X-Forwarded-For),
cycling through the sampled orders, each target in its own shuffled order, signed just before
each run (signatures expire after 90 s):
- lookup form: the portal's first page, the form a shopper types the order number into.
- lookup: that form posted, ``step=lookup``, ``form_token``, the order number and email. Its
  answer is the item-selection page itself (a signed state in a hidden field, no cookie): rate
  limit, lookup query, eligibility, two Admin API calls.
- item selection: the tracking page's "Start a return" link, a GET carrying the order's signed
  link token: the same page without the lookup.
Every answer must be a 200 holding the expected form (and, for the item pages, a returnable
item's quantity field), checked by wrk's Lua ``response()``; anything else is a failure and the
bench exits 1. Every request comes from one address, so the lookup's limits (per address, per
order) would refuse the flood: the bench raises them for its gunicorn (LIFTED_LIMITS, printed).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/returns.py
        [--scale 1.0] [--seconds 10] [--connections 16] [--sample 2000] [--json out.json]
        [--keep]

DATABASE_URL names the server: the bench creates and drops ``bench_returns`` there
(``<database>_bench_returns`` when it names a database other than ``postgres``). Redis:
``REDIS_URL`` when set (the rate-limit keys of the bench's shops are deleted before and after),
else the embedded one. A product's tags and type are cached for 15 minutes (ProductInfo): past
that, a page reads them from Shopify again, as it would in production.
"""

import argparse
import contextlib
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dataset import (  # noqa: E402
    SHOPS,
    build_dataset,
    configure_environment,
    load_run,
    recreate_database,
    scratch_urls,
    signed_path,
    summarise,
)
from bench.report import figures_row, figures_write, wrk_row  # noqa: E402
from bench.webhooks import free_port, start_server, stop_server  # noqa: E402
from bench.wrk import WrkRequest, WrkResult, process_cpu_seconds, wrk_run  # noqa: E402

SCRATCH_DB = "bench_returns"
# Orders the load visits, spread over every shop: 40 per shop keeps each shop's Admin API
# bucket (Standard plan: 2,000 points, 100/s) far from empty at the rates a 2-core machine
# reaches, while every order is still a different row and a different Shopify order.
SAMPLE_ORDERS = 2000
LINE_ITEMS_PER_ORDER = 2
# The "many line items" order for the query count; the devshop's catalogue has 36 variants.
MANY_LINE_ITEMS = 20
# The portal pages through an order's returnable fulfillments 4 at a time (returns.shopify
# ELIGIBILITY_QUERY): the many-line order ships in one parcel so that the query count
# compares line items, not Admin API pages.
PARCELS_MAX = 8
# A page waits for two Admin API calls to the devshop on the same machine: generous.
REQUEST_TIMEOUT_S = 30
# Orders the devshop makes per control call: a call must finish within the client's 10 s
# timeout, and the devshop is one Python process (its work does not run in parallel), so two
# calls at a time keep it busy without making any of them wait long.
DEVSHOP_ORDERS_PER_CALL = 5
DEVSHOP_SETUP_THREADS = 2
# Delivered 1-20 days ago: inside the default 30-day window, so every item is returnable.
DELIVERED_DAYS_AGO = (1, 20)
# What an item-selection page holds when an item can be returned: its quantity select. wrk
# checks every answer for these (bench.wrk ``expect``): a lookup that found nothing is a 200 too.
RETURNABLE_MARKER = 'name="quantity-'
ITEMS_FORM_MARKER = 'name="step" value="items"'
ITEM_PAGE_MARKERS = (ITEMS_FORM_MARKER, RETURNABLE_MARKER)
LOOKUP_FORM_MARKER = 'name="step" value="lookup"'
# Measured in this order, each after WARMUP_SECONDS of the same load.
TARGETS = ("bare view", "lookup form", "lookup", "item selection")
WARMUP_SECONDS = 2
# The item-selection warm-up (every sampled order once, from Python, each page checked).
WARMUP_CONCURRENCY = 8
# Every request comes from one shopper address (198.51.100.0/24 is for documentation)...
SHOPPER_IP = "198.51.100.7"
# ... so the lookup's limits (10 lookups per address, 5 per order, per 15 minutes; see
# shopapp.storefront.ratelimit) are lifted for gunicorn: the limiter still runs, its Redis round
# trip is in the figures, it just never refuses. (The items POST's own limit is not reached: no
# target posts items.)
LIFTED_LIMITS = {
    "TRACKING_LOOKUP_RATE_PER_IP": str(10**9),
    "TRACKING_LOOKUP_RATE_PER_ORDER": str(10**9),
}
# Shopify's proxy signatures are refused 90 s after their timestamp; each run signs its own
# cycle just before it starts, so a run must end well within that.
MAX_SECONDS = 60


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size (1.0 = 100k orders)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=10,
        help=f"of wrk load per target (10, at most {MAX_SECONDS})",
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument(
        "--admin-requests",
        type=int,
        default=300,
        help="pages' worth of Admin API calls (2 each) for the 'Admin API alone' floor (300)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", 2)),
        help="gunicorn workers (WEB_CONCURRENCY or 2)",
    )
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (4)")
    parser.add_argument(
        "--sample",
        type=int,
        default=SAMPLE_ORDERS,
        help=f"orders made on the devshop and cycled through ({SAMPLE_ORDERS})",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    args = parser.parse_args()
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be within (0, {MAX_SECONDS}]: signatures expire after 90 s")
    return args


def lifted_note() -> str:
    return ", ".join(f"{name}={value}" for name, value in LIFTED_LIMITS.items()) + (
        f" (every request from {SHOPPER_IP}; the limiter still counts)"
    )


# ---------------------------------------------------------------------------------------------
# The devshop


def start_devshop(port: int, run_dir: Path) -> subprocess.Popen:
    """``manage.py devshop`` on ``port`` with a scratch SQLite database in ``run_dir``; its log
    (access log included: one line per Admin API call) in run_dir/devshop.log."""
    import requests

    env = dict(os.environ)
    env.update(
        {
            "DEVSHOP_DATABASE_URL": f"sqlite:///{run_dir / 'devshop.sqlite3'}",
            "DEVSHOP_URL": f"http://127.0.0.1:{port}",
            "DEVSHOP_ACCESS_LOG": "1",
            # devshop.graphql.throttled is logged at INFO.
            "LOG_LEVEL": "INFO",
        }
    )
    log_path = run_dir / "devshop.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "devshop", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"devshop exited:\n{log_path.read_text()[-3000:]}")
        try:
            requests.get(f"http://127.0.0.1:{port}/_devshop/knobs", timeout=2)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"devshop did not start:\n{log_path.read_text()[-3000:]}")


def devshop_counts(log_path: Path) -> tuple[int, int]:
    """(Admin API calls answered, calls throttled) so far, from the devshop's log."""
    text = log_path.read_text(errors="replace")
    return text.count("/graphql.json"), text.count("devshop.graphql.throttled")


def cpu_seconds(pids: dict[str, int], database: str) -> dict[str, float]:
    """CPU seconds so far of each server and of the scratch database's backends."""
    return process_cpu_seconds(pids, database=database)


def install_shops(client) -> None:
    """Every bench shop on the devshop with the app installed; the app's Shop holds the token
    and the shop has its return policy (the defaults: refund, store credit, exchange)."""
    from django.utils import timezone

    from returns.models import ReturnPolicy
    from shopapp.auth.tokens import shop_tokens_assign
    from shopapp.models import Shop

    for shop in Shop.objects.order_by("pk"):
        domain = shop.myshopify_domain
        client.shop_create(domain, name=shop.name, iana_timezone=shop.timezone)
        grant = client.app_install_with_token(domain)
        now = timezone.now()
        shop_tokens_assign(
            shop=shop,
            access_token=grant["access_token"],
            access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
            refresh_token=grant["refresh_token"],
            refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
        )
        shop.currency = "USD"
        shop.save()
        ReturnPolicy.objects.get_or_create(shop=shop)


def make_devshop_orders(devshop_url: str, wanted: dict[int, tuple[str, int]]) -> dict[int, dict]:
    """{dataset order id: the devshop's state of a new order}: for each dataset order, an
    order made on the devshop (``wanted``: id → (shop domain, line items)), paid, English,
    and shipped: one parcel per line item, as the dataset ships its orders, except that an
    order of more than PARCELS_MAX lines leaves in one parcel (see PARCELS_MAX)."""
    from devshop.client import DevshopClient

    local = threading.local()

    def client() -> DevshopClient:
        # One client (one requests.Session) per thread.
        if not hasattr(local, "client"):
            local.client = DevshopClient(devshop_url)
        return local.client

    # One task per shop, its calls made in turn: the devshop numbers a shop's new order (and
    # parcel) from the last one, so two calls for one shop at once can collide on a number.
    calls: dict[str, list[tuple[str, int, list[int]]]] = {}
    by_shop: dict[tuple[str, int], list[int]] = {}
    for order_id, key in sorted(wanted.items()):
        by_shop.setdefault(key, []).append(order_id)
    for (domain, lines), ids in by_shop.items():
        for start in range(0, len(ids), DEVSHOP_ORDERS_PER_CALL):
            calls.setdefault(domain, []).append(
                (domain, lines, ids[start : start + DEVSHOP_ORDERS_PER_CALL])
            )

    def create(call: tuple[str, int, list[int]]) -> list[tuple[int, str, int, int]]:
        domain, lines, ids = call
        made = client().orders_create(
            domain,
            count=len(ids),
            line_items=lines,
            financial_status="PAID",
            customer_locale="en",
        )
        return [
            (order_id, domain, shopify_id, lines)
            for order_id, shopify_id in zip(ids, made, strict=True)
        ]

    def ship(item: tuple[int, str, int, int]) -> tuple[int, dict]:
        order_id, domain, shopify_id, lines = item
        client().order_fulfil(domain, shopify_id, split=lines <= PARCELS_MAX)
        return order_id, client().order_state(domain, shopify_id)

    def shop_orders(shop_calls: list[tuple[str, int, list[int]]]) -> list[tuple[int, dict]]:
        made = [item for call in shop_calls for item in create(call)]
        return [ship(item) for item in made]

    with ThreadPoolExecutor(max_workers=DEVSHOP_SETUP_THREADS) as pool:
        return dict(state for shop in pool.map(shop_orders, calls.values()) for state in shop)


def mirror_orders(states: dict[int, dict], rng: random.Random) -> None:
    """Give the dataset orders in ``states`` the devshop's orders: their Shopify ids, then the
    app's own reconciliation mirrors them (line items with their products and variants), the
    dataset's names come back (the devshop numbers its orders from #1001 too), and their
    shipments become the devshop's parcels, delivered recently."""
    from django.db import transaction
    from django.utils import timezone

    from shopapp.models import LineItem, Order, Shop
    from shopapp.orders.reconcile import orders_reconcile
    from tracking.models import Shipment, ShipmentLineItem, Stage

    orders = {o.pk: o for o in Order.objects.filter(pk__in=list(states))}
    with transaction.atomic():
        # The dataset's own shipments and lines go: the devshop's replace them.
        Shipment.objects.filter(order_id__in=list(orders)).delete()
        LineItem.objects.filter(order_id__in=list(orders)).delete()
        for order_id, state in states.items():
            Order.objects.filter(pk=order_id).update(
                shopify_id=state["id"], admin_graphql_api_id=""
            )
    for shop in Shop.objects.filter(pk__in={o.shop_id for o in orders.values()}):
        orders_reconcile(shop=shop)
    now = timezone.now()
    with transaction.atomic():
        for order in orders.values():
            Order.objects.filter(pk=order.pk).update(
                name=order.name, order_number=order.order_number
            )
        for order_id, state in states.items():
            order = orders[order_id]
            delivered_at = now - timedelta(days=rng.uniform(*DELIVERED_DAYS_AGO))
            for parcel in state["fulfillments"]:
                shipment = Shipment.objects.create(
                    shop_id=order.shop_id,
                    order_id=order_id,
                    fulfillment_id=parcel["id"],
                    name=parcel["name"],
                    status="success",
                    shipment_status="delivered",
                    stage=Stage.DELIVERED,
                    tracking_company=parcel["tracking_company"] or "",
                    tracking_numbers=parcel["tracking_numbers"] or [],
                    tracking_urls=parcel["tracking_urls"] or [],
                    delivered_at=delivered_at,
                    last_event_at=delivered_at,
                    shopify_created_at=delivered_at - timedelta(days=3),
                )
                ShipmentLineItem.objects.bulk_create(
                    ShipmentLineItem(
                        shop_id=order.shop_id,
                        shipment=shipment,
                        line_item_shopify_id=line["line_item_id"],
                        quantity=line["quantity"],
                    )
                    for line in parcel["line_items"]
                )
    mirrored = LineItem.objects.filter(order_id__in=list(orders)).count()
    expected = sum(len(state["line_items"]) for state in states.values())
    if mirrored != expected:
        raise SystemExit(f"the mirror holds {mirrored} line items, the devshop {expected}")


# ---------------------------------------------------------------------------------------------
# Requests


def item_path(order) -> tuple[str, list[tuple[str, str]]]:
    """The tracking page's "Start a return" link, as Shopify forwards it."""
    from shopapp.storefront.links import tracking_link_token

    return "/proxy/returns", [
        ("order", order.name.lstrip("#")),
        ("token", tracking_link_token(order)),
    ]


def page_status(response) -> int | str:
    """200 only for an item-selection page offering a returnable item."""
    if response.status_code != 200:
        return response.status_code
    if ITEMS_FORM_MARKER.encode() not in response.content:
        return "200 without the item form"
    if RETURNABLE_MARKER.encode() not in response.content:
        return "200 without a returnable item"
    return 200


def queries_per_item_page(order_id: int) -> tuple[int, int | str, list[str]]:
    """(SQL queries, page status, the SQL run) for the item-selection page of ``order_id``,
    served in this process; the first visit warms the product cache and the policy."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from shopapp.models import Order

    order = Order.objects.select_related("shop").get(pk=order_id)
    path, extra = item_path(order)
    domain, secret = order.shop.myshopify_domain, settings.SHOPIFY_API_SECRET
    client = Client(HTTP_X_FORWARDED_FOR="203.0.113.9")
    client.get(signed_path(path, domain, secret, extra=extra))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(signed_path(path, domain, secret, extra=extra))
    return (
        len(captured.captured_queries),
        page_status(response),
        [q["sql"] for q in captured.captured_queries],
    )


def _shape(sql: str) -> str:
    """A statement with its literals replaced, to count repeats of the same query."""
    sql = re.sub(r"'[^']*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "?", sql)
    return re.sub(r"IN \([?, ]+\)", "IN (…)", sql)


def grown_queries(few: list[str], many: list[str]) -> list[tuple[int, int, str]]:
    """[(count for few, count for many, statement)] of the statements run more often."""
    a, b = Counter(map(_shape, few)), Counter(map(_shape, many))
    return sorted(((a[s], b[s], s) for s in b if b[s] > a[s]), key=lambda row: -row[1])


def clear_rate_limits(redis_url: str, shop_ids: list[int]) -> None:
    """Delete the lookup rate-limit counters of the bench's shops (storefront ratelimit keys)."""
    import redis

    connection = redis.Redis.from_url(redis_url)
    for shop_id in shop_ids:
        for scope in ("ip", "order"):
            keys = list(connection.scan_iter(f"tracking:rl:{scope}:{shop_id}:*", count=1000))
            if keys:
                connection.delete(*keys)


def load_targets(sample_ids: list[int]) -> dict:
    """What each target sends, per sampled order (read once, before the load)."""
    from returns import shopify
    from shopapp.auth.tokens import shop_access_token_read
    from shopapp.models import Order, Shop
    from shopapp.storefront.links import form_token

    shops = list(Shop.objects.all())
    forms = {s.pk: form_token(s) for s in shops}
    sample = list(
        Order.objects.select_related("shop")
        .prefetch_related("line_items")
        .filter(pk__in=sample_ids)
        .order_by("pk")
    )
    return {
        "items": [(o.shop.myshopify_domain, *item_path(o)) for o in sample],
        "lookups": [
            (
                o.shop.myshopify_domain,
                {
                    "step": "lookup",
                    "form_token": forms[o.shop_id],
                    "order": o.name,
                    "contact": o.email,
                },
            )
            for o in sample
        ],
        "admin_calls": [
            (
                o.shop.myshopify_domain,
                shopify.gid("Order", o.shopify_id),
                [li.product_id for li in o.line_items.all() if li.product_id],
            )
            for o in sample
        ],
        "tokens": {s.myshopify_domain: shop_access_token_read(shop=s) for s in shops},
    }


def wrk_request(targets: dict, name: str) -> WrkRequest:
    """Target ``name``'s wrk request: a cycle through every sampled order in its own shuffled
    order, each request signed now as Shopify's proxy signs it. A signature is refused 90 s
    after its timestamp (SHOPIFY_APP_PROXY_TIMESTAMP_TOLERANCE_SECONDS), so every wrk run
    signs its own cycle just before it starts."""
    from django.conf import settings

    secret = settings.SHOPIFY_API_SECRET
    n = len(targets["items"])
    headers = {"X-Forwarded-For": SHOPPER_IP}
    if name == "lookup":
        lookups = [targets["lookups"][i] for i in random.Random(11).sample(range(n), n)]
        paths = tuple(signed_path("/proxy/returns", domain, secret) for domain, _ in lookups)
        return WrkRequest(
            "POST",
            paths[0],
            {**headers, "Content-Type": "application/x-www-form-urlencoded"},
            paths=paths,
            bodies=tuple(urlencode(data) for _, data in lookups),
            expect=ITEM_PAGE_MARKERS,
        )
    items = [targets["items"][i] for i in random.Random(13).sample(range(n), n)]
    if name == "item selection":
        paths = tuple(
            signed_path(path, domain, secret, extra=extra) for domain, path, extra in items
        )
        expect: tuple[str, ...] = ITEM_PAGE_MARKERS
    elif name == "lookup form":
        paths = tuple(signed_path("/proxy/returns", domain, secret) for domain, *_ in items)
        expect = (LOOKUP_FORM_MARKER,)
    else:
        # The bare view answers an empty 200: any 200 will do.
        paths = tuple(signed_path("/bench/bare", domain, secret) for domain, *_ in items)
        expect = ()
    return WrkRequest("GET", paths[0], headers, paths=paths, expect=expect)


def measure(
    base: str,
    targets: dict,
    args: argparse.Namespace,
    log_path: Path,
    pids: dict[str, int],
    database: str,
) -> tuple[dict[str, WrkResult], dict, dict, dict]:
    """Warm up, then each target in turn under wrk: (wrk's results by target, Admin API call
    counts, CPU seconds of each server by target (see cpu_seconds), 'Admin API alone')."""
    from django.conf import settings

    from returns import shopify
    from shopapp.admin_api.client import AdminApiClient, AdminApiError

    secret = settings.SHOPIFY_API_SECRET
    n = len(targets["items"])

    def item_selection(session, i: int) -> int | str:
        domain, path, extra = targets["items"][i]
        url = base + signed_path(path, domain, secret, extra=extra)
        headers = {"X-Forwarded-For": SHOPPER_IP}
        return page_status(session.get(url, headers=headers, timeout=REQUEST_TIMEOUT_S))

    admin_order = random.Random(17).sample(range(n), n)

    def admin_api(session, i: int) -> int | str:
        # What the page asks Shopify, from a client of its own per request as the page does.
        domain, order_gid, product_ids = targets["admin_calls"][admin_order[i % n]]
        api = AdminApiClient(domain, targets["tokens"][domain])
        try:
            shopify.eligibility_fetch(api, order_gid=order_gid, with_products=False)
            shopify.product_variants_fetch(api, product_ids=product_ids)
        except AdminApiError as exc:
            return type(exc).__name__
        return 200

    # One page per sampled order first, each checked: every product read once (ProductInfo,
    # 15 min), as on a shop whose catalogue shoppers keep visiting. Not a measurement.
    warm = load_run(n, WARMUP_CONCURRENCY, item_selection)
    if warm["failures"]:
        raise SystemExit(
            f"warm-up: {len(warm['failures'])} of {n} item-selection pages failed: "
            f"{Counter(warm['failures']).most_common(3)}"
        )
    cpu: dict[str, dict[str, float]] = {}
    rows: dict[str, WrkResult] = {}
    # Admin API calls answered and throttled by the devshop during each measured run.
    calls: dict[str, tuple[int, int]] = {}
    for name in TARGETS:
        wrk_run(
            base,
            wrk_request(targets, name),
            seconds=WARMUP_SECONDS,
            connections=args.connections,
            timeout_s=REQUEST_TIMEOUT_S,
        )
        request = wrk_request(targets, name)
        calls_before = devshop_counts(log_path)
        before = cpu_seconds(pids, database)
        rows[name] = wrk_run(
            base,
            request,
            seconds=args.seconds,
            connections=args.connections,
            timeout_s=REQUEST_TIMEOUT_S,
        )
        after = cpu_seconds(pids, database)
        cpu[name] = {server: after[server] - before[server] for server in after}
        calls_after = devshop_counts(log_path)
        calls[name] = (calls_after[0] - calls_before[0], calls_after[1] - calls_before[1])
    # No more calls at once than gunicorn's threads can make: what the pages send the devshop.
    admin_concurrency = min(args.connections, args.workers * args.threads)
    calls_before = devshop_counts(log_path)
    before = cpu_seconds(pids, database)
    alone = load_run(args.admin_requests, admin_concurrency, admin_api)
    after = cpu_seconds(pids, database)
    cpu["Admin API alone"] = {server: after[server] - before[server] for server in after}
    calls_after = devshop_counts(log_path)
    calls["Admin API alone"] = (calls_after[0] - calls_before[0], calls_after[1] - calls_before[1])
    return rows, calls, cpu, alone


def main() -> int:
    args = parse_args()
    admin_url, scratch_db, scratch_url = scratch_urls(SCRATCH_DB, script="bench/returns.py")
    recreate_database(admin_url, scratch_db)
    embedded_redis = not os.environ.get("REDIS_URL")
    shop_ids = list(range(1, SHOPS + 1))
    devshop = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-returns-") as tmp:
            run_dir = Path(tmp)
            configure_environment(run_dir, scratch_url)
            # gunicorn inherits them; see LIFTED_LIMITS.
            os.environ.update(LIFTED_LIMITS)
            devshop_port = free_port()
            devshop_url = f"http://127.0.0.1:{devshop_port}"
            # The app (this process and gunicorn) reaches every shop's Admin API there.
            os.environ["SHOPIFY_ADMIN_URL_TEMPLATE"] = f"{devshop_url}/store/{{shop}}"
            import django
            from django.core.management import call_command

            django.setup()
            from django.conf import settings
            from django.db import connection

            from devshop.client import DevshopClient
            from shopapp.models import Order, Shop

            if embedded_redis:
                os.environ["REDIS_URL"] = settings.REDIS_URL
            clear_rate_limits(settings.REDIS_URL, shop_ids)
            started = time.perf_counter()
            call_command("migrate", interactive=False, verbosity=0)
            migrate_s = time.perf_counter() - started
            counts = build_dataset(args.scale)

            started = time.perf_counter()
            devshop = start_devshop(devshop_port, run_dir)
            devshop_client = DevshopClient(devshop_url)
            install_shops(devshop_client)
            rng = random.Random(3)
            sample_ids = rng.sample(
                range(3, counts["orders_total"] + 1), min(args.sample, counts["orders_total"] - 2)
            )
            domains = dict(Shop.objects.values_list("pk", "myshopify_domain"))
            shop_of = dict(
                Order.objects.filter(pk__in=[1, 2, *sample_ids]).values_list("pk", "shop_id")
            )
            wanted = {o: (domains[shop_of[o]], LINE_ITEMS_PER_ORDER) for o in sample_ids}
            # Orders 1 and 2 (outside the sample): the query count's few and many line items.
            wanted[1] = (domains[shop_of[1]], 1)
            wanted[2] = (domains[shop_of[2]], MANY_LINE_ITEMS)
            states = make_devshop_orders(devshop_url, wanted)
            mirror_orders(states, random.Random(5))
            setup_s = time.perf_counter() - started

            few_queries, few_status, few_sql = queries_per_item_page(1)
            many_queries, many_status, many_sql = queries_per_item_page(2)
            grown = grown_queries(few_sql, many_sql)
            targets = load_targets(sample_ids)
            connection.close()

            # gunicorn's threads keep their PostgreSQL connection for the run (the app's default
            # renews it every 60 s): an ended backend's CPU would vanish from /proc. A reconnect
            # a minute per thread is not what the bench measures.
            os.environ["DB_CONN_MAX_AGE"] = "3600"
            port = free_port()
            server = start_server(port, args, run_dir / "gunicorn.log")
            log_path = run_dir / "devshop.log"
            try:
                rows, admin, cpu, alone = measure(
                    f"http://127.0.0.1:{port}",
                    targets,
                    args,
                    log_path,
                    {"app": server.pid, "devshop": devshop.pid},
                    scratch_db,
                )
            finally:
                stop_server(server)
    finally:
        if devshop is not None:
            stop_server(devshop)
        with contextlib.suppress(Exception):
            clear_rate_limits(os.environ["REDIS_URL"], shop_ids)
        if embedded_redis:
            import redis

            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(os.environ["REDIS_URL"]).shutdown(nosave=True)
        if not args.keep:
            recreate_database(admin_url, scratch_db, drop_only=True)

    admin_concurrency = min(args.connections, args.workers * args.threads)
    setup = (
        f"scale {args.scale} ({counts['orders']} orders), {len(targets['items'])} sampled "
        f"orders on the devshop; wrk -t2 -c{args.connections} -d{args.seconds:g}s; gunicorn "
        f"{args.workers}x{args.threads}"
    )
    print(
        f"bench/returns: PostgreSQL scratch database {scratch_db}, scale {args.scale}: "
        f"{counts['shops']} shops, {counts['orders']} orders, {counts['line_items']} line items, "
        f"{counts['shipments']} shipments, {counts['events']} tracking events; "
        f"migrate {migrate_s:.1f} s, load {counts['seconds']:.1f} s (COPY + ANALYZE); "
        f"devshop: {len(states)} orders made, shipped and mirrored in {setup_s:.1f} s"
    )
    print(
        f"SQL queries per item-selection page: {few_queries} for an order with 1 line item, "
        f"{many_queries} for one with {MANY_LINE_ITEMS} "
        f"({'constant' if few_queries == many_queries else 'NOT CONSTANT'})"
    )
    for few, many, statement in grown:
        print(f"  {few} -> {many}: {statement[:150]}")
    print(
        f"wrk -t2 -c{args.connections} -d{args.seconds:g}s (after {WARMUP_SECONDS} s of warm-up) "
        f"against gunicorn {args.workers} workers x {args.threads} threads on 127.0.0.1, Admin "
        f"API on the devshop (1 worker x 16 threads, same machine); signed app-proxy requests "
        f"cycling through {len(targets['items'])} orders ({LINE_ITEMS_PER_ORDER} line items "
        f"each) sampled across {SHOPS} shops; 'Admin API alone': {args.admin_requests} call "
        f"pairs from this process's Python client (the app's own) at concurrency "
        f"{admin_concurrency}"
    )
    print(f"rate limits lifted for the load: {lifted_note()}")
    alone_row = summarise(alone)
    table = {
        name: wrk_row(name, result, baseline=name == "bare view") for name, result in rows.items()
    }
    table["Admin API alone"] = figures_row(
        "Admin API alone",
        rate=alone_row["rps"],
        p50_ms=alone_row["p50_ms"],
        p99_ms=alone_row["p99_ms"],
        failed=alone_row["failed"],
        baseline=True,
    )
    print(f"{'target':<22}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    for name, row in table.items():
        print(
            f"{name:<22}{row['rate']:>12.1f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['failed']:>8}"
        )
    answered = {name: result.requests for name, result in rows.items()}
    answered["Admin API alone"] = alone["total"]
    print(
        "CPU ms per request, app (gunicorn) / devshop / PostgreSQL: "
        + "; ".join(
            f"{name} "
            + " / ".join(
                f"{used[server] * 1000 / max(1, answered[name]):.1f}"
                for server in ("app", "devshop", "PostgreSQL")
            )
            for name, used in cpu.items()
        )
    )
    bare = table["bare view"]
    for name in ("lookup form", "lookup", "item selection", "Admin API alone"):
        page = table[name]
        print(
            f"ratio {name}/bare: throughput {page['rate'] / bare['rate']:.2f}x, "
            f"p50 {page['p50_ms'] / bare['p50_ms']:.2f}x, "
            f"p99 {page['p99_ms'] / bare['p99_ms']:.2f}x"
        )
    pages = rows["lookup"].requests + rows["item selection"].requests
    page_calls = admin["lookup"][0] + admin["item selection"][0]
    throttled = admin["lookup"][1] + admin["item selection"][1]
    print(
        f"Admin API calls to the devshop during lookup + item selection: {page_calls} "
        f"({page_calls / max(1, pages):.2f} per page), throttled {throttled}; "
        f"during 'Admin API alone': throttled {admin['Admin API alone'][1]}"
    )
    for name, result in rows.items():
        if result.failed:
            # Every answer is checked (bench.wrk ``expect``): a 4xx/5xx is a status error, a
            # 200 or 3xx that is not the page (a lookup's "not found", a redirect) unexpected.
            print(
                f"failures, {name}: {result.status_errors} answered 400 or more, "
                f"{result.unexpected} not the expected page, {result.socket_errors} socket errors"
            )
    if alone["failures"]:
        print(f"failures, Admin API alone: {dict(Counter(alone['failures']).most_common(5))}")
    if throttled or admin["Admin API alone"][1]:
        print("NOTE: throttled Admin API calls were waited out; their pages include the wait")
    failed = any(result.failed for result in rows.values()) or bool(alone["failures"])
    ok = few_queries == many_queries and few_status == many_status == 200 and not failed
    figures_write(
        args.json,
        bench="returns",
        unit="req/s",
        setup=setup,
        rows=list(table.values()),
        ok=ok,
        notes=[f"rate limits lifted: {lifted_note()}"],
    )
    if not ok:
        print("FAIL: queries per page not constant, or requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The storefront returns portal under gunicorn on the tracking dataset, against a bare view.

    bench ─ CREATE DATABASE bench_returns ─ migrate ─ COPY the tracking dataset (bench.dataset)
          ─ devshop (manage.py devshop, its own SQLite): the 50 shops, the app installed by
            token, the tokens on the app's Shop rows, a ReturnPolicy each (defaults: 30 days)
          ─ the sampled orders made there (2 line items, paid), shipped one parcel per item;
            the app's rows for them take the devshop's order ids and are mirrored by the app's
            own reconciliation (line items, products, variants), keep their dataset names,
            and get one shipment per parcel, delivered 1-20 days ago
          ─ SQL queries per item-selection page: an order with 1 line item vs one with 20
          ─ gunicorn (bench.settings; its Admin API is the devshop's)
              warm-up: one item-selection page per sampled order (fills the product cache)
              N signed GETs  ─▶ /bench/bare                                         (baseline)
              N signed POSTs ─▶ /proxy/returns   step=lookup, order number + email   (lookup)
              N signed GETs  ─▶ /proxy/returns?order=…&token=…               (item selection)
          ─ the pages' two Admin API calls straight to the devshop, as many at once as gunicorn
            has threads: the floor the devshop on this machine sets
          ─ requests/s, p50, p99, ratios, Admin API calls and throttles ─ DROP DATABASE

The requests are what Shopify's proxy forwards from a shopper's browser (signed query: shop,
logged_in_customer_id, path_prefix, timestamp, signature; the shopper's IP in
X-Forwarded-For, a new one per request so the lookup rate limit sees many shoppers):
- lookup: the form of /apps/<subpath>/returns posted, ``step=lookup``, ``form_token``, the
  order number and email. Its answer is the item-selection page itself (a signed state in a
  hidden field, no cookie): rate limit, lookup query, eligibility, two Admin API calls.
- item selection: the tracking page's "Start a return" link, a GET carrying the order's signed
  link token: the same page without the lookup.
Every answer must be a 200 holding a returnable item's quantity field, or it is a failure.
Each target visits every sampled order once per run, in its own shuffled order, so no order
nears the lookup's per-order limit (5 per 15 min).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/returns.py
        [--scale 1.0] [--requests 2000] [--concurrency 16] [--sample 2000] [--keep]

DATABASE_URL names the server: the bench creates and drops ``bench_returns`` there. Redis:
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
from bench.webhooks import free_port, start_server, stop_server  # noqa: E402
from bench.wrk import process_cpu_seconds  # noqa: E402

SCRATCH_DB = "bench_returns"
# Orders the load visits, spread over every shop: 40 per shop keeps each shop's Admin API
# bucket (Standard plan: 2,000 points, 100/s) far from empty at the rates a 2-core machine
# reaches, while every order is still a different row and a different Shopify order.
SAMPLE_ORDERS = 2000
LINE_ITEMS_PER_ORDER = 2
# The "many line items" order for the query count; the devshop's catalogue has 36 variants.
MANY_LINE_ITEMS = 20
WARMUP_REQUESTS = 50
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
# What an item-selection page holds when an item can be returned: its quantity select.
RETURNABLE_MARKER = b'name="quantity-'
ITEMS_FORM_MARKER = b'name="step" value="items"'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size (1.0 = 100k orders)")
    parser.add_argument("--requests", type=int, default=2000, help="per target (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--sample", type=int, default=SAMPLE_ORDERS, help="orders on the devshop")
    parser.add_argument("--keep", action="store_true", help="keep bench_returns afterwards")
    return parser.parse_args()


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


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each server and of the scratch database's backends."""
    return process_cpu_seconds(pids, database=SCRATCH_DB)


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

    calls: list[tuple[str, int, list[int]]] = []
    by_shop: dict[tuple[str, int], list[int]] = {}
    for order_id, key in sorted(wanted.items()):
        by_shop.setdefault(key, []).append(order_id)
    for (domain, lines), ids in by_shop.items():
        for start in range(0, len(ids), DEVSHOP_ORDERS_PER_CALL):
            calls.append((domain, lines, ids[start : start + DEVSHOP_ORDERS_PER_CALL]))

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

    with ThreadPoolExecutor(max_workers=DEVSHOP_SETUP_THREADS) as pool:
        made = [item for batch in pool.map(create, calls) for item in batch]
        return dict(pool.map(ship, made))


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


def client_ip(phase: int, i: int) -> str:
    """A different shopper for every request of a phase (198.18.0.0/15: benchmarking)."""
    n = phase * 50_000 + i
    return f"198.{18 + (n >> 16) % 2}.{(n >> 8) & 255}.{n & 255}"


def page_status(response) -> int | str:
    """200 only for an item-selection page offering a returnable item."""
    if response.status_code != 200:
        return response.status_code
    if ITEMS_FORM_MARKER not in response.content:
        return "200 without the item form"
    if RETURNABLE_MARKER not in response.content:
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


def measure(
    base: str, targets: dict, args: argparse.Namespace, log_path: Path, pids: dict[str, int]
) -> tuple[dict, dict, dict]:
    """Warm up, then each target in turn: (load results by target, Admin API call counts,
    CPU seconds of each server by target, see cpu_seconds)."""
    from django.conf import settings

    from returns import shopify
    from shopapp.admin_api.client import AdminApiClient, AdminApiError

    secret = settings.SHOPIFY_API_SECRET
    n = len(targets["items"])
    # Each target visits the orders in its own shuffled order, each once per n requests.
    orders = {
        name: random.Random(seed).sample(range(n), n)
        for name, seed in (("lookup", 11), ("items", 13), ("admin", 17))
    }

    def bare(phase: int):
        def send(session, i: int) -> int:
            domain = targets["items"][orders["items"][i % n]][0]
            url = base + signed_path("/bench/bare", domain, secret)
            headers = {"X-Forwarded-For": client_ip(phase, i)}
            return session.get(url, headers=headers, timeout=REQUEST_TIMEOUT_S).status_code

        return send

    def lookup(phase: int):
        def send(session, i: int) -> int | str:
            domain, data = targets["lookups"][orders["lookup"][i % n]]
            url = base + signed_path("/proxy/returns", domain, secret)
            headers = {"X-Forwarded-For": client_ip(phase, i)}
            return page_status(
                session.post(url, data=data, headers=headers, timeout=REQUEST_TIMEOUT_S)
            )

        return send

    def item_selection(phase: int):
        def send(session, i: int) -> int | str:
            domain, path, extra = targets["items"][orders["items"][i % n]]
            url = base + signed_path(path, domain, secret, extra=extra)
            headers = {"X-Forwarded-For": client_ip(phase, i)}
            return page_status(session.get(url, headers=headers, timeout=REQUEST_TIMEOUT_S))

        return send

    def admin_api(session, i: int) -> int | str:
        # What the page asks Shopify, from a client of its own per request as the page does.
        domain, order_gid, product_ids = targets["admin_calls"][orders["admin"][i % n]]
        api = AdminApiClient(domain, targets["tokens"][domain])
        try:
            shopify.eligibility_fetch(api, order_gid=order_gid, with_products=False)
            shopify.product_variants_fetch(api, product_ids=product_ids)
        except AdminApiError as exc:
            return type(exc).__name__
        return 200

    # One page per sampled order first: every product read once (ProductInfo, 15 min), as on
    # a shop whose catalogue shoppers keep visiting.
    warm = load_run(n, args.concurrency, item_selection(0))
    if warm["failures"]:
        raise SystemExit(
            f"warm-up: {len(warm['failures'])} of {n} item-selection pages failed: "
            f"{Counter(warm['failures']).most_common(3)}"
        )
    load_run(WARMUP_REQUESTS, args.concurrency, bare(1))
    load_run(WARMUP_REQUESTS, args.concurrency, lookup(1))
    cpu: dict[str, dict[str, float]] = {}

    def run(name: str, send, concurrency: int = args.concurrency) -> dict:
        before = cpu_seconds(pids)
        result = load_run(args.requests, concurrency, send)
        after = cpu_seconds(pids)
        cpu[name] = {server: after[server] - before[server] for server in after}
        return result

    calls_before, throttled_before = devshop_counts(log_path)
    rows = {
        "bare view": run("bare view", bare(2)),
        "lookup": run("lookup", lookup(2)),
        "item selection": run("item selection", item_selection(2)),
    }
    calls_after, throttled_after = devshop_counts(log_path)
    # No more calls at once than gunicorn's threads can make: what the pages send the devshop.
    rows["Admin API alone"] = run(
        "Admin API alone", admin_api, min(args.concurrency, args.workers * args.threads)
    )
    _, throttled_alone = devshop_counts(log_path)
    calls = {
        "calls": calls_after - calls_before,
        "throttled": throttled_after - throttled_before,
        "alone_throttled": throttled_alone - throttled_after,
    }
    return rows, calls, cpu


def main() -> int:
    args = parse_args()
    admin_url, scratch_url = scratch_urls(SCRATCH_DB, script="bench/returns.py")
    recreate_database(admin_url, SCRATCH_DB)
    embedded_redis = not os.environ.get("REDIS_URL")
    shop_ids = list(range(1, SHOPS + 1))
    devshop = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-returns-") as tmp:
            run_dir = Path(tmp)
            configure_environment(run_dir, scratch_url)
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
                rows, admin, cpu = measure(
                    f"http://127.0.0.1:{port}",
                    targets,
                    args,
                    log_path,
                    {"app": server.pid, "devshop": devshop.pid},
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
            recreate_database(admin_url, SCRATCH_DB, drop_only=True)

    print(
        f"bench/returns: PostgreSQL scratch database {SCRATCH_DB}, scale {args.scale}: "
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
        f"gunicorn {args.workers} workers x {args.threads} threads on 127.0.0.1, Admin API on the "
        f"devshop (1 worker x 16 threads, same machine); {args.requests} signed app-proxy "
        f"requests per target, concurrency {args.concurrency}, {len(targets['items'])} orders "
        f"({LINE_ITEMS_PER_ORDER} line items each) sampled across {SHOPS} shops; 'Admin API "
        f"alone' at concurrency {min(args.concurrency, args.workers * args.threads)}"
    )
    print(f"{'target':<22}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    summaries = {name: summarise(result) for name, result in rows.items()}
    for name, row in summaries.items():
        print(
            f"{name:<22}{row['rps']:>12.1f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}"
            f"{row['failed']:>8}"
        )
    print(
        "CPU ms per request, app (gunicorn) / devshop / PostgreSQL: "
        + "; ".join(
            f"{name} "
            + " / ".join(
                f"{used[server] * 1000 / rows[name]['total']:.1f}"
                for server in ("app", "devshop", "PostgreSQL")
            )
            for name, used in cpu.items()
        )
    )
    bare = summaries["bare view"]
    for name in ("lookup", "item selection", "Admin API alone"):
        page = summaries[name]
        print(
            f"ratio {name}/bare: throughput {page['rps'] / bare['rps']:.2f}x, "
            f"p50 {page['p50_ms'] / bare['p50_ms']:.2f}x, "
            f"p99 {page['p99_ms'] / bare['p99_ms']:.2f}x"
        )
    pages = rows["lookup"]["total"] + rows["item selection"]["total"]
    print(
        f"Admin API calls to the devshop during lookup + item selection: {admin['calls']} "
        f"({admin['calls'] / pages:.2f} per page), throttled {admin['throttled']}; "
        f"during 'Admin API alone': throttled {admin['alone_throttled']}"
    )
    failures = Counter(f for result in rows.values() for f in result["failures"])
    if failures:
        print(f"failures: {dict(failures.most_common(5))}")
    if admin["throttled"] or admin["alone_throttled"]:
        print("NOTE: throttled Admin API calls were waited out; their pages include the wait")
    ok = few_queries == many_queries and few_status == many_status == 200 and not failures
    if not ok:
        print("FAIL: queries per page not constant, or requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

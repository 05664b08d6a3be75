"""The storefront tracking page under gunicorn on the scale dataset, against a bare view.

    bench ─ ensure_scale_db (bench/scale.py: 500 shops, 1M orders, ~2M shipments, ~10M events,
            built once and reused)   or --dataset old: the 100k-order scratch dataset
          ─ SQL queries per page, rendered and cached: an order with 1 event vs one with 400
          ─ gunicorn (bench.settings), cache on ─ wrk ─▶ /bench/bare (baseline)
                                                 ─ wrk ─▶ /proxy/track/<token>, every sampled
                                                   page rendered once before (cached)
          ─ gunicorn, cache off (BENCH_PAGE_CACHE=off) ─ wrk ─▶ /proxy/track/<token> (rendered)
          ─ requests/s, p50, p99 for each, ratios to the bare view, peak RSS of the workers

The page requests are what Shopify's proxy sends for an email link: a fresh signed query
(shop, logged_in_customer_id, path_prefix, timestamp, signature) on /proxy/track/<token>, cycling
through orders sampled across every shop, so the database works as it would.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta .venv/bin/python bench/tracking.py
        [--orders 1000000] [--shops 500] [--sample 2000] [--seconds 10] [--connections 16]
        [--json out.json] [--dataset old [--scale 1.0] [--keep]]

DATABASE_URL names the server and the database the scale dataset's name derives from
(``<db>_scale``, reused between runs); the old dataset is created and dropped as
``<db>_bench_tracking``. Redis: ``REDIS_URL`` when set, else the embedded one (the cached page
lives there).
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
from bench.scale import (  # noqa: E402
    MANY_EVENTS_PER_SHIPMENT,
    MANY_SHIPMENTS,
    ScaleParams,
    ensure_scale_db,
    scale_info,
    scale_samples,
)
from bench.webhooks import free_port, start_server, stop_server  # noqa: E402
from bench.wrk import WrkRequest, process_cpu_seconds, wrk_run  # noqa: E402

SCRATCH_DB = "bench_tracking"
# Orders the load picks from: enough to spread over every shop and defeat any warm row.
SAMPLE_ORDERS = 2000
WARMUP_SECONDS = 2
# Issue 12 item 6: a web worker's peak resident memory.
WEB_WORKER_RSS_LIMIT_MB = 120


def parse_args() -> argparse.Namespace:
    defaults = ScaleParams()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", choices=("scale", "old"), default="scale", help="scale (bench/scale.py)"
    )
    parser.add_argument("--orders", type=int, default=defaults.orders, help="scale: orders")
    parser.add_argument("--shops", type=int, default=defaults.shops, help="scale: shops")
    parser.add_argument("--skew", type=float, default=defaults.skew, help="scale: big shop share")
    parser.add_argument("--scale", type=float, default=1.0, help="old: 1.0 = 100k orders")
    parser.add_argument("--sample", type=int, default=SAMPLE_ORDERS, help="orders cycled")
    parser.add_argument("--seconds", type=float, default=10, help="of load per target (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    parser.add_argument("--keep", action="store_true", help="old: keep the scratch database")
    return parser.parse_args()


def page_path(order) -> str:
    from shopapp.storefront.links import tracking_link_token

    return f"/proxy/track/{tracking_link_token(order)}"


def queries_per_page(order_id: int) -> tuple[int, int, int]:
    """(SQL queries rendered, SQL queries cached, status) for ``order_id``'s page, served in
    this process; the view counter's row exists, as for a returning shopper."""
    from django.conf import settings
    from django.db import connection
    from django.db.models import F
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from shopapp.models import Order

    order = Order.objects.select_related("shop").get(pk=order_id)
    url = signed_path(page_path(order), order.shop.myshopify_domain, settings.SHOPIFY_API_SECRET)
    client = Client(HTTP_X_FORWARDED_FOR="203.0.113.9")
    client.get(url)
    # A write to the order (its trigger bumps the version): the next view renders afresh.
    Order.objects.filter(pk=order_id).update(version=F("version"))
    with CaptureQueriesContext(connection) as rendered:
        response = client.get(url)
    with CaptureQueriesContext(connection) as cached:
        again = client.get(url)
    status = response.status_code if response.status_code != 200 else again.status_code
    return len(rendered.captured_queries), len(cached.captured_queries), status


def signed_request(targets: list[tuple[str, str]]) -> WrkRequest:
    """GETs cycling through ``targets`` (path, shop), each signed now as Shopify's proxy signs
    (its timestamps stay fresh for the few minutes a run takes)."""
    from django.conf import settings

    secret = settings.SHOPIFY_API_SECRET
    paths = tuple(signed_path(path, domain, secret) for path, domain in targets)
    # Any answer but a 200 (a 404 for a link that did not verify, a redirect) is a failure.
    return WrkRequest("GET", paths[0], {"X-Forwarded-For": "203.0.113.9"}, paths=paths, expect=())


def measure(
    base: str,
    targets: list[tuple[str, str]],
    args,
    *,
    warmup: float = WARMUP_SECONDS,
    server=None,
    database: str = "",
    cpu: dict | None = None,
    name: str = "",
):
    """wrk's figures for ``targets``; with ``server``, also the CPU milliseconds per request
    that gunicorn and the database's backends spent (into ``cpu[name]``): what the page
    costs whatever else the shared machine runs."""
    wrk_run(base, signed_request(targets), seconds=warmup, connections=args.connections)
    before = process_cpu_seconds({"gunicorn": server.pid}, database=database) if server else {}
    result = wrk_run(
        base, signed_request(targets), seconds=args.seconds, connections=args.connections
    )
    if server is not None and cpu is not None and result.requests:
        after = process_cpu_seconds({"gunicorn": server.pid}, database=database)
        cpu[name] = {k: 1000 * (after[k] - before[k]) / result.requests for k in after}
    return result


def workers_peak_rss_mb(master_pid: int) -> list[float]:
    """Peak resident memory (VmHWM) of each of gunicorn's workers, in MB, read from /proc."""
    peaks = []
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return peaks


def dataset_scale(args) -> tuple[str, dict, list, str]:
    """(database URL, counts, sampled (order, shop domain), description) of the scale set."""
    url = ensure_scale_db(ScaleParams(orders=args.orders, shops=args.shops, skew=args.skew))
    info = scale_info(url)
    samples = scale_samples(url, args.sample)
    c = info.counts
    described = (
        f"scale dataset {url.rsplit('/', 1)[1]}: {c['shops']:,} shops, {c['orders']:,} orders, "
        f"{c['shipments']:,} shipments, {c['tracking_events']:,} tracking events (built "
        f"{info.built_at[:19]} in {info.seconds:.0f} s, reused)"
    )
    counts = {**c, "few": info.specials["one_event"], "many": info.specials["many_events"]}
    return url, counts, samples, described


def main() -> int:
    args = parse_args()
    scratch = None
    if args.dataset == "scale":
        url, counts, samples, described = dataset_scale(args)
        many_events = MANY_SHIPMENTS * MANY_EVENTS_PER_SHIPMENT
    else:
        admin_url, scratch_db, url = scratch_urls(SCRATCH_DB, script="bench/tracking.py")
        scratch = (admin_url, scratch_db)
        recreate_database(admin_url, scratch_db)
        many_events = HEAVY_EVENTS
    embedded_redis = not os.environ.get("REDIS_URL")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
            run_dir = Path(tmp)
            configure_environment(run_dir, url)
            import django
            from django.core.management import call_command

            django.setup()
            from django.conf import settings
            from django.db import connection

            from shopapp.models import Order

            if embedded_redis:
                os.environ["REDIS_URL"] = settings.REDIS_URL
            if args.dataset == "old":
                started = time.perf_counter()
                call_command("migrate", interactive=False, verbosity=0)
                migrate_s = time.perf_counter() - started
                built = build_dataset(args.scale)
                counts = {**built, "few": 1, "many": 2}
                described = (
                    f"old dataset {scratch[1]}, scale {args.scale}: {built['shops']} shops, "
                    f"{built['orders']} orders, {built['shipments']} shipments, "
                    f"{built['events']} tracking events; migrate {migrate_s:.1f} s, load "
                    f"{built['seconds']:.1f} s"
                )
                rng = random.Random(3)
                ids = rng.sample(
                    range(3, built["orders_total"] + 1),
                    min(args.sample, built["orders_total"] - 2),
                )
                orders = Order.objects.select_related("shop").filter(pk__in=ids)
                targets = [(page_path(o), o.shop.myshopify_domain) for o in orders]
            else:
                targets = [
                    (page_path(Order(pk=s.order_id, shop_id=s.shop_id)), s.shop_domain)
                    for s in samples
                ]

            few_rendered, few_cached, few_status = queries_per_page(counts["few"])
            many_rendered, many_cached, many_status = queries_per_page(counts["many"])
            bare_targets = [("/bench/bare", domain) for _, domain in targets]
            connection.close()

            port = free_port()
            base = f"http://127.0.0.1:{port}"
            # Cache off first: the rendered page, and how long a pass over the sample takes.
            os.environ["BENCH_PAGE_CACHE"] = "off"
            server = start_server(port, args, run_dir / "gunicorn-nocache.log")
            database = url.rsplit("/", 1)[1]
            cpu: dict[str, dict[str, float]] = {}
            try:
                rendered = measure(
                    base,
                    targets,
                    args,
                    server=server,
                    database=database,
                    cpu=cpu,
                    name="tracking page (rendered)",
                )
                rss_rendered = workers_peak_rss_mb(server.pid)
            finally:
                stop_server(server)
            os.environ.pop("BENCH_PAGE_CACHE")
            server = start_server(port, args, run_dir / "gunicorn.log")
            try:
                bare = measure(
                    base,
                    bare_targets,
                    args,
                    server=server,
                    database=database,
                    cpu=cpu,
                    name="bare view",
                )
                # Every sampled page rendered once (a pass at the rendered rate, and a half).
                warm = min(120.0, 1.5 * len(targets) / max(rendered.rps, 1.0) + WARMUP_SECONDS)
                cached = measure(
                    base,
                    targets,
                    args,
                    warmup=warm,
                    server=server,
                    database=database,
                    cpu=cpu,
                    name="tracking page (cached)",
                )
                rss_cached = workers_peak_rss_mb(server.pid)
            finally:
                stop_server(server)
            connection.close()
            if embedded_redis:
                import redis

                with contextlib.suppress(redis.RedisError):
                    redis.Redis.from_url(settings.REDIS_URL).shutdown(nosave=True)
    finally:
        if scratch is not None and not args.keep:
            recreate_database(scratch[0], scratch[1], drop_only=True)

    print(f"bench/tracking: {described}")
    constant = few_rendered == many_rendered and few_cached == many_cached
    print(
        f"SQL queries per tracking page: {few_rendered} rendered / {few_cached} cached for an "
        f"order with 1 event, {many_rendered} / {many_cached} for one with {many_events} "
        f"events ({'constant' if constant else 'NOT CONSTANT'})"
    )
    shops = counts.get("shops", SHOPS)
    print(
        f"wrk -t2 -c{args.connections} -d{args.seconds:g}s against gunicorn {args.workers} "
        f"workers x {args.threads} threads on 127.0.0.1; signed app-proxy GETs cycling through "
        f"{len(targets)} orders sampled across {shops} shops"
    )
    print(
        f"{'target':<28}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}{'x bare':>8}"
        f"{'CPU ms/req: web':>17}{'PostgreSQL':>12}"
    )
    rows = (
        ("bare view", bare),
        ("tracking page (cached)", cached),
        ("tracking page (rendered)", rendered),
    )
    for name, row in rows:
        print(
            f"{name:<28}{row.rps:>12.1f}{row.p50_ms:>10.2f}{row.p99_ms:>10.2f}{row.failed:>8}"
            f"{row.rps / bare.rps:>8.2f}"
            f"{cpu.get(name, {}).get('gunicorn', float('nan')):>17.2f}"
            f"{cpu.get(name, {}).get('PostgreSQL', float('nan')):>12.2f}"
        )
    peak = max([*rss_cached, *rss_rendered], default=float("nan"))
    print(
        "peak RSS of the gunicorn workers: "
        f"{', '.join(f'{mb:.0f}' for mb in rss_cached)} MB (cache on), "
        f"{', '.join(f'{mb:.0f}' for mb in rss_rendered)} MB (cache off); "
        f"limit {WEB_WORKER_RSS_LIMIT_MB} MB"
    )
    ok = (
        constant
        and few_status == many_status == 200
        and not (bare.failed or cached.failed or rendered.failed)
    )
    figures_write(
        args.json,
        bench="tracking",
        unit="req/s",
        setup=(
            f"{described}; {len(targets)} sampled orders; wrk -t2 -c{args.connections} "
            f"-d{args.seconds:g}s; gunicorn {args.workers}x{args.threads}"
        ),
        rows=[
            wrk_row("bare view", bare, baseline=True),
            wrk_row("tracking page (cached)", cached),
            wrk_row("tracking page (rendered)", rendered),
        ],
        ok=ok,
        notes=[
            f"queries per page: {few_rendered} rendered, {few_cached} cached, whatever the "
            f"number of shipments and events ({many_events} checked)",
            f"peak RSS per web worker: {peak:.0f} MB (limit {WEB_WORKER_RSS_LIMIT_MB} MB)",
            "CPU ms per request (gunicorn / PostgreSQL): "
            + "; ".join(
                f"{name} {v.get('gunicorn', 0):.2f} / {v.get('PostgreSQL', 0):.2f}"
                for name, v in cpu.items()
            ),
        ],
    )
    if not ok:
        print("FAIL: queries per page not constant, or requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

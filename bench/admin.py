"""The embedded admin's order search and an order's page (its timeline) on the scale dataset,
under gunicorn, loaded by wrk, against a bare view in the same run.

    bench ─ ensure_scale_db (bench/scale.py: 1,000,000 orders over 500 shops, reused)
          ─ the sampled shops get a usable offline token (as an installed shop has)
          ─ SQL queries per request: search for a name, an email, a tracking number, a return
            name; the page of an order with 1 event and of one with 5 × 80 (must be equal)
          ─ gunicorn (bench.settings) ─ wrk ─▶ /bench/bare                       (baseline)
                                          ─▶ /app/orders?q=<name|email|tracking number>
                                          ─▶ /app/orders/<id>           (the support page)
            each for orders sampled across every shop, then in the big shop (--skew)
          ─ requests/s, p50, p99 per target and the ratio to the bare view; and each target
            served one request at a time in-process (p50, p99: the server's own work)

Requests are document loads as the Shopify admin makes them: ``shop``, ``host`` and a session
token signed with the app's secret (``id_token``; minted for the length of the run), so every
request runs the session-token guard, the shop lookup and the page, nothing cached.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wte .venv/bin/python bench/admin.py
        [--orders 1000000] [--shops N] [--skew 0.2] [--name NAME] [--seconds 10] [--connections 16]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dataset import configure_environment  # noqa: E402
from bench.report import figures_write, wrk_row  # noqa: E402
from bench.scale import ScaleParams, ensure_scale_db, scale_info, scale_samples  # noqa: E402
from bench.webhooks import free_port, start_server, stop_server  # noqa: E402
from bench.wrk import WrkRequest, wrk_run  # noqa: E402

SAMPLES = 300
WARMUP_SECONDS = 2
HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYmVuY2g"  # base64 of admin.shopify.com/store/bench
# Session tokens live a minute in the admin; these must outlive the run (the guard checks exp).
TOKEN_LIFETIME_S = 3600
P99_TARGET_MS = 100


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=ScaleParams().orders)
    parser.add_argument("--skew", type=float, default=0.2, help="the big shop's share (0.2)")
    parser.add_argument(
        "--shops", type=int, default=None, help="shops (500, or one per 100 orders if fewer)"
    )
    # Derived from the parameters by default (bench/scale.py): a fixed name would make a run
    # with other parameters rebuild, in place, the dataset another bench reuses.
    parser.add_argument(
        "--name",
        default=None,
        help="scale database suffix: <db>_<name> (scale for the default parameters, "
        "scale_<digest> for others)",
    )
    parser.add_argument("--seconds", type=float, default=10, help="of load per target (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    return parser.parse_args()


def shops_installed(shop_ids: set[int]) -> None:
    """Give the sampled shops what an installed shop has: a usable offline token, so the
    guard runs no token exchange (the dataset stores no tokens)."""
    from datetime import timedelta

    from django.utils import timezone

    from shopapp.auth.tokens import token_encrypt
    from shopapp.models import Shop

    Shop.objects.filter(pk__in=shop_ids).update(
        is_active=True,
        needs_reauth=False,
        access_token_encrypted=token_encrypt(plain="shpat_bench"),
        access_token_expires_at=timezone.now() + timedelta(days=1),
    )


def admin_path(path: str, domain: str, **params: str) -> str:
    from django.conf import settings

    from devshop.session_tokens import session_token_mint

    token = session_token_mint(
        shop_domain=domain,
        user_id=9001,
        lifetime_seconds=TOKEN_LIFETIME_S,
        secret=settings.SHOPIFY_API_SECRET,
        audience=settings.SHOPIFY_API_KEY,
    )
    return f"{path}?{urlencode({**params, 'shop': domain, 'host': HOST, 'id_token': token})}"


def queries(path: str) -> tuple[int, int]:
    """(SQL queries, status) of one admin request served in this process (after a warm-up)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.get(path)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    return len(captured.captured_queries), response.status_code


def service_times(paths: list[str]) -> tuple[float, float]:
    """(p50, p99) ms of ``paths`` served one after another in this process: the server's own
    work per request (guard, queries, template), without wrk's queueing on a busy machine."""
    import time

    from django.test import Client

    client = Client()
    client.get(paths[0])
    times = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def measure(base: str, paths: list[str], expect: tuple[str, ...] | None, args) -> object:
    request = WrkRequest("GET", paths[0], paths=tuple(paths), expect=expect)
    wrk_run(base, request, seconds=WARMUP_SECONDS, connections=args.connections)
    return wrk_run(base, request, seconds=args.seconds, connections=args.connections)


def main() -> int:
    args = parse_args()
    shops = args.shops or min(ScaleParams().shops, max(1, args.orders // 100))
    url = ensure_scale_db(
        ScaleParams(orders=args.orders, shops=shops, skew=args.skew), name=args.name
    )
    info = scale_info(url)
    spread = scale_samples(url, SAMPLES, seed=11)
    big_id = int(info.big_shop.get("id", 1))
    # A small copy's first shop may hold fewer orders than SAMPLES (skew 0): half of them.
    big_count = min(SAMPLES, max(1, int(info.big_shop.get("orders", SAMPLES)) // 2))
    big = scale_samples(url, big_count, seed=12, shop_id=big_id)
    embedded_redis = not os.environ.get("REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp:
        run_dir = Path(tmp)
        configure_environment(run_dir, url)
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        from returns.models import ReturnRequest
        from shopapp.models import Order

        if embedded_redis:
            os.environ["REDIS_URL"] = settings.REDIS_URL
        shops_installed({s.shop_id for s in spread + big})
        shopify_ids = dict(
            Order.objects.filter(pk__in=[s.order_id for s in spread + big]).values_list(
                "pk", "shopify_id"
            )
        )
        a_return = (
            ReturnRequest.objects.exclude(name="").select_related("shop").order_by("id").first()
        )
        specials = Order.objects.filter(pk__in=info.specials.values()).select_related("shop")
        by_pk = {o.pk: o for o in specials}
        one, many = by_pk[info.specials["one_event"]], by_pk[info.specials["many_events"]]
        shops_installed({one.shop_id, many.shop_id} | ({a_return.shop_id} if a_return else set()))

        def searches(samples):
            paths = []
            for i, s in enumerate(samples):
                query = (s.order_name, s.email, s.tracking_number or s.order_name)[i % 3]
                paths.append(admin_path("/app/orders", s.shop_domain, q=query))
            return paths

        def pages(samples):
            return [
                admin_path(f"/app/orders/{shopify_ids[s.order_id]}", s.shop_domain) for s in samples
            ]

        first = spread[0]
        counted = {
            "search: order name": queries(
                admin_path("/app/orders", first.shop_domain, q=first.order_name)
            ),
            "search: email": queries(admin_path("/app/orders", first.shop_domain, q=first.email)),
            "search: tracking number": queries(
                admin_path("/app/orders", first.shop_domain, q=first.tracking_number or "x")
            ),
            "order page: 1 event": queries(
                admin_path(f"/app/orders/{one.shopify_id}", one.shop.myshopify_domain)
            ),
            "order page: many events": queries(
                admin_path(f"/app/orders/{many.shopify_id}", many.shop.myshopify_domain)
            ),
        }
        if a_return is not None:
            counted["search: return name"] = queries(
                admin_path("/app/orders", a_return.shop.myshopify_domain, q=a_return.name)
            )
        served = {
            "search, across shops": service_times(searches(spread)),
            "order page, across shops": service_times(pages(spread)),
            "search, big shop": service_times(searches(big)),
            "order page, big shop": service_times(pages(big)),
        }
        connection.close()

        port = free_port()
        server = start_server(port, args, run_dir / "gunicorn.log")
        base = f"http://127.0.0.1:{port}"
        try:
            bare = measure(base, [f"/bench/bare?shop={s.shop_domain}" for s in spread], None, args)
            results = {
                "search, across shops": measure(base, searches(spread), ("order-link",), args),
                "order page, across shops": measure(base, pages(spread), ('id="timeline"',), args),
                "search, big shop": measure(base, searches(big), ("order-link",), args),
                "order page, big shop": measure(base, pages(big), ('id="timeline"',), args),
            }
        finally:
            stop_server(server)
        if embedded_redis:
            import redis

            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(settings.REDIS_URL).shutdown(nosave=True)

    counts = info.counts
    print(
        f"bench/admin: scale dataset {url.rsplit('/', 1)[1]}: {counts['orders']:,} orders, "
        f"{counts['shipments']:,} shipments, {counts['tracking_events']:,} tracking events over "
        f"{info.params['shops']} shops; big shop {big_id} with "
        f"{info.big_shop.get('orders', 0):,} orders"
    )
    print("SQL queries per request:")
    for name, (count, status) in counted.items():
        print(f"  {name:<28}{count:>4}  (HTTP {status})")
    pages_equal = counted["order page: 1 event"][0] == counted["order page: many events"][0]
    print(f"  order page constant: {'yes' if pages_equal else 'NO'}")
    print(
        f"wrk -t2 -c{args.connections} -d{args.seconds:g}s against gunicorn {args.workers} "
        f"workers x {args.threads} threads on 127.0.0.1; document loads with a session token, "
        f"cycling through {SAMPLES} orders (searches alternate name, email, tracking number)"
    )
    print(f"{'target':<26}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'x bare':>8}{'failed':>8}")
    print(f"{'bare view':<26}{bare.rps:>12.1f}{bare.p50_ms:>10.2f}{bare.p99_ms:>10.2f}{1:>8.2f}")
    for name, row in results.items():
        print(
            f"{name:<26}{row.rps:>12.1f}{row.p50_ms:>10.2f}{row.p99_ms:>10.2f}"
            f"{row.rps / bare.rps:>8.2f}{row.failed:>8}"
        )
    ok = (
        pages_equal
        and all(status == 200 for _c, status in counted.values())
        and not bare.failed
        and not any(row.failed for row in results.values())
    )
    print(f"served one at a time in-process ({SAMPLES} requests each): p50 / p99 ms")
    for name, (p50, p99) in served.items():
        print(f"  {name:<26}{p50:>8.1f}{p99:>8.1f}")
    slow = [name for name, row in results.items() if row.p99_ms > P99_TARGET_MS]
    print(
        f"p99 target {P99_TARGET_MS} ms: "
        + ("met by every target" if not slow else f"missed by {', '.join(slow)}")
    )
    figures_write(
        args.json,
        bench="admin",
        unit="req/s",
        setup=(
            f"scale dataset ({counts['orders']} orders, skew {args.skew}); {SAMPLES} sampled "
            f"orders; wrk -t2 -c{args.connections} -d{args.seconds:g}s; "
            f"gunicorn {args.workers}x{args.threads}"
        ),
        rows=[wrk_row("bare view", bare, baseline=True)]
        + [wrk_row(name, row) for name, row in results.items()],
        ok=ok,
        notes=[f"queries {name}: {count}" for name, (count, _s) in counted.items()]
        + [
            f"in-process {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            for name, (p50, p99) in served.items()
        ],
    )
    if not ok:
        print("FAIL: order page queries not constant, or requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

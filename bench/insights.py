"""Insights (the admin's home) on the scale dataset: how long the page takes for a shop with a
million orders, against the same page for a small shop of the same database (the baseline,
measured in the same run), and what keeping the rollup costs.

    ensure_scale_db(--orders … --skew …) ─ the big shop (skew: its share of all orders)
    rollup: the shop's first count (its whole history), the 10-minute round (2 days), the
            hourly round (ROLLUP_WINDOW_DAYS)
    page:   GET /app/?period=… through Django's test client (session token, middleware,
            template, SVG charts), for each period preset and a two-year custom range;
            median and 90th percentile of --renders renders after two warm-ups, queries counted

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wtf .venv/bin/python bench/insights.py
        [--orders 1100000 --shops 50 --skew 0.91 --events-per-shipment 1] [--renders 15]
        [--json out.json]

The defaults give the first shop 1,001,274 of 1.1M orders (tracking events are not read by
insights, so one per shipment keeps the build short). The build is reused while its
parameters match (bench/scale.py); this bench writes the two shops' rollup rows and a token
on them, nothing else.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.dataset import configure_environment  # noqa: E402
from bench.scale import ScaleParams, ensure_scale_db, scale_info  # noqa: E402

PERIODS = [
    ("last 30 days", {"period": "30d"}),
    ("last 90 days", {"period": "90d"}),
    ("last 365 days", {"period": "365d"}),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_100_000)
    parser.add_argument("--shops", type=int, default=50)
    parser.add_argument("--skew", type=float, default=0.91)
    parser.add_argument("--events-per-shipment", type=float, default=1.0)
    # Derived from the parameters by default (bench/scale.py): a fixed name would make this
    # skewed build replace, in place, the dataset the other benches reuse.
    parser.add_argument("--name", default=None, help="scale database suffix (derived)")
    parser.add_argument("--renders", type=int, default=15)
    parser.add_argument(
        "--no-rollup",
        action="store_true",
        help="keep the rollup rows of an earlier run and time only the page",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    return parser.parse_args(argv)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = ScaleParams(
        orders=args.orders,
        shops=args.shops,
        skew=args.skew,
        events_per_shipment=args.events_per_shipment,
    )
    url = ensure_scale_db(params, name=args.name)
    with tempfile.TemporaryDirectory(prefix="bench-insights-") as tmp:
        configure_environment(Path(tmp), url)
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
        import django

        django.setup()
        return _run(url, args)


def _run(url: str, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from django.utils import timezone

    from insights.models import ShopDay
    from shopapp.auth.tokens import token_encrypt
    from shopapp.models import Order, Shop

    info = scale_info(url)
    big = Shop.objects.get(pk=info.big_shop["id"])
    # The baseline: the smallest shop of the same database, same page, same run.
    small = min(
        Shop.objects.exclude(pk=big.pk)[:20],
        key=lambda s: Order.objects.filter(shop=s).count(),
    )
    sizes = {s.pk: Order.objects.filter(shop=s).count() for s in (big, small)}
    for shop in (big, small):
        # A usable offline token: the session-token guard then runs no token exchange.
        Shop.objects.filter(pk=shop.pk).update(
            is_active=True,
            needs_reauth=False,
            access_token_encrypted=token_encrypt(plain="shpat_bench"),
            access_token_expires_at=timezone.now() + timedelta(days=1),
        )
        if not args.no_rollup:
            ShopDay.objects.filter(shop=shop).delete()

    print(
        f"bench/insights: {url.rsplit('/', 1)[-1]}: big shop {big.myshopify_domain}"
        f" ({sizes[big.pk]:,} orders), baseline {small.myshopify_domain}"
        f" ({sizes[small.pk]:,} orders)"
    )
    rollup = _rollup(big, small, sizes) if not args.no_rollup else {}
    pages = _page(big, small, sizes, args)
    _figures_write(args, url, big, small, sizes, rollup, pages)
    return 0


def _figures_write(args, url, big, small, sizes, rollup: dict, pages: dict) -> None:
    from bench.report import figure, figures_write

    figures = [
        figure(
            f"insights page p90, {label}, shop of {sizes[big.pk]:,} orders",
            b[1] * 1000,
            "ms",
            against=f"shop of {sizes[small.pk]:,} orders",
            baseline=s[1] * 1000,
        )
        for label, (b, s, _queries) in pages.items()
    ]
    figures.extend(
        figure(f"insights rollup, {label}, shop of {sizes[big.pk]:,} orders", seconds, "s")
        for label, seconds in rollup.items()
    )
    figures_write(
        args.json,
        bench="insights",
        unit="",
        setup=(
            f"{url.rsplit('/', 1)[-1]}: the admin's home through Django's test client, "
            f"{args.renders} renders each after 2 warm-ups"
        ),
        rows=[],
        ok=True,
        notes=[
            f"{label}: median {b[0] * 1000:.0f} ms vs {s[0] * 1000:.0f} ms, {queries} queries"
            for label, (b, s, queries) in pages.items()
        ],
        figures=figures,
    )


def _rollup(big, small, sizes) -> dict[str, float]:
    from insights.services import ROLLUP_WINDOW_DAYS, shop_days_refresh

    seconds: dict[str, float] = {}
    print("\nrollup (insights.services.shop_days_refresh):")
    for shop in (big, small):
        started = time.perf_counter()
        rows = shop_days_refresh(shop=shop)
        if shop == big:
            seconds["first count"] = time.perf_counter() - started
        print(
            f"  first count, whole history, {sizes[shop.pk]:>9,} orders:"
            f" {time.perf_counter() - started:7.1f} s ({rows} day rows)"
        )
    for days, label in ((2, "10-minute round (2 days)"), (ROLLUP_WINDOW_DAYS, "hourly round")):
        started = time.perf_counter()
        shop_days_refresh(shop=big, days=days)
        seconds[label] = time.perf_counter() - started
        print(f"  {label:<28} big shop: {seconds[label]:7.1f} s")
    return seconds


def _page(big, small, sizes, args) -> dict:
    from datetime import timedelta

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from devshop.session_tokens import session_token_mint
    from shopapp.auth.selectors import shop_zone
    from shopapp.models import Shop

    client = Client()
    host = settings.ALLOWED_HOSTS[0] if settings.ALLOWED_HOSTS else "127.0.0.1"
    today = timezone.localdate(timezone=shop_zone(big))
    periods = [
        *PERIODS,
        (
            "custom, two years",
            {
                "period": "custom",
                "start": (today - timedelta(days=730)).isoformat(),
                "end": today.isoformat(),
            },
        ),
    ]

    def render(shop: Shop, query: dict) -> tuple[float, int]:
        token = session_token_mint(
            shop_domain=shop.myshopify_domain,
            secret=settings.SHOPIFY_API_SECRET,
            audience=settings.SHOPIFY_API_KEY,
        )
        params = {"shop": shop.myshopify_domain, "id_token": token, **query}
        started = time.perf_counter()
        response = client.get("/app/", params, HTTP_HOST=host)
        elapsed = time.perf_counter() - started
        if response.status_code != 200 or b"<h1>Insights</h1>" not in response.content:
            raise SystemExit(f"bench/insights: the page answered {response.status_code}")
        return elapsed, len(response.content)

    print(f"\npage GET /app/ ({args.renders} renders each after 2 warm-ups; median, p90):")
    print(f"  {'period':<20} {'big shop':>22} {'baseline':>22} {'ratio':>7} {'queries':>8}")
    worst = 0.0
    pages = {}
    for label, query in periods:
        figures = {}
        for shop in (big, small):
            for _ in range(2):
                render(shop, query)
            times = sorted(render(shop, query)[0] for _ in range(args.renders))
            p90 = times[max(0, int(round(0.9 * len(times))) - 1)]
            figures[shop.pk] = (statistics.median(times), p90)
        with CaptureQueriesContext(connection) as queries:
            render(big, query)
        b, s = figures[big.pk], figures[small.pk]
        pages[label] = (b, s, len(queries))
        worst = max(worst, b[1])
        print(
            f"  {label:<20} {_ms(b[0]):>10} {_ms(b[1]):>10}  {_ms(s[0]):>10} {_ms(s[1]):>10}"
            f" {b[0] / s[0]:6.2f}× {len(queries):>8}"
        )
    print(f"\nworst p90 for the {sizes[big.pk]:,}-order shop: {_ms(worst)}")
    return pages


if __name__ == "__main__":
    sys.exit(main())

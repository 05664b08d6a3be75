"""Delivery estimates (tracking.estimates): how often a parcel arrives within the predicted
range, on a generated history with known spreads, and what a prediction costs.

    scratch database ─ migrate ─ one shop, 200 days of deliveries (GROUPS: carrier, country,
      region, median transit days, spread; some groups deliberately thin)
    hold out the last --holdout-days of deliveries; delivery_stats_rebuild at the cut-off
      (the real rollup, on the deliveries before it); each held-out parcel predicted as on the
      day it shipped, from the real selector and chooser
    prints: share delivered within the range (the 10th-90th percentile: ~80% expected), mean
      absolute error of the likely day against a baseline (the shop's overall median, no
      grouping), parcels with no estimate for lack of history, and a prediction's time
      against a baseline (one indexed Shipment read) measured in the same run

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wtc .venv/bin/python bench/estimates.py
        [--parcels 20000 --holdout-days 30 --seed 7] [--json out.json]

Why generated and not the demo's: the devshop's seed makes a few dozen backdated orders
(fewer than MIN_DELIVERIES in any group) and its tick moves parcels in seconds, not days, so
its history has no transit times worth predicting. Here every group's true spread is known.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.dataset import configure_environment, recreate_database, scratch_urls  # noqa: E402

SCRATCH_DB = "estimates"
HISTORY_DAYS = 200
# (carrier, country, region code, region name, median days, log-normal sigma, share of parcels)
GROUPS = [
    ("Canada Post", "CA", "ON", "Ontario", 3.0, 0.25, 0.20),
    ("Canada Post", "CA", "QC", "Québec", 4.0, 0.30, 0.10),
    ("Canada Post", "CA", "BC", "British Columbia", 6.0, 0.30, 0.06),
    # Thin: Nunavut falls back to Canada Post's whole country.
    ("Canada Post", "CA", "NU", "Nunavut", 12.0, 0.35, 0.0008),
    # Thin carrier: falls back to every carrier to Ontario.
    ("Purolator", "CA", "ON", "Ontario", 2.0, 0.20, 0.0008),
    ("UPS", "US", "NY", "New York", 2.0, 0.20, 0.15),
    ("UPS", "US", "CA", "California", 4.0, 0.25, 0.15),
    ("UPS", "US", "TX", "Texas", 3.0, 0.25, 0.10),
    ("DHL Express", "DE", "", "", 2.0, 0.15, 0.10),
    ("Colissimo", "FR", "", "", 3.0, 0.30, 0.08),
    # Too few everywhere: no estimate.
    ("Royal Mail", "GB", "", "", 3.0, 0.30, 0.0004),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, default=20_000)
    parser.add_argument("--holdout-days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timings", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    return parser.parse_args(argv)


def build_history(shop, *, parcels: int, now: datetime, rng: random.Random) -> int:
    from shopapp.models import Order
    from tracking.models import Shipment, Stage

    weights = [g[6] for g in GROUPS]
    order = Order.objects.create(shop=shop, shopify_id=1, name="#1")
    rows = []
    for i in range(parcels):
        carrier, country, region, region_name, median, sigma, _ = rng.choices(GROUPS, weights)[0]
        shipped = now - timedelta(days=rng.uniform(0, HISTORY_DAYS))
        transit = rng.lognormvariate(math.log(median), sigma)
        arrived = shipped + timedelta(days=transit)
        if arrived >= now:
            continue
        rows.append(
            Shipment(
                shop=shop,
                order=order,
                fulfillment_id=10_000 + i,
                stage=Stage.DELIVERED,
                tracking_company=carrier,
                destination_country_code=country,
                destination_province_code=region,
                destination_province=region_name,
                shopify_created_at=shipped,
                delivered_at=arrived,
            )
        )
    Shipment.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _median_s(fn, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(args: argparse.Namespace) -> int:
    from django.utils import timezone

    from shopapp.models import Shop
    from tracking.estimates import (
        delivery_estimate_choose,
        delivery_stats_for,
        delivery_stats_rebuild,
    )
    from tracking.models import Shipment, Stage

    rng = random.Random(args.seed)
    now = timezone.now()
    cutoff = now - timedelta(days=args.holdout_days)
    shop = Shop.objects.create(myshopify_domain="estimates.myshopify.com", timezone="UTC")
    built = build_history(shop, parcels=args.parcels, now=now, rng=rng)

    started = time.perf_counter()
    groups = delivery_stats_rebuild(shop=shop, now=cutoff)
    rebuild_s = time.perf_counter() - started
    trained = Shipment.objects.filter(
        shop=shop, delivered_at__lt=cutoff, delivered_at__gte=cutoff - timedelta(days=180)
    ).count()

    # The baseline: the shop's overall median transit, whatever the carrier or destination.
    overall = statistics.median(
        (d - s).total_seconds() / 86400
        for s, d in Shipment.objects.filter(shop=shop, delivered_at__lt=cutoff).values_list(
            "shopify_created_at", "delivered_at"
        )
    )
    held_out = list(Shipment.objects.filter(shop=shop, delivered_at__gte=cutoff))
    stats = delivery_stats_for(shop=shop, shipments=held_out)
    within = errors = baseline_errors = 0
    predicted = none = 0
    by_basis: dict[str, int] = {}
    for parcel in held_out:
        actual = parcel.delivered_at.date()
        shipped = parcel.shopify_created_at
        # As on the day it shipped: in transit, no delivery yet.
        parcel.delivered_at, parcel.stage = None, Stage.IN_TRANSIT
        estimate = delivery_estimate_choose(
            shop=shop, shipment=parcel, stats=stats, today=shipped.date()
        )
        if estimate is None:
            none += 1
            continue
        predicted += 1
        within += estimate.earliest <= actual <= estimate.latest
        errors += abs((estimate.likely - actual).days)
        baseline_day = (shipped + timedelta(days=overall)).date()
        baseline_errors += abs((baseline_day - actual).days)
        level = ("carrier" if estimate.carrier else "all carriers") + (
            " + region" if estimate.province_code else " + country"
        )
        by_basis[level] = by_basis.get(level, 0) + 1

    sample = held_out[0]
    predict_s = _median_s(
        lambda: delivery_estimate_choose(
            shop=shop,
            shipment=sample,
            stats=delivery_stats_for(shop=shop, shipments=[sample]),
            today=sample.shopify_created_at.date(),
        ),
        args.timings,
    )
    baseline_s = _median_s(lambda: Shipment.objects.filter(pk=sample.pk).first(), args.timings)

    mae = errors / predicted if predicted else float("nan")
    baseline_mae = baseline_errors / predicted if predicted else float("nan")
    print(
        f"history: {built} deliveries over {HISTORY_DAYS} days in {len(GROUPS)} carrier/"
        f"destination groups (seed {args.seed}); trained on {trained} delivered before the "
        f"cut-off ({args.holdout_days} days ago), {groups} groups with enough history"
    )
    print(f"held out: {len(held_out)} parcels delivered after the cut-off")
    print(
        f"  within the predicted range (10th-90th percentile): {within}/{predicted} = "
        f"{within / predicted:.1%}"
        if predicted
        else "  no prediction made"
    )
    print(
        f"  mean absolute error of the likely day (median): {mae:.2f} days; baseline (the "
        f"shop's overall median {overall:.1f} days, no grouping) {baseline_mae:.2f} days: "
        f"ratio {mae / baseline_mae:.2f}x"
    )
    print(f"  no estimate for lack of history: {none} ({none / len(held_out):.2%})")
    print(
        "  estimates by group level: " + ", ".join(f"{k} {v}" for k, v in sorted(by_basis.items()))
    )
    print(
        f"cost: rebuild {rebuild_s * 1000:.0f} ms for {trained} deliveries; one prediction "
        f"(one query + choice) {predict_s * 1e6:.0f} us vs one Shipment read by pk "
        f"{baseline_s * 1e6:.0f} us: ratio {predict_s / baseline_s:.2f}x (same run)"
    )
    from bench.report import figure, figures_write

    share = within / predicted if predicted else float("nan")
    figures_write(
        args.json,
        bench="estimates",
        unit="",
        setup=(
            f"{built} generated deliveries over {HISTORY_DAYS} days in {len(GROUPS)} groups "
            f"(seed {args.seed}); the last {args.holdout_days} days held out "
            f"({len(held_out)} parcels), each predicted as on the day it shipped"
        ),
        rows=[],
        ok=bool(predicted),
        notes=[
            "estimates by group level: "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_basis.items())),
            f"daily rebuild {rebuild_s * 1000:.0f} ms for {trained} deliveries",
        ],
        figures=[
            # The range runs from the 10th to the 90th percentile, in whole days.
            figure(
                "estimates: delivered within the predicted range",
                share * 100,
                "%",
                goal="≥ 80%",
                met=share >= 0.8,
            ),
            figure(
                "estimates: mean absolute error of the likely day",
                mae,
                "days",
                digits=2,
                against="the shop's overall median",
                baseline=baseline_mae,
                goal="< baseline",
                met=mae < baseline_mae,
            ),
            figure(
                "estimates: parcels with no estimate (too little history)",
                none / len(held_out) * 100,
                "%",
                digits=2,
            ),
            figure(
                "estimates: one prediction",
                predict_s * 1e6,
                "µs",
                digits=0,
                against="one Shipment read by pk",
                baseline=baseline_s * 1e6,
            ),
        ],
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url, scratch_db, url = scratch_urls(SCRATCH_DB, script="bench/estimates.py")
    recreate_database(admin_url, scratch_db)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-estimates-") as tmp:
            configure_environment(Path(tmp), url)
            os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", interactive=False, verbosity=0)
            return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(admin_url, scratch_db, drop_only=True)


if __name__ == "__main__":
    raise SystemExit(main())

"""The scale dataset: a big merchant base in PostgreSQL, loaded by COPY, built once and reused.

    ensure_scale_db(ScaleParams()) ─▶ postgres://…/<db>_scale   (DATABASE_URL names <db>)
      ─ marker row matches the generator's parameters and version? ─ yes: migrate, reuse
      ─ no: DROP/CREATE the database ─ migrate ─ build_scale_dataset ─ VACUUM ANALYZE ─ marker

    defaults: 500 shops, 1,000,000 orders (~2.0M line items), ~2,000,000 shipments (+ their line
    items), ~10,000,000 tracking events, ~4% of delivered orders with a return, one message
    per shipment, the orders' timelines (order, shipment and message events)

The spread is what a big install base looks like: orders spread over 180 days up to the build,
0–4 shipments each, carriers and destination countries weighted, the stage following the
parcel's age (recent ones in flight, old ones delivered, a few delayed or in trouble),
customers with repeat orders. ``--skew 0.3`` gives the first shop 30% of all orders (an admin
benchmark's big shop); the rest are spread over the other shops with a long tail.

Two orders are fixed for query-count checks (``ScaleInfo.specials``): ``one_event`` has one
shipment with one event, ``many_events`` five shipments with 80 events each.

The build is also a function (``build_scale_dataset(params)``) that runs on the current Django
connection, so a test builds a small copy in its test database with the same code.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta .venv/bin/python bench/scale.py
        [--orders 1000000] [--shops 500] [--skew 0] [--name NAME] [--rebuild] [--json out.json]

The database is ``<db>_scale`` for the default parameters, ``<db>_scale_<digest>`` for others
(a small or skewed copy never replaces the big one); ``--name`` picks another.

Benchmarks import ``ensure_scale_db`` (returns the database URL; builds only when needed),
``scale_info`` (the marker: parameters, counts, special orders, the big shop) and
``scale_samples`` (random orders with their shop, name, email, zip and a tracking number, for
wrk scripts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.dataset import (  # noqa: E402
    _column_defaults,
    configure_environment,
    recreate_database,
    scratch_urls,
)

# Bump when the generator's output changes: every reused database is rebuilt.
GENERATOR_VERSION = 2
MARKER_TABLE = "bench_scale_marker"
DEFAULT_NAME = "scale"

CARRIERS = [  # (Shopify's tracking_company, weight, tracking URL prefix)
    ("UPS", 25, "https://www.ups.com/track?tracknum="),
    ("USPS", 25, "https://tools.usps.com/go/TrackConfirmAction?tLabels="),
    ("FedEx", 15, "https://www.fedex.com/fedextrack/?trknbr="),
    ("DHL Express", 10, "https://www.dhl.com/en/express/tracking.html?AWB="),
    ("Royal Mail", 8, "https://www.royalmail.com/track-your-item#/tracking-results/"),
    (
        "Canada Post",
        7,
        "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=",
    ),
    ("La Poste", 5, "https://www.laposte.fr/outils/suivre-vos-envois?code="),
    ("DPD", 5, "https://tracking.dpd.de/status/en_US/parcel/"),
]
COUNTRIES = [  # (code, weight, cities, country name)
    ("US", 45, ["New York", "Austin", "Seattle", "Chicago", "Denver"], "United States"),
    ("CA", 10, ["Toronto", "Montreal", "Vancouver"], "Canada"),
    ("GB", 12, ["London", "Leeds", "Manchester"], "United Kingdom"),
    ("FR", 8, ["Paris", "Lyon", "Marseille"], "France"),
    ("DE", 8, ["Berlin", "Hamburg", "Munich"], "Germany"),
    ("AU", 7, ["Sydney", "Melbourne"], "Australia"),
    ("ES", 5, ["Madrid", "Barcelona"], "Spain"),
    ("NL", 5, ["Amsterdam", "Rotterdam"], "Netherlands"),
]
FIRST_NAMES = ["Ada", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon"]
LAST_NAMES = ["Martin", "Smith", "Nguyen", "Garcia", "Müller", "Rossi", "Kim", "Dubois"]
PRODUCTS = [
    ("Trail running shoe", "42 / Black", "SHOE-TR"),
    ("Merino socks", "M", "SOCK-ME"),
    ("Rain jacket", "L / Navy", "JKT-RN"),
    ("Linen shirt", "M / White", "SHT-LN"),
    ("Canvas tote", "", "BAG-CT"),
    ("Wool beanie", "", "HAT-WB"),
    ("Water bottle", "750 ml", "BTL-750"),
    ("Gift card", "", "GIFT"),
]
# Shipments per order: 0 (not shipped yet) … 4, mean 2.0.
SHIPMENT_COUNTS = ([0, 1, 2, 3, 4], [5, 28, 40, 15, 12])
# Event statuses (Shopify's fulfillment event ``status``) and the stage each one reads as.
EVENT_PATH = [
    ("label_printed", "shipped"),
    ("confirmed", "shipped"),
    ("in_transit", "in_transit"),
    ("in_transit", "in_transit"),
    ("in_transit", "in_transit"),
    ("in_transit", "in_transit"),
    ("in_transit", "in_transit"),
    ("in_transit", "in_transit"),
    ("out_for_delivery", "out_for_delivery"),
]
FINAL_EVENT = {
    "delivered": ("delivered", "delivered"),
    "out_for_delivery": ("out_for_delivery", "out_for_delivery"),
    "attempted_delivery": ("attempted_delivery", "attempted_delivery"),
    "ready_for_pickup": ("ready_for_pickup", "ready_for_pickup"),
    "delayed": ("delayed", "delayed"),
    "problem": ("failure", "problem"),
}
EVENT_MESSAGES = {
    "label_printed": "Shipping label created",
    "confirmed": "Carrier picked up the parcel",
    "in_transit": "Departed facility",
    "out_for_delivery": "Out for delivery",
    "delivered": "Delivered, left at front door",
    "attempted_delivery": "Delivery attempted, nobody home",
    "ready_for_pickup": "Ready for pickup at the post office",
    "delayed": "Delayed by the carrier",
    "failure": "Address problem, returned to depot",
}
# The fixed orders of the query-count checks.
MANY_SHIPMENTS = 5
MANY_EVENTS_PER_SHIPMENT = 80
# Tables the build fills, in the order it fills them (their big indexes are dropped before
# COPY and made again after: one sort per index instead of 10M random B-tree inserts).
BIG_TABLES = [
    "shopapp_order",
    "shopapp_lineitem",
    "tracking_shipment",
    "tracking_shipmentlineitem",
    "tracking_trackingevent",
    "tracking_delay",
    "returns_returnrequest",
    "returns_returnlineitem",
    "notifications_message",
    "shopapp_orderevent",
]


@dataclass(frozen=True)
class ScaleParams:
    """What the generator makes; its hash (with GENERATOR_VERSION) names a build."""

    orders: int = 1_000_000
    shops: int = 500
    # Share of all orders that belong to the first shop (0: spread like the others).
    skew: float = 0.0
    shipments_per_order: float = 2.0
    events_per_shipment: float = 5.0
    # Share of delivered orders with a return request.
    return_rate: float = 0.04
    # Days of orders, ending at the build's day.
    days: int = 180
    seed: int = 42

    def __post_init__(self) -> None:
        if self.orders < 2 or self.shops < 1 or self.orders < self.shops:
            raise ValueError("need at least 2 orders, 1 shop, and no more shops than orders")
        if not 0 <= self.skew < 1:
            raise ValueError("skew is a share of the orders: 0 ≤ skew < 1")
        if self.events_per_shipment < 1 or self.shipments_per_order <= 0:
            raise ValueError("need at least one event per shipment and some shipments")

    def digest(self) -> str:
        text = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ScaleInfo:
    """The marker row of a built database."""

    params: dict
    digest: str
    counts: dict
    specials: dict
    big_shop: dict
    built_at: str
    seconds: float


@dataclass(frozen=True)
class ScaleSample:
    """One order of the dataset, with what a shopper or an agent would type to find it."""

    order_id: int
    shop_id: int
    shop_domain: str
    order_name: str
    email: str
    shipping_zip: str
    tracking_number: str | None
    shipments: int = field(default=0)


# ---------------------------------------------------------------------------------------------
# Building (on the current Django connection)


def _copy(cursor, table_model, columns: tuple[str, ...], rows, **fixed) -> int:
    """COPY ``rows`` (tuples in ``columns`` order) into the model's table; every other column
    gets ``fixed[column]`` or the field's default."""
    all_columns, defaults = _column_defaults(table_model)
    rest = [c for c in all_columns if c not in columns]
    unknown = set(columns) - set(all_columns)
    if unknown:
        raise ValueError(f"{table_model.__name__} has no column {sorted(unknown)}")
    tail = tuple(fixed.get(c, defaults[c]) for c in rest)
    count = 0
    sql = f"COPY {table_model._meta.db_table} ({', '.join([*columns, *rest])}) FROM STDIN"
    with cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row + tail)
            count += 1
    return count


def _weighted(rng: random.Random, items: list, weights: list[float]):
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    import bisect

    def pick():
        return items[bisect.bisect_right(cumulative, rng.random() * total)]

    return pick


def _drop_secondary_indexes(cursor, tables: list[str]) -> list[str]:
    """Drop the indexes of ``tables`` that back no constraint; return their definitions."""
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class t ON t.oid = i.indrelid
        LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid
        WHERE t.relname = ANY(%s) AND c.oid IS NULL
        """,
        [tables],
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f"DROP INDEX {name}")
    return [definition for _, definition in found]


def build_scale_dataset(params: ScaleParams, *, log=print) -> dict:
    """Fill the (migrated, empty) database of Django's default connection; return the counts,
    the special orders and the big shop. Runs in one transaction."""
    from django.db import connection, transaction

    from notifications.defaults import notification_defaults_install
    from notifications.models import Message, SequenceStep
    from returns.models import ReturnLineItem, ReturnPolicy, ReturnRequest
    from shopapp.models import LineItem, Order, OrderEvent, Shop
    from tracking.models import (
        Delay,
        Shipment,
        ShipmentLineItem,
        TrackingEvent,
        TrackingSettings,
    )

    rng = random.Random(params.seed)
    started = time.perf_counter()
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = now - timedelta(days=params.days)
    counts: dict[str, int] = {}

    def step(name: str, count: int) -> None:
        counts[name] = count
        log(f"  {name}: {count:,} rows ({time.perf_counter() - started:.0f} s)")

    # Which shop each order belongs to: the big shop's share, then a long tail (Zipf, s=0.7).
    others = list(range(2, params.shops + 1)) or [1]
    pick_other = _weighted(rng, others, [1 / (rank**0.7) for rank in range(1, len(others) + 1)])
    shop_of = array("I", [0]) * (params.orders + 1)
    for o in range(1, params.orders + 1):
        shop_of[o] = 1 if params.shops == 1 or rng.random() < params.skew else pick_other()
    if params.skew == 0 and params.shops > 1:
        # Without skew the first shop is one of the tail, not empty.
        for o in range(1, params.orders + 1, params.shops):
            shop_of[o] = 1

    # Shipments per order, scaled to the asked mean.
    counts_choices, counts_weights = SHIPMENT_COUNTS
    scale = params.shipments_per_order / 2.0
    pick_shipments = _weighted(rng, counts_choices, counts_weights)
    pick_carrier = _weighted(rng, CARRIERS, [c[1] for c in CARRIERS])
    pick_country = _weighted(rng, COUNTRIES, [c[1] for c in COUNTRIES])

    with transaction.atomic(), connection.cursor() as cursor:
        # A bench database: no FK triggers during the load (every id is made here), and room
        # to sort the indexes afterwards.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        index_definitions = _drop_secondary_indexes(cursor, BIG_TABLES)

        step(
            "shops",
            _copy(
                cursor,
                Shop,
                (
                    "id",
                    "myshopify_domain",
                    "name",
                    "email",
                    "timezone",
                    "currency",
                    "primary_locale",
                    "installed_at",
                    "shopify_id",
                ),
                (
                    (
                        s,
                        f"scale-{s:04d}.myshopify.com",
                        f"Scale shop {s}",
                        f"owner{s}@scale-shop.example",
                        rng.choice(["Europe/Paris", "America/New_York", "UTC", "Europe/London"]),
                        rng.choice(["USD", "EUR", "GBP", "CAD"]),
                        rng.choice(["en", "en", "fr", "de", "es"]),
                        first_day - timedelta(days=30),
                        60_000_000 + s,
                    )
                    for s in range(1, params.shops + 1)
                ),
                is_active=True,
                granted_scopes="read_orders,read_fulfillments,write_returns",
            ),
        )
        step(
            "tracking_settings",
            _copy(
                cursor,
                TrackingSettings,
                ("id", "shop_id"),
                ((s, s) for s in range(1, params.shops + 1)),
            ),
        )
        step(
            "return_policies",
            _copy(
                cursor,
                ReturnPolicy,
                ("id", "shop_id"),
                ((s, s) for s in range(1, params.shops + 1)),
            ),
        )
        # The default sequences through the app's own service (a few rows per shop): messages
        # below point at each shop's "shipped" step.
        for shop in Shop.objects.all():
            notification_defaults_install(shop=shop)
        shipped_step = dict(
            SequenceStep.objects.filter(sequence__key="shipped", position=0).values_list(
                "shop_id", "id"
            )
        )
        log(f"  default sequences installed ({time.perf_counter() - started:.0f} s)")

        # Orders, and for each what the child tables need, generated in one pass and written
        # table by table from compact per-order plans.
        per_shop_number = [1000] * (params.shops + 1)
        per_shop_customers = [0] * (params.shops + 1)
        span = (now - first_day).total_seconds()
        plans = []  # (order id, shop, created, n_shipments, n_lines, stage list…) kept small
        number_of = array("I", [0]) * (params.orders + 1)
        specials = {"one_event": 1, "many_events": 2}

        def order_rows_gen():
            for o in range(1, params.orders + 1):
                shop = shop_of[o]
                per_shop_number[shop] += 1
                number = per_shop_number[shop]
                number_of[o] = number
                # Repeat buyers: ~1.6 orders per customer.
                if per_shop_customers[shop] == 0 or rng.random() < 0.62:
                    per_shop_customers[shop] += 1
                    customer = per_shop_customers[shop]
                else:
                    customer = rng.randint(1, per_shop_customers[shop])
                created = first_day + timedelta(seconds=span * (o - 0.5) / params.orders)
                if o == specials["one_event"]:
                    n_ship, n_lines = 1, 1
                elif o == specials["many_events"]:
                    n_ship, n_lines = MANY_SHIPMENTS, MANY_SHIPMENTS
                else:
                    n_ship = pick_shipments()
                    if scale != 1.0:
                        n_ship = max(0, round(n_ship * scale + rng.random() - 0.5))
                    n_lines = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
                cancelled = n_ship == 0 and rng.random() < 0.3
                country = pick_country()
                plans.append((o, shop, created, n_ship, n_lines, country[0]))
                first = FIRST_NAMES[customer % len(FIRST_NAMES)]
                last = LAST_NAMES[(customer // 7) % len(LAST_NAMES)]
                email = f"{first.lower()}.{last.lower()}{customer}@example.com"
                financial = (
                    "refunded"
                    if cancelled
                    else rng.choice(["paid"] * 17 + ["partially_refunded", "pending"])
                )
                total = round(rng.uniform(15, 400), 2)
                yield (
                    o,
                    shop,
                    4_000_000_000 + o,
                    f"gid://shopify/Order/{4_000_000_000 + o}",
                    f"#{number}",
                    number,
                    email,
                    f"+1555{o:07d}",
                    9_000_000 + shop * 1_000_000 + customer,
                    first,
                    last,
                    rng.random() < 0.4,
                    total,
                    total,
                    financial,
                    "" if n_ship == 0 else "fulfilled",
                    country[0],
                    rng.choice(country[2]),
                    f"{10000 + (o * 37) % 89999}",
                    created,
                    created,
                    created,
                    created if cancelled else None,
                    "customer" if cancelled else "",
                )

        step(
            "orders",
            _copy(
                cursor,
                Order,
                (
                    "id",
                    "shop_id",
                    "shopify_id",
                    "admin_graphql_api_id",
                    "name",
                    "order_number",
                    "email",
                    "phone",
                    "customer_id",
                    "customer_first_name",
                    "customer_last_name",
                    "buyer_accepts_marketing",
                    "total_price",
                    "subtotal_price",
                    "financial_status",
                    "fulfillment_status",
                    "shipping_country_code",
                    "shipping_city",
                    "shipping_zip",
                    "shopify_created_at",
                    "shopify_updated_at",
                    "processed_at",
                    "cancelled_at",
                    "cancel_reason",
                ),
                order_rows_gen(),
                currency="USD",
                presentment_currency="USD",
            ),
        )

        # Line items: ids follow orders, so an order's lines are first_line[o] … + n_lines - 1.
        first_line = array("Q", [0]) * (params.orders + 1)

        def line_rows():
            lid = 0
            for o, shop, _created, _n_ship, n_lines, _country in plans:
                first_line[o] = lid + 1
                for k in range(n_lines):
                    lid += 1
                    title, variant, sku = PRODUCTS[(o + k) % len(PRODUCTS)]
                    quantity = 1 + (lid % 5 == 0)
                    yield (
                        lid,
                        shop,
                        o,
                        7_000_000_000 + lid,
                        f"gid://shopify/LineItem/{7_000_000_000 + lid}",
                        8_000_000 + (o + k) % len(PRODUCTS),
                        8_100_000 + (o + k) % len(PRODUCTS),
                        title,
                        variant,
                        sku,
                        quantity,
                        quantity,
                        round(10 + (lid % 90) * 1.5, 2),
                        sku == "GIFT",
                    )

        step(
            "line_items",
            _copy(
                cursor,
                LineItem,
                (
                    "id",
                    "shop_id",
                    "order_id",
                    "shopify_id",
                    "admin_graphql_api_id",
                    "product_id",
                    "variant_id",
                    "title",
                    "variant_title",
                    "sku",
                    "quantity",
                    "current_quantity",
                    "price",
                    "is_gift_card",
                ),
                line_rows(),
                fulfillment_status="fulfilled",
            ),
        )

        # Shipments: stage from the parcel's age. Compact plan per shipment for events.
        ship_plan = []  # (sid, o, shop, shipped_at, stage, n_events, carrier index)
        mean_events = params.events_per_shipment
        carrier_index = {c[0]: i for i, c in enumerate(CARRIERS)}

        def stage_for(age_days: float) -> str:
            r = rng.random()
            if age_days > 14:
                return (
                    "delivered"
                    if r < 0.93
                    else rng.choice(
                        ["problem", "delayed", "ready_for_pickup", "attempted_delivery"]
                    )
                )
            if age_days > 5:
                if r < 0.65:
                    return "delivered"
                return rng.choice(["in_transit"] * 4 + ["delayed", "out_for_delivery", "problem"])
            return rng.choice(["shipped", "in_transit", "in_transit", "out_for_delivery"])

        def shipment_rows():
            sid = 0
            for o, shop, created, n_ship, _n_lines, country in plans:
                for k in range(n_ship):
                    sid += 1
                    shipped_at = created + timedelta(hours=6 + 20 * k + rng.random() * 30)
                    if shipped_at >= now:
                        shipped_at = now - timedelta(minutes=30)
                    age = (now - shipped_at).total_seconds() / 86400
                    if o == specials["one_event"]:
                        stage, n_events = "shipped", 1
                    elif o == specials["many_events"]:
                        stage, n_events = "in_transit", MANY_EVENTS_PER_SHIPMENT
                    else:
                        stage = stage_for(age)
                        n_events = max(1, min(20, round(rng.gauss(mean_events, 1.5))))
                    carrier = pick_carrier()
                    number = _tracking_number(carrier[0], sid)
                    last_event = shipped_at + timedelta(hours=(n_events - 1) * 9)
                    last_event = min(last_event, now - timedelta(minutes=5))
                    delivered_at = last_event if stage == "delivered" else None
                    ship_plan.append(
                        (
                            sid,
                            o,
                            shop,
                            shipped_at,
                            stage,
                            n_events,
                            carrier_index[carrier[0]],
                            last_event,
                        )
                    )
                    yield (
                        sid,
                        shop,
                        o,
                        3_000_000_000 + sid,
                        f"gid://shopify/Fulfillment/{3_000_000_000 + sid}",
                        f"#{number_of[o]}.{k + 1}",
                        "success",
                        FINAL_EVENT.get(stage, (stage, stage))[0],
                        stage,
                        carrier[0],
                        json.dumps([number]),
                        json.dumps([carrier[2] + number]),
                        country,
                        shipped_at + timedelta(days=3 + rng.randint(0, 4)),
                        shipped_at + timedelta(hours=9) if stage != "shipped" else None,
                        delivered_at,
                        last_event,
                        shipped_at,
                        last_event,
                        stage.replace("_", " ") if stage != "problem" else "failure",
                        last_event,
                    )

        step(
            "shipments",
            _copy(
                cursor,
                Shipment,
                (
                    "id",
                    "shop_id",
                    "order_id",
                    "fulfillment_id",
                    "admin_graphql_api_id",
                    "name",
                    "status",
                    "shipment_status",
                    "stage",
                    "tracking_company",
                    "tracking_numbers",
                    "tracking_urls",
                    "destination_country_code",
                    "estimated_delivery_at",
                    "in_transit_at",
                    "delivered_at",
                    "last_event_at",
                    "shopify_created_at",
                    "shopify_updated_at",
                    "display_status",
                    "refreshed_at",
                ),
                shipment_rows(),
            ),
        )
        plan_lines = {o: n_lines for o, _s, _c, _n, n_lines, _co in plans}
        plan_ships = {o: n_ship for o, _s, _c, n_ship, _l, _co in plans}

        def shipment_line_rows():
            slid = 0
            k_of: dict[int, int] = {}
            for sid, o, shop, *_ in ship_plan:
                k = k_of.get(o, 0)
                k_of[o] = k + 1
                n_lines, n_ship = plan_lines[o], plan_ships[o]
                # Line j travels in shipment j % n_ship; a shipment with no line of its own
                # (more parcels than lines) carries the first line (a split quantity).
                mine = [j for j in range(n_lines) if j % n_ship == k] or [0]
                for j in mine:
                    slid += 1
                    yield (slid, shop, sid, 7_000_000_000 + first_line[o] + j, 1)
                if k + 1 == n_ship:
                    del k_of[o]

        step(
            "shipment_line_items",
            _copy(
                cursor,
                ShipmentLineItem,
                ("id", "shop_id", "shipment_id", "line_item_shopify_id", "quantity"),
                shipment_line_rows(),
            ),
        )

        def event_rows():
            eid = 0
            for sid, _o, shop, shipped_at, stage, n_events, ci, _last in ship_plan:
                city_pool = COUNTRIES[sid % len(COUNTRIES)][2]
                country_name = COUNTRIES[sid % len(COUNTRIES)][3]
                for i in range(n_events):
                    eid += 1
                    if i == n_events - 1 and stage in FINAL_EVENT and n_events > 1:
                        status, ev_stage = FINAL_EVENT[stage]
                    else:
                        status, ev_stage = EVENT_PATH[min(i, len(EVENT_PATH) - 2)]
                    happened = min(shipped_at + timedelta(hours=9 * i), now - timedelta(minutes=5))
                    yield (
                        eid,
                        shop,
                        sid,
                        2_000_000_000 + eid,
                        status,
                        ev_stage,
                        happened,
                        EVENT_MESSAGES[status],
                        city_pool[(eid + ci) % len(city_pool)],
                        country_name,
                        happened,
                    )

        step(
            "tracking_events",
            _copy(
                cursor,
                TrackingEvent,
                (
                    "id",
                    "shop_id",
                    "shipment_id",
                    "shopify_id",
                    "status",
                    "stage",
                    "happened_at",
                    "message",
                    "city",
                    "country",
                    "created_at",
                ),
                event_rows(),
            ),
        )

        # Delays the detector would have found: open on parcels in trouble or stuck, resolved
        # on a few that arrived late, and orders not shipped after three days.
        def delay_rows():
            did = 0
            for sid, o, shop, _shipped, stage, _n, _ci, last in ship_plan:
                age = (now - last).total_seconds() / 86400
                kind, resolved = None, None
                if stage in ("delayed", "problem"):
                    kind = "carrier_delayed"
                elif stage == "in_transit" and age > 4:
                    kind = "no_movement"
                elif stage == "delivered" and rng.random() < 0.03:
                    kind, resolved = "past_estimate", last
                if kind is not None:
                    did += 1
                    detected = min(last + timedelta(days=3), now)
                    yield (did, shop, o, sid, kind, f"shipment:{sid}:{kind}", detected, resolved)
            for o, shop, created, n_ship, _n_lines, _country in plans:
                if n_ship == 0 and (now - created).days > 3:
                    did += 1
                    detected = created + timedelta(days=3)
                    yield (
                        did,
                        shop,
                        o,
                        None,
                        "unfulfilled",
                        f"order:{o}:unfulfilled",
                        detected,
                        None,
                    )

        step(
            "delays",
            _copy(
                cursor,
                Delay,
                (
                    "id",
                    "shop_id",
                    "order_id",
                    "shipment_id",
                    "kind",
                    "dedupe_key",
                    "detected_at",
                    "resolved_at",
                ),
                delay_rows(),
            ),
        )

        # Returns: a share of orders whose first shipment was delivered, on their first line.
        returns_of: list[tuple[int, int, int, str, datetime]] = []
        seen_orders: set[int] = set()
        for _sid, o, shop, _shipped, stage, _n, _ci, last in ship_plan:
            if o in seen_orders:
                continue
            seen_orders.add(o)
            if stage == "delivered" and rng.random() < params.return_rate:
                status = rng.choice(["REQUESTED", "OPEN", "OPEN", "CLOSED", "CLOSED", "DECLINED"])
                returns_of.append((len(returns_of) + 1, o, shop, status, last))
        del seen_orders
        order_email = {}
        if returns_of:
            wanted = [r[1] for r in returns_of]
            cursor.execute(
                "SELECT id, email, customer_id FROM shopapp_order WHERE id = ANY(%s)", [wanted]
            )
            order_email = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}

        step(
            "return_requests",
            _copy(
                cursor,
                ReturnRequest,
                (
                    "id",
                    "shop_id",
                    "order_id",
                    "shopify_return_id",
                    "name",
                    "status",
                    "sync_state",
                    "resolution",
                    "customer_id",
                    "customer_email",
                    "refund_estimate",
                    "currency",
                    "requested_at",
                    "approved_at",
                    "declined_at",
                    "closed_at",
                    "shopify_status_at",
                    "created_at",
                    "updated_at",
                ),
                (
                    (
                        rid,
                        shop,
                        o,
                        5_000_000_000 + rid,
                        f"#{number_of[o]}-R1",
                        status,
                        "synced",
                        "refund",
                        order_email[o][1],
                        order_email[o][0],
                        25,
                        "USD",
                        at + timedelta(days=2),
                        at + timedelta(days=3) if status in ("OPEN", "CLOSED") else None,
                        at + timedelta(days=3) if status == "DECLINED" else None,
                        at + timedelta(days=9) if status == "CLOSED" else None,
                        at + timedelta(days=3),
                        at + timedelta(days=2),
                        at + timedelta(days=3),
                    )
                    for rid, o, shop, status, at in returns_of
                ),
            ),
        )
        step(
            "return_line_items",
            _copy(
                cursor,
                ReturnLineItem,
                ("id", "shop_id", "return_request_id", "line_item_id", "quantity", "reason"),
                (
                    (rid, shop, rid, first_line[o], 1, "SIZE_TOO_SMALL")
                    for rid, o, shop, _status, _at in returns_of
                ),
            ),
        )

        # One "shipped" message per shipment, sent when the parcel left.
        def message_rows():
            for sid, o, shop, shipped_at, _stage, _n, _ci, _last in ship_plan:
                yield (
                    sid,
                    shop,
                    o,
                    shipped_step[shop],
                    f"shipment:{3_000_000_000 + sid}",
                    "shipped",
                    "email",
                    f"order{o}@example.com",
                    shipped_at,
                    "sent",
                    f"<{sid}@scale.example>",
                    shipped_at + timedelta(minutes=1),
                    shipped_at,
                    shipped_at,
                )

        step(
            "messages",
            _copy(
                cursor,
                Message,
                (
                    "id",
                    "shop_id",
                    "order_id",
                    "step_id",
                    "subject_key",
                    "trigger",
                    "channel",
                    "recipient",
                    "due_at",
                    "status",
                    "provider_message_id",
                    "sent_at",
                    "created_at",
                    "updated_at",
                ),
                message_rows(),
                attempts=1,
            ),
        )

        # The timelines: the order, each shipment's latest stage, each message sent.
        def timeline_rows():
            ev = 0
            ships = iter(ship_plan)
            pending = next(ships, None)
            for o, shop, created, _n_ship, _n_lines, _country in plans:
                ev += 1
                yield (ev, shop, o, "order.created", created, "webhook", "Order placed", "{}")
                while pending is not None and pending[1] == o:
                    sid, _o, _shop, shipped_at, stage, _n, _ci, last = pending
                    ev += 1
                    yield (
                        ev,
                        shop,
                        o,
                        f"shipment.{stage}",
                        last,
                        "webhook",
                        f"Shipment {stage.replace('_', ' ')}",
                        json.dumps({"fulfillment_id": 3_000_000_000 + sid}),
                    )
                    ev += 1
                    yield (
                        ev,
                        shop,
                        o,
                        "notification.sent",
                        shipped_at + timedelta(minutes=1),
                        "app",
                        "Shipped email sent",
                        json.dumps({"message_id": sid}),
                    )
                    pending = next(ships, None)

        step(
            "order_events",
            _copy(
                cursor,
                OrderEvent,
                ("id", "shop_id", "order_id", "kind", "occurred_at", "source", "summary", "detail"),
                timeline_rows(),
            ),
        )

        for table in BIG_TABLES + [
            "shopapp_shop",
            "tracking_trackingsettings",
            "returns_returnpolicy",
        ]:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"GREATEST((SELECT MAX(id) FROM {table}), 1))"
            )
        index_started = time.perf_counter()
        for definition in index_definitions:
            cursor.execute(definition)
        log(
            f"  {len(index_definitions)} indexes made in "
            f"{time.perf_counter() - index_started:.0f} s"
        )

    big = Shop.objects.filter(pk=1).values("id", "myshopify_domain").first() or {}
    big_orders = sum(1 for o in range(1, params.orders + 1) if shop_of[o] == 1)
    return {
        "counts": counts,
        "specials": specials,
        "big_shop": {**big, "orders": big_orders},
        "seconds": time.perf_counter() - started,
    }


def _tracking_number(carrier: str, sid: int) -> str:
    """A number in the carrier's own shape, unique per shipment."""
    if carrier == "UPS":
        return f"1Z999AA1{sid:010d}"
    if carrier == "USPS":
        return f"94001{sid:017d}"
    if carrier == "FedEx":
        return f"7{sid:011d}"
    if carrier == "DHL Express":
        return f"{sid:010d}"
    if carrier == "Royal Mail":
        return f"RM{sid:09d}GB"
    if carrier == "Canada Post":
        return f"{sid:016d}"
    if carrier == "La Poste":
        return f"6A{sid:011d}"
    return f"0{sid:013d}"


def analyze(tables: list[str] | None = None) -> None:
    """ANALYZE what the build filled (the planner's row estimates; tests call it too)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables or BIG_TABLES)}")


# ---------------------------------------------------------------------------------------------
# The reusable database


def scale_database_name(params: ScaleParams) -> str:
    """The name suffix of ``params``' database: ``scale`` for the default dataset, ``scale_``
    and the parameters' digest for any other, so a small or skewed copy never replaces the
    big one (each is reused on its own)."""
    return DEFAULT_NAME if params == ScaleParams() else f"{DEFAULT_NAME}_{params.digest()[:8]}"


def scale_database_url(name: str = DEFAULT_NAME) -> str:
    return scratch_urls(name, script="bench/scale.py")[2]


def _marker(url: str) -> ScaleInfo | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                f"SELECT params, digest, counts, specials, big_shop, built_at, seconds "
                f"FROM {MARKER_TABLE} WHERE id = 1"
            ).fetchone()
    except psycopg.OperationalError:
        return None  # no database yet
    except psycopg.errors.UndefinedTable:
        return None  # an unfinished build
    if row is None:
        return None
    params, digest, counts, specials, big_shop, built_at, seconds = row
    return ScaleInfo(params, digest, counts, specials, big_shop, built_at.isoformat(), seconds)


def scale_info(url: str) -> ScaleInfo:
    """The marker of the database at ``url``: what was built, how big, the special orders."""
    info = _marker(url)
    if info is None:
        raise LookupError(f"no scale dataset at {url}: run bench/scale.py (or ensure_scale_db)")
    return info


def ensure_scale_db(
    params: ScaleParams | None = None, *, name: str | None = None, rebuild: bool = False
) -> str:
    """The URL of a database holding the scale dataset for ``params``, built when missing or
    made by other parameters, migrated either way. The build runs in a child process (Django
    set up on that database), so a caller may already have set Django up elsewhere.

    ``name`` defaults to ``scale_database_name(params)``."""
    params = params or ScaleParams()
    name = name or scale_database_name(params)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--orders",
        str(params.orders),
        "--shops",
        str(params.shops),
        "--skew",
        repr(params.skew),
        "--shipments-per-order",
        repr(params.shipments_per_order),
        "--events-per-shipment",
        repr(params.events_per_shipment),
        "--return-rate",
        repr(params.return_rate),
        "--days",
        str(params.days),
        "--seed",
        str(params.seed),
        "--name",
        name,
    ]
    if rebuild:
        command.append("--rebuild")
    subprocess.run(command, check=True, cwd=REPO)
    return scale_database_url(name)


def scale_samples(
    url: str,
    count: int,
    *,
    seed: int = 7,
    shop_id: int | None = None,
    with_shipments: bool = True,
) -> list[ScaleSample]:
    """``count`` random orders (of ``shop_id`` when given; with a shipment unless told
    otherwise), the special orders excluded, for wrk scripts to cycle through."""
    import psycopg

    info = scale_info(url)
    total = info.counts["orders"]
    specials = set(info.specials.values())
    rng = random.Random(seed)
    found: dict[int, ScaleSample] = {}
    with psycopg.connect(url) as conn:
        # One shop's orders are drawn from its own ids: drawn from every order, a small shop
        # of a small copy is hit too rarely to fill ``count``.
        population: range | list[int] = (
            range(1, total + 1)
            if shop_id is None
            else [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM shopapp_order WHERE shop_id = %s ORDER BY id", [shop_id]
                )
            ]
        )
        for _ in range(50):
            if len(found) >= count:
                break
            wanted = [
                i
                for i in rng.sample(population, min(len(population), max(64, 3 * count)))
                if i not in specials and i not in found
            ]
            rows = conn.execute(
                """
                SELECT o.id, o.shop_id, s.myshopify_domain, o.name, o.email, o.shipping_zip,
                       (SELECT sh.tracking_numbers->>0 FROM tracking_shipment sh
                        WHERE sh.order_id = o.id ORDER BY sh.id LIMIT 1),
                       (SELECT count(*) FROM tracking_shipment sh WHERE sh.order_id = o.id)
                FROM shopapp_order o JOIN shopapp_shop s ON s.id = o.shop_id
                WHERE o.id = ANY(%s) AND (%s::bigint IS NULL OR o.shop_id = %s)
                ORDER BY o.id
                """,
                [wanted, shop_id, shop_id],
            ).fetchall()
            for row in rows:
                sample = ScaleSample(*row)
                if with_shipments and not sample.shipments:
                    continue
                found[sample.order_id] = sample
                if len(found) >= count:
                    break
    if len(found) < count:
        raise LookupError(f"only {len(found)} orders match in {url}")
    samples = list(found.values())
    rng.shuffle(samples)
    return samples


def _write_marker(built: dict, params: ScaleParams) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (
                id integer PRIMARY KEY, params jsonb NOT NULL, digest text NOT NULL,
                counts jsonb NOT NULL, specials jsonb NOT NULL, big_shop jsonb NOT NULL,
                built_at timestamptz NOT NULL, seconds double precision NOT NULL)
            """
        )
        cursor.execute(
            f"INSERT INTO {MARKER_TABLE} VALUES (1, %s, %s, %s, %s, %s, now(), %s) "
            "ON CONFLICT (id) DO UPDATE SET params = EXCLUDED.params, digest = EXCLUDED.digest, "
            "counts = EXCLUDED.counts, specials = EXCLUDED.specials, "
            "big_shop = EXCLUDED.big_shop, built_at = now(), seconds = EXCLUDED.seconds",
            [
                json.dumps(asdict(params)),
                params.digest(),
                json.dumps(built["counts"]),
                json.dumps(built["specials"]),
                json.dumps(built["big_shop"]),
                built["seconds"],
            ],
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = ScaleParams()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=defaults.orders)
    parser.add_argument("--shops", type=int, default=defaults.shops)
    parser.add_argument(
        "--skew",
        type=float,
        default=defaults.skew,
        help="share of all orders in the first shop (0)",
    )
    parser.add_argument("--shipments-per-order", type=float, default=defaults.shipments_per_order)
    parser.add_argument("--events-per-shipment", type=float, default=defaults.events_per_shipment)
    parser.add_argument("--return-rate", type=float, default=defaults.return_rate)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--name",
        default=None,
        help="database name suffix: <DATABASE_URL's db>_<name> (scale, or scale_<digest> "
        "for parameters other than the defaults)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when it matches")
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    return parser.parse_args(argv)


# Issue 12's dataset: 1,000,000 orders, 2,000,000 shipments, 10,000,000 tracking events,
# "generated with PostgreSQL COPY in minutes" (read here as within half an hour on 2 cores).
GOAL_COUNTS = {"orders": 1_000_000, "shipments": 2_000_000, "tracking_events": 10_000_000}
GOAL_BUILD_S = 1800


def scale_figures_write(
    path: Path | None, *, db_name: str, counts: dict, seconds: float, reused: bool, params: dict
) -> None:
    """The dataset's figures for bench/all.py's table: its counts and how long it took."""
    from bench.report import figure, figures_write

    figures = [
        figure(
            f"scale dataset: {label}",
            counts.get(key, 0),
            "",
            goal=f"≥ {GOAL_COUNTS[key]:,}",
            met=counts.get(key, 0) >= GOAL_COUNTS[key],
        )
        for key, label in (
            ("orders", "orders"),
            ("shipments", "shipments"),
            ("tracking_events", "tracking events"),
        )
    ]
    figures.append(
        figure(
            "scale dataset: build time" + (" (reused: when it was built)" if reused else ""),
            seconds,
            "s",
            digits=0,
            goal=f"≤ {GOAL_BUILD_S:,} s at full size",
            met=(seconds <= GOAL_BUILD_S)
            if counts.get("orders", 0) >= GOAL_COUNTS["orders"]
            else None,
        )
    )
    figures_write(
        path,
        bench="scale",
        unit="",
        setup=f"{db_name}, {'reused' if reused else 'built in this run'}: {params}",
        rows=[],
        ok=True,
        notes=[
            f"{counts.get('shops', 0):,} shops, {counts.get('line_items', 0):,} line items, "
            f"{counts.get('return_requests', 0):,} returns, {counts.get('messages', 0):,} "
            f"messages, {counts.get('order_events', 0):,} timeline rows"
        ],
        figures=figures,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        params = ScaleParams(
            orders=args.orders,
            shops=args.shops,
            skew=args.skew,
            shipments_per_order=args.shipments_per_order,
            events_per_shipment=args.events_per_shipment,
            return_rate=args.return_rate,
            days=args.days,
            seed=args.seed,
        )
    except ValueError as exc:
        raise SystemExit(f"bench/scale.py: {exc}") from exc
    name = args.name or scale_database_name(params)
    admin_url, db_name, url = scratch_urls(name, script="bench/scale.py")
    marker = _marker(url)
    reuse = marker is not None and marker.digest == params.digest() and not args.rebuild
    if not reuse:
        recreate_database(admin_url, db_name)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        configure_environment(Path(tmp), url)
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
        import django
        from django.core.management import call_command

        django.setup()
        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        migrate_s = time.perf_counter() - started
        if reuse:
            assert marker is not None
            c = marker.counts
            print(
                f"bench/scale: reusing {db_name} (built {marker.built_at[:19]} in "
                f"{marker.seconds:.0f} s): {c['orders']:,} orders, {c['shipments']:,} "
                f"shipments, {c['tracking_events']:,} events; migrate {migrate_s:.1f} s"
            )
            scale_figures_write(
                args.json,
                db_name=db_name,
                counts=c,
                seconds=marker.seconds,
                reused=True,
                params=marker.params,
            )
            return 0
        print(f"bench/scale: building {db_name}: {asdict(params)}")
        built = build_scale_dataset(params)
        from django.db import connection

        vacuum_started = time.perf_counter()
        with connection.cursor() as cursor:
            # VACUUM: the visibility map, so the page's index-only scans stay index-only.
            cursor.execute("VACUUM ANALYZE")
        built["seconds"] += time.perf_counter() - vacuum_started
        _write_marker(built, params)
        c = built["counts"]
        print(
            f"bench/scale: built {db_name} in {built['seconds']:.0f} s (+ migrate "
            f"{migrate_s:.0f} s): {c['shops']:,} shops, {c['orders']:,} orders, "
            f"{c['line_items']:,} line items, {c['shipments']:,} shipments, "
            f"{c['tracking_events']:,} events, {c['return_requests']:,} returns, "
            f"{c['messages']:,} messages, {c['order_events']:,} timeline rows; "
            f"big shop {built['big_shop']}"
        )
        scale_figures_write(
            args.json,
            db_name=db_name,
            counts=c,
            seconds=built["seconds"],
            reused=False,
            params=asdict(params),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

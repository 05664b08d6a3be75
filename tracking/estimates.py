"""Delivery estimates from the shop's own history, for parcels Shopify gives no estimate for.

    cron, daily ─▶ delivery_stats_refresh_all_job ─▶ delivery_stats_refresh_job(shop_id)
                   └▶ delivery_stats_rebuild: the shop's deliveries of the last HISTORY_DAYS,
                      transit days (fulfillment created → delivered) per group, kept as
                      DeliveryStat rows only where a group has MIN_DELIVERIES
    page view ─▶ delivery_estimate_predict(shop, shipment): one indexed read of the
                 shipment's candidate groups, the most specific one wins
    notifications' facts (tracking.announce) ─▶ delivery_estimate_at: Shopify's estimate, else
                 the last day of ours

Groups, most specific first (FALLBACK): the carrier's service (the order's shipping rate,
"Express") to the region, then to the country; the carrier to the region, to the country;
every carrier to the region, to the country. Never broader than the country: a
carrier's times to the whole world say nothing about one parcel. A group below MIN_DELIVERIES
is never used, so with too little history there is no estimate rather than an invented one.

The range is the group's 10th to 90th percentile of transit days (9 in 10 of those parcels
arrived within it, which tests/tracking/test_estimates.py and bench/estimates.py measure);
the median is the single most likely day. Shopify's own estimate, when a carrier gives one,
always wins (Shipment.estimated_delivery_at): this is only for the others.
"""

from __future__ import annotations

import logging
import random
import statistics
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from babel import Locale, UnknownLocaleError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import get_language, ngettext

from shopapp.models import Shop
from tracking.models import DeliveryStat, Shipment, Stage, TrackingSettings

logger = logging.getLogger(__name__)

# Fewer deliveries than this and a group says nothing. With 20, the 10th and 90th percentiles
# sit between the 2nd-3rd and 18th-19th fastest parcels: each bound rests on at least two
# parcels on either side, where with 10 it would be the single fastest or slowest one.
MIN_DELIVERIES = 20
# Carriers change their networks and seasons change their times: half a year of deliveries,
# recent enough to follow a change, long enough for a small shop to reach MIN_DELIVERIES.
HISTORY_DAYS = 180
# A "delivery" after this many days is a data error (a parcel marked delivered by hand months
# later, a reused fulfillment), not a transit time: left out.
MAX_TRANSIT_DAYS = 60
# A group's percentiles are read from at most this many of its deliveries, a uniform sample
# (reservoir): 5,000 put the 10th and 90th percentiles within about a percentile point, and a
# shop with half a million deliveries does not hold millions of floats in the worker. The
# count shown is always the group's full count.
MAX_SAMPLES_PER_GROUP = 5000
# Percentiles of transit days: the range shown, and the single most likely day.
RANGE_LOW, MEDIAN, RANGE_HIGH = 10, 50, 90

# (by carrier, by service, by region): the fallback order, most specific first. A service is
# a carrier's ("Express" by UPS is not "Express" by Canada Post).
FALLBACK: tuple[tuple[bool, bool, bool], ...] = (
    (True, True, True),
    (True, True, False),
    (True, False, True),
    (True, False, False),
    (False, False, True),
    (False, False, False),
)


def _group_key(
    by: tuple[bool, bool, bool], carrier: str, service: str, country: str, region: str
) -> tuple[str, str, str, str] | None:
    """The group a parcel falls in at one level, or None when it lacks what the level needs."""
    by_carrier, by_service, by_region = by
    if (by_carrier and not carrier) or (by_service and not service) or (by_region and not region):
        return None
    return (
        carrier if by_carrier else "",
        service if by_service else "",
        country,
        region if by_region else "",
    )


@dataclass(frozen=True)
class DeliveryEstimate:
    """A predicted delivery and how it was made."""

    earliest: date
    latest: date
    likely: date
    deliveries: int
    # "" when the group is every carrier together.
    carrier: str
    # "" when the group is every service of the carrier.
    service: str
    country_code: str
    # "" when the group is the whole country.
    province_code: str
    province_name: str

    @property
    def is_single_day(self) -> bool:
        return self.earliest == self.latest

    @property
    def carrier_label(self) -> str:
        return f"{self.carrier} ({self.service})" if self.service else self.carrier

    def place(self, language: str | None = None) -> str:
        """The group's place in the shopper's language: the region as Shopify names it, or
        the country as the CLDR names it (Babel)."""
        if self.province_code:
            return self.province_name or f"{self.province_code}, {self.country_code}"
        return country_name(self.country_code, language or get_language() or "en")

    def basis(self, language: str | None = None) -> str:
        """ "Based on 240 deliveries to Ontario by Canada Post", in the active language."""
        values = {"count": self.deliveries, "place": self.place(language)}
        if self.carrier:
            return ngettext(
                "Based on %(count)s delivery to %(place)s by %(carrier)s",
                "Based on %(count)s deliveries to %(place)s by %(carrier)s",
                self.deliveries,
            ) % {**values, "carrier": self.carrier_label}
        return (
            ngettext(
                "Based on %(count)s delivery to %(place)s",
                "Based on %(count)s deliveries to %(place)s",
                self.deliveries,
            )
            % values
        )


def country_name(code: str, language: str) -> str:
    try:
        locale = Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        locale = Locale("en")
    return locale.territories.get(code.upper(), code.upper())


# -- the rollup ------------------------------------------------------------------------------


def _percentile_days(days: list[float]) -> tuple[float, float, float]:
    # Inclusive: the data is the whole group, not a sample of a larger one.
    cuts = statistics.quantiles(days, n=100, method="inclusive")
    return cuts[RANGE_LOW - 1], cuts[MEDIAN - 1], cuts[RANGE_HIGH - 1]


def delivery_history(
    *, shop: Shop, since: datetime, until: datetime | None = None
) -> Iterable[tuple[str, str, str, str, str, float]]:
    """(carrier, service, country, region code, region name, transit days) of the shop's parcels
    delivered from ``since`` (to ``until``), read through the partial delivered index."""
    rows = Shipment.objects.filter(shop=shop, delivered_at__gte=since).exclude(
        destination_country_code=""
    )
    if until is not None:
        rows = rows.filter(delivered_at__lt=until)
    for (
        carrier,
        service,
        country,
        region,
        region_name,
        shipped,
        created,
        delivered,
    ) in rows.values_list(
        "tracking_company",
        "service",
        "destination_country_code",
        "destination_province_code",
        "destination_province",
        "shopify_created_at",
        "created_at",
        "delivered_at",
    ).iterator(chunk_size=5000):
        if delivered is None:
            continue
        transit = (delivered - (shipped or created)).total_seconds() / 86400
        if 0 < transit <= MAX_TRANSIT_DAYS:
            yield (
                carrier.strip(),
                service.strip(),
                country.upper(),
                region.upper(),
                region_name,
                transit,
            )


def delivery_stats_compute(
    history: Iterable[tuple[str, str, str, str, str, float]],
) -> list[DeliveryStat]:
    """Unsaved DeliveryStat rows (without shop) for every group with MIN_DELIVERIES."""
    groups: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    # Seeded: the same history gives the same figures on every rebuild.
    rng = random.Random(0)
    names: dict[tuple[str, str], str] = {}
    for carrier, service, country, region, region_name, transit in history:
        for by in FALLBACK:
            key = _group_key(by, carrier, service, country, region)
            if key is None:
                continue
            counts[key] += 1
            sample = groups[key]
            if len(sample) < MAX_SAMPLES_PER_GROUP:
                sample.append(transit)
            else:
                # Algorithm R: each delivery so far is in the sample with equal chance.
                slot = rng.randrange(counts[key])
                if slot < MAX_SAMPLES_PER_GROUP:
                    sample[slot] = transit
        if region and region_name:
            names[(country, region)] = region_name
    now = timezone.now()
    stats = []
    for (carrier, service, country, region), days in groups.items():
        if counts[(carrier, service, country, region)] < MIN_DELIVERIES:
            continue
        low, median, high = _percentile_days(days)
        stats.append(
            DeliveryStat(
                carrier=carrier,
                service=service,
                country_code=country,
                province_code=region,
                province_name=names.get((country, region), "") if region else "",
                deliveries=counts[(carrier, service, country, region)],
                days_p10=low,
                days_p50=median,
                days_p90=high,
                computed_at=now,
            )
        )
    return stats


def delivery_stats_rebuild(*, shop: Shop, now: datetime | None = None) -> int:
    """Replace the shop's delivery statistics with those of its last HISTORY_DAYS of
    deliveries. Returns how many groups have enough history."""
    now = now or timezone.now()
    stats = delivery_stats_compute(
        delivery_history(shop=shop, since=now - timedelta(days=HISTORY_DAYS), until=now)
    )
    for stat in stats:
        stat.shop = shop
    # One swap: a page view reads the old set or the new one, never half of each. The
    # settings' stamp moves with it, and with it the cached pages' key (tracking.page_cache).
    with transaction.atomic():
        DeliveryStat.objects.filter(shop=shop).delete()
        DeliveryStat.objects.bulk_create(stats)
        TrackingSettings.objects.update_or_create(
            shop=shop, defaults={"delivery_stats_built_at": now}
        )
    logger.info(
        "tracking.estimates.rebuilt", extra={"shop": shop.myshopify_domain, "groups": len(stats)}
    )
    return len(stats)


# -- the prediction --------------------------------------------------------------------------


def needs_prediction(shipment: Shipment) -> bool:
    """Shopify gave no estimate and the parcel is on its way (not delivered, not failed)."""
    return (
        shipment.estimated_delivery_at is None
        and shipment.delivered_at is None
        and shipment.stage not in (Stage.DELIVERED, Stage.PROBLEM)
        and bool(shipment.destination_country_code)
    )


def delivery_stats_for(*, shop: Shop, shipments: Iterable[Shipment]) -> list[DeliveryStat]:
    """Every group the shipments could fall in, in one query on the unique index."""
    countries = {s.destination_country_code.upper() for s in shipments}
    if not countries:
        return []
    return list(
        DeliveryStat.objects.filter(
            shop=shop, country_code__in=countries, deliveries__gte=MIN_DELIVERIES
        )
    )


def delivery_estimate_choose(
    *,
    shop: Shop,
    shipment: Shipment,
    stats: Iterable[DeliveryStat],
    today: date | None = None,
) -> DeliveryEstimate | None:
    """The shipment's estimate from the most specific group with enough history, or None.

    None too when even the slowest tenth of that history would have arrived by now: the
    history has nothing left to say about this parcel (delay detection speaks instead).
    """
    if not needs_prediction(shipment):
        return None
    by_key = {(s.carrier, s.service, s.country_code, s.province_code): s for s in stats}
    carrier = shipment.tracking_company.strip()
    service = shipment.service.strip()
    country = shipment.destination_country_code.upper()
    region = shipment.destination_province_code.upper()
    stat = None
    for by in FALLBACK:
        key = _group_key(by, carrier, service, country, region)
        found = by_key.get(key) if key is not None else None
        if found is not None and found.deliveries >= MIN_DELIVERIES:
            stat = found
            break
    if stat is None:
        return None
    tz = _shop_zone(shop)
    shipped = shipment.shopify_created_at or shipment.created_at
    today = today or timezone.now().astimezone(tz).date()

    def day(days: float) -> date:
        return (shipped + timedelta(days=days)).astimezone(tz).date()

    latest = day(stat.days_p90)
    if latest < today:
        return None
    return DeliveryEstimate(
        earliest=max(day(stat.days_p10), today),
        latest=latest,
        likely=max(day(stat.days_p50), today),
        deliveries=stat.deliveries,
        carrier=stat.carrier,
        service=stat.service,
        country_code=stat.country_code,
        province_code=stat.province_code,
        province_name=stat.province_name,
    )


def delivery_estimate_predict(
    *, shop: Shop, shipment: Shipment, today: date | None = None
) -> DeliveryEstimate | None:
    """One shipment's estimate (one query, none when Shopify gave one)."""
    if not needs_prediction(shipment):
        return None
    stats = delivery_stats_for(shop=shop, shipments=[shipment])
    return delivery_estimate_choose(shop=shop, shipment=shipment, stats=stats, today=today)


def delivery_estimate_at(
    *, shop: Shop, shipment: Shipment, predicted: DeliveryEstimate | None = None
) -> datetime | None:
    """Shopify's estimate, else ours as one moment for the notifications' facts: the last day
    of the range ("by then" is the promise the history keeps 9 times in 10; the emails show
    the range and its basis from ``predicted`` beside it), at noon in the shop's zone, so a
    recipient a few hours away reads the same day. ``predicted``: already read by the caller."""
    if shipment.estimated_delivery_at is not None:
        return shipment.estimated_delivery_at
    estimate = predicted or delivery_estimate_predict(shop=shop, shipment=shipment)
    if estimate is None:
        return None
    return datetime.combine(estimate.latest, datetime.min.time(), _shop_zone(shop)).replace(hour=12)


def shop_today(shop: Shop) -> date:
    """Today in the shop's timezone: the day a predicted range starts from at the earliest."""
    return timezone.now().astimezone(_shop_zone(shop)).date()


def _shop_zone(shop: Shop) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(shop.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")

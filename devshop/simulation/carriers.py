"""The carriers of the simulated store: their tracking numbers and links, hubs and places."""

import logging
import random
import string
from dataclasses import dataclass
from typing import Any

from devshop.models import (
    DevOrder,
)

logger = logging.getLogger(__name__)


def _digits(n: int) -> str:
    return "".join(random.choices(string.digits, k=n))


def _ups() -> str:
    # 1Z + 6-character shipper number + 2-digit service + 8 digits (UPS's 18-character format).
    shipper = "".join(random.choices(string.ascii_uppercase + string.digits, k=6))
    return f"1Z{shipper}{random.choice(['01', '02', '03', '12'])}{_digits(8)}"


def _s10(prefix: str, country: str) -> str:
    """UPU S10 item id (Royal Mail, Colissimo…): 2 letters, 8 digits, check digit, country."""
    body = _digits(8)
    weights = [8, 6, 4, 2, 3, 5, 9, 7]
    check = 11 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11
    check = {10: 0, 11: 5}.get(check, check)
    return f"{prefix}{body}{check}{country}"


@dataclass(frozen=True)
class Carrier:
    # tracking_company as Shopify spells its supported carriers.
    name: str
    url_template: str
    number: Any
    # Shopify fills estimated_delivery_at only for these carriers (REST FulfillmentEvent docs).
    gives_estimates: bool


CARRIERS = {
    "UPS": Carrier("UPS", "https://www.ups.com/track?tracknum={n}", _ups, True),
    "USPS": Carrier(
        "USPS",
        "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
        lambda: "9400" + _digits(18),
        True,
    ),
    "FedEx": Carrier(
        "FedEx", "https://www.fedex.com/fedextrack/?trknbr={n}", lambda: _digits(12), True
    ),
    "DHL Express": Carrier(
        "DHL Express",
        "https://www.dhl.com/en/express/tracking.html?AWB={n}",
        lambda: _digits(10),
        False,
    ),
    "Canada Post": Carrier(
        "Canada Post",
        "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={n}",
        lambda: _digits(16),
        True,
    ),
    "Royal Mail": Carrier(
        "Royal Mail",
        "https://www.royalmail.com/track-your-item#/tracking-results/{n}",
        lambda: _s10(random.choice(["RB", "RN", "TT"]), "GB"),
        False,
    ),
    "Colissimo": Carrier(
        "Colissimo",
        "https://www.laposte.fr/outils/suivre-vos-envois?code={n}",
        lambda: "6A" + _digits(11),
        False,
    ),
    "DHL Parcel": Carrier(
        "DHL Parcel",
        "https://www.dhl.de/en/privatkunden/pakete-empfangen/verfolgen.html?piececode={n}",
        lambda: "00340434" + _digits(12),
        False,
    ),
    "Correos": Carrier(
        "Correos",
        "https://www.correos.es/es/en/tools/tracker/items/details?tracking-number={n}",
        lambda: "PQ" + _digits(20),
        False,
    ),
    "Australia Post": Carrier(
        "Australia Post",
        "https://auspost.com.au/mypost/track/details/{n}",
        lambda: _digits(22),
        False,
    ),
}


CARRIERS_BY_COUNTRY = {
    "US": ["UPS", "USPS", "FedEx"],
    "CA": ["Canada Post", "UPS", "FedEx"],
    "GB": ["Royal Mail", "DHL Express"],
    "FR": ["Colissimo", "DHL Express"],
    "DE": ["DHL Parcel", "DHL Express"],
    "ES": ["Correos", "DHL Express"],
    "AU": ["Australia Post", "DHL Express"],
}


# Sort hubs per destination country: city, province, ZIP, latitude, longitude.
HUBS = {
    "US": [
        ("Louisville", "Kentucky", "40209", 38.17, -85.73),
        ("Memphis", "Tennessee", "38118", 35.04, -89.98),
        ("Chicago", "Illinois", "60666", 41.97, -87.90),
        ("Dallas", "Texas", "75261", 32.90, -97.04),
        ("Ontario", "California", "91761", 34.06, -117.60),
    ],
    "CA": [
        ("Mississauga", "Ontario", "L5T 2T9", 43.64, -79.66),
        ("Montreal", "Quebec", "H4S 1Y9", 45.47, -73.74),
        ("Calgary", "Alberta", "T2E 7A2", 51.09, -114.01),
    ],
    "GB": [
        ("Coventry", "England", "CV1 2AA", 52.41, -1.51),
        ("Warrington", "England", "WA5 7WA", 53.39, -2.59),
        ("Glasgow", "Scotland", "G2 1AA", 55.86, -4.25),
    ],
    "FR": [
        ("Roissy-en-France", "Île-de-France", "95700", 49.00, 2.51),
        ("Lyon", "Auvergne-Rhône-Alpes", "69007", 45.75, 4.84),
    ],
    "DE": [
        ("Leipzig", "Sachsen", "04435", 51.42, 12.23),
        ("Köln", "Nordrhein-Westfalen", "51147", 50.87, 7.14),
    ],
    "ES": [
        ("Madrid", "Madrid", "28042", 40.47, -3.57),
        ("Zaragoza", "Aragón", "50197", 41.62, -0.98),
    ],
    "AU": [
        ("Sydney", "New South Wales", "2020", -33.94, 151.17),
        ("Melbourne", "Victoria", "3045", -37.67, 144.84),
    ],
}


COUNTRY_NAMES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "FR": "France",
    "DE": "Germany",
    "ES": "Spain",
    "AU": "Australia",
}


class SimulationError(ValueError):
    """A change the store refuses (what Shopify's admin would refuse too)."""


def _country(order: DevOrder) -> str:
    code = (order.shipping_address or {}).get("country_code") or "US"
    return code if code in HUBS else "US"


def carrier_for(order: DevOrder, name: str | None = None) -> Carrier:
    if name:
        if name not in CARRIERS:
            raise SimulationError(f"unknown carrier {name!r}; known: {', '.join(CARRIERS)}")
        return CARRIERS[name]
    return CARRIERS[random.choice(CARRIERS_BY_COUNTRY.get(_country(order), ["UPS"]))]

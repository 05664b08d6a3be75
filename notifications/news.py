"""What the other apps tell notifications: typed, frozen facts (the seam's contract).

notifications imports nothing from tracking or returns. They hand it one of these with a
trigger (``notification_trigger``); the message keeps the snapshot it was rendered from.

    tracking ─ ShipmentNews (a parcel reached a stage: Shopify's fulfillment id, carrier,
               tracking numbers and links, estimate, only that parcel's items)
             ─ DelayNews (a delay was found; the parcel's news when it is about one)
             ─ OrderNews (every parcel delivered)
             ─ ProblemNews (the shopper reported a problem: the case, its kind, their words,
               the parcel it is about)
    returns  ─ ReturnNews (a return moved: its signed status page, the merchant's instructions,
               the label, the resolution and the money)
    shopapp  ─ OrderNews (cancelled), through the ORDER_CHANGED subscriber table

Ids are Shopify's where Shopify has one (``fulfillment_id``); a return is named by the app's
own id (a request exists before Shopify has its return). Datetimes are timezone-aware.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class ShipmentStage(StrEnum):
    """Where a parcel is, in the words of a shopper (tracking maps Shopify's open set here)."""

    ORDERED = "ordered"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    ATTEMPTED_DELIVERY = "attempted_delivery"
    READY_FOR_PICKUP = "ready_for_pickup"
    DELAYED = "delayed"
    PROBLEM = "problem"


# The main line, in order: news of an earlier stage is old once a later one is known.
MAIN_LINE_RANK: dict[str, int] = {
    ShipmentStage.ORDERED: 0,
    ShipmentStage.SHIPPED: 1,
    ShipmentStage.IN_TRANSIT: 2,
    ShipmentStage.OUT_FOR_DELIVERY: 3,
    ShipmentStage.DELIVERED: 4,
}


class ReturnResolution(StrEnum):
    REFUND = "refund"
    STORE_CREDIT = "store_credit"
    EXCHANGE = "exchange"
    # Some items refunded, others exchanged.
    MIXED = "mixed"


@dataclass(frozen=True)
class Item:
    """One line of a parcel or a return, as the shopper should read it."""

    title: str
    quantity: int
    variant_title: str = ""
    image_url: str = ""
    # An exchange's replacement: what it replaces ("Linen shirt · M").
    replaces: str = ""


@dataclass(frozen=True)
class PredictedEstimate:
    """A delivery estimate predicted from the shop's own deliveries (Shopify gave none): a
    range of days, and what it rests on ("Based on 240 deliveries to Ontario by Canada
    Post"). Notifications says it in the recipient's language."""

    earliest: date
    latest: date
    deliveries: int
    # "Canada Post", or "Canada Post (Expedited)"; "" when the history is every carrier's.
    carrier: str = ""
    # ISO 3166 alpha-2: the group's country, named in the recipient's language.
    country_code: str = ""
    # The region's name as Shopify gives it ("Ontario"); "" when the group is the country.
    region: str = ""

    def __post_init__(self) -> None:
        if self.earliest > self.latest or self.deliveries <= 0:
            raise ValueError("PredictedEstimate: a range of days resting on deliveries")


@dataclass(frozen=True)
class ShipmentNews:
    fulfillment_id: int
    stage: ShipmentStage
    happened_at: datetime
    carrier: str = ""
    tracking_numbers: tuple[str, ...] = ()
    tracking_urls: tuple[str, ...] = ()
    estimated_delivery_at: datetime | None = None
    # Set when ``estimated_delivery_at`` is not Shopify's but predicted (its last day).
    predicted: PredictedEstimate | None = None
    delivered_at: datetime | None = None
    # Only what travels in this parcel.
    items: tuple[Item, ...] = ()
    # Already old when it reached the app: recorded, never announced.
    is_stale: bool = False
    # This parcel carries everything the order ships (no other parcel exists or is to come):
    # its news goes out at once instead of waiting for the order's other parcels.
    is_whole_order: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.fulfillment_id, int) or self.fulfillment_id <= 0:
            raise ValueError("ShipmentNews.fulfillment_id is Shopify's fulfillment id")
        object.__setattr__(self, "stage", ShipmentStage(self.stage))

    @property
    def is_replacement(self) -> bool:
        return bool(self.items) and all(item.replaces for item in self.items)


@dataclass(frozen=True)
class DelayNews:
    # tracking's delay kinds (an open set here: shown, never branched on).
    kind: str
    detected_at: datetime
    # The parcel, when the delay is about one (not shipped in time is about the order).
    shipment: ShipmentNews | None = None


@dataclass(frozen=True)
class ReturnNews:
    return_id: int
    status: str
    happened_at: datetime
    name: str = ""
    # The return's own signed page on the storefront.
    status_url: str = ""
    instructions: str = ""
    label_url: str = ""
    resolution: ReturnResolution = ReturnResolution.REFUND
    currency: str = ""
    # Decimal strings with two places ("12.50"); empty when not known yet.
    refund_amount: str = ""
    store_credit_amount: str = ""
    decline_reason: str = ""
    items: tuple[Item, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.return_id, int) or self.return_id <= 0:
            raise ValueError("ReturnNews.return_id is the app's return id")
        object.__setattr__(self, "resolution", ReturnResolution(self.resolution))


@dataclass(frozen=True)
class OrderNews:
    happened_at: datetime
    reason: str = ""
    # Shopify's ids of the parcels the news covers (all delivered).
    fulfillment_ids: tuple[int, ...] = field(default=())


@dataclass(frozen=True)
class ProblemNews:
    """A problem the shopper reported (tracking's case): one message per case and step."""

    problem_id: int
    # tracking's kinds, an open set here: "not_received", "damaged", "wrong_item" today.
    kind: str
    happened_at: datetime
    description: str = ""
    # The parcel it is about (Shopify's fulfillment id, its carrier and numbers), if any.
    fulfillment_id: int | None = None
    carrier: str = ""
    tracking_numbers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.problem_id, int) or self.problem_id <= 0:
            raise ValueError("ProblemNews.problem_id is tracking's case id")


News = ShipmentNews | DelayNews | ReturnNews | OrderNews | ProblemNews


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        # datetime or date: both ISO 8601, read back by fromisoformat.
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def news_snapshot(news: News | None) -> dict[str, Any]:
    """JSON of ``news`` with its type, as stored on the message it starts."""
    if news is None:
        return {}
    kind = {
        ShipmentNews: "shipment",
        DelayNews: "delay",
        ReturnNews: "return",
        OrderNews: "order",
        ProblemNews: "problem",
    }[type(news)]
    return {"type": kind, **_jsonable(asdict(news))}


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def item_from_snapshot(data: dict[str, Any]) -> Item:
    return Item(
        title=str(data.get("title") or ""),
        quantity=int(data.get("quantity") or 0),
        variant_title=str(data.get("variant_title") or ""),
        image_url=str(data.get("image_url") or ""),
        replaces=str(data.get("replaces") or ""),
    )


def predicted_from_snapshot(data: Any) -> PredictedEstimate | None:
    """The snapshot's predicted estimate, or None (none, or not one this code can read)."""
    if not isinstance(data, dict):
        return None
    try:
        return PredictedEstimate(
            earliest=date.fromisoformat(str(data["earliest"])),
            latest=date.fromisoformat(str(data["latest"])),
            deliveries=int(data["deliveries"]),
            carrier=str(data.get("carrier") or ""),
            country_code=str(data.get("country_code") or ""),
            region=str(data.get("region") or ""),
        )
    except (KeyError, TypeError, ValueError):
        return None


def shipment_from_snapshot(data: dict[str, Any]) -> ShipmentNews:
    return ShipmentNews(
        fulfillment_id=int(data["fulfillment_id"]),
        stage=ShipmentStage(data["stage"]),
        happened_at=datetime.fromisoformat(data["happened_at"]),
        carrier=str(data.get("carrier") or ""),
        tracking_numbers=tuple(str(n) for n in data.get("tracking_numbers") or ()),
        tracking_urls=tuple(str(u) for u in data.get("tracking_urls") or ()),
        estimated_delivery_at=_dt(data.get("estimated_delivery_at")),
        predicted=predicted_from_snapshot(data.get("predicted")),
        delivered_at=_dt(data.get("delivered_at")),
        items=tuple(item_from_snapshot(i) for i in data.get("items") or ()),
        is_stale=bool(data.get("is_stale")),
        is_whole_order=bool(data.get("is_whole_order")),
    )
